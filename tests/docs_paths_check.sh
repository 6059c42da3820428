#!/usr/bin/env bash
# Fails when a doc names, in backticks, a repository path that does not exist: each
# `modules/...`, `platform/...`, `app/...`, `bus/...`, `migrations/...`, `tests/...` or
# `docs/...` word must be a file or directory under <root>. Words with a placeholder
# (<m>, NNNN, *) are patterns, not paths, and are skipped.
# Usage: docs_paths_check.sh <root> [doc, relative to root; default docs/modules.md]
set -uf  # -f: a `*` in a doc is a pattern, never a glob of this directory
root=${1:?repository root}
doc=${2:-docs/modules.md}
[ -f "$root/$doc" ] || { echo "$doc: no such file"; exit 1; }
missing=0
checked=0
while IFS= read -r span; do
  for word in $span; do
    word=${word%%[,.:;)]}
    case "$word" in
      modules/* | platform/* | app/* | bus/* | migrations/* | tests/* | docs/*) ;;
      *) continue ;;
    esac
    case "$word" in *'<'* | *NNNN* | *'*'*) continue ;; esac
    checked=$((checked + 1))
    if [ ! -e "$root/$word" ]; then
      echo "$doc names \`$word\`, which does not exist"
      missing=1
    fi
  done
done < <(grep -o '`[^`]*`' "$root/$doc" | tr -d '`')
[ $checked -gt 0 ] || { echo "$doc: no paths found (the check would prove nothing)"; exit 1; }
[ $missing = 0 ] && echo "$doc: $checked paths, all present"
exit $missing
