#!/usr/bin/env bash
# Proves docs_paths_check.sh can fail: a doc naming a bogus path is refused, one naming
# only existing paths (and a pattern) passes.
set -u
check=${1:?path to docs_paths_check.sh}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/docs" "$tmp/modules/permits/src"
touch "$tmp/modules/permits/src/service.cpp"
printf '%s\n' 'See `modules/permits/src/service.cpp` and `migrations/<m>/NNNN_description.sql`.' > "$tmp/docs/good.md"
printf '%s\n' 'See `modules/permits/src/service.cpp`, `modules/permits/src/bogus.cpp`.' > "$tmp/docs/bad.md"
bash "$check" "$tmp" docs/good.md || { echo "a doc naming existing paths was refused"; exit 1; }
if bash "$check" "$tmp" docs/bad.md; then
  echo "a doc naming a bogus path passed"
  exit 1
fi
echo "docs_paths_check.sh catches a bogus path"
