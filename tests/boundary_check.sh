#!/usr/bin/env bash
# Fails when a module reaches past another module's public contract:
#  - a file under modules/<a>/ includes modules/<b>/src/ or "<b>/src/..."
#  - a file under modules/<a>/src names another module's database file
#  - a module opens a database itself (only the composition root opens files): a
#    SQLite::Database or db::ModuleDb constructed, allocated or made, or sqlite3_open*.
#    A line that must (the simulated payment processor's own ledger) says why with
#    "boundary-exempt: <reason>".
# Usage: boundary_check.sh <project root>
set -u
root=${1:?project root}
status=0
cd "$root/modules" 2>/dev/null || { echo "no modules/ under $root"; exit 1; }
modules=$(ls -d */ 2>/dev/null | tr -d /)
for m in $modules; do
  for other in $modules; do
    [ "$m" = "$other" ] && continue
    hits=$(grep -rnE "#include[[:space:]]*[<\"][^\">]*(modules/)?$other/src/" "$m" 2>/dev/null)
    if [ -n "$hits" ]; then
      echo "module '$m' includes the private sources of '$other':"; echo "$hits"; status=1
    fi
    hits=$(grep -rnE "[\"/]$other\.db\b" "$m" 2>/dev/null)
    if [ -n "$hits" ]; then
      echo "module '$m' names the database file of '$other':"; echo "$hits"; status=1
    fi
  done
  opens='sqlite3_open|SQLite::Database[[:space:]]*[A-Za-z_]*[[:space:]]*[({]|(SQLite::Database|ModuleDb)[[:space:]]*>[[:space:]]*\(|new[[:space:]]+(SQLite::Database|(db::)?ModuleDb)\b|ModuleDb[[:space:]]*[A-Za-z_]*[[:space:]]*[({]'
  hits=$(grep -rnE "$opens" "$m/src" 2>/dev/null | grep -vE "boundary-exempt: [^ ]")
  if [ -n "$hits" ]; then
    echo "module '$m' opens a database itself (only app/ opens module files):"; echo "$hits"; status=1
  fi
done
[ $status -eq 0 ] && echo "module boundaries ok: $(echo $modules | wc -w) modules checked"
exit $status
