#!/usr/bin/env bash
# The symbol-level half of the module boundary: a module's library may reference another
# module only through its public contract (include/townhall/<m>/), which holds no
# definitions other modules link against (the Api is an interface, the payloads are
# plain structs). So an undefined reference from libtownhall_<a>.a to any symbol of
# namespace townhall::<b>:: (its store, commands, service...) is a violation, whatever
# header it was reached through.
# Usage: boundary_symbols.sh <dir holding libtownhall_<m>.a> <module>...
set -u
dir=${1:?directory of the module libraries}; shift
status=0
for m in "$@"; do
  lib="$dir/libtownhall_$m.a"
  [ -f "$lib" ] || { echo "no $lib"; status=1; continue; }
  # Undefined in one of its objects and defined in none: a reference that leaves the
  # library (a module's own constructor taking an auth::Api& is not one).
  defined=$(nm -C --defined-only "$lib" 2>/dev/null | sed -n 's/^[0-9a-f]* [A-Za-z] //p' | sort -u)
  undefined=$(comm -23 <(nm -C --undefined-only "$lib" 2>/dev/null | sed -n 's/^ *U //p' | sort -u) <(printf '%s\n' "$defined"))
  for other in "$@"; do
    [ "$m" = "$other" ] && continue
    hits=$(printf '%s\n' "$undefined" | grep -E "(^|[^[:alnum:]_:])townhall::$other::" | grep -vE "^(typeinfo|vtable) for townhall::$other::Api$")
    if [ -n "$hits" ]; then
      echo "module '$m' links against private symbols of '$other':"; echo "$hits" | head -20; status=1
    fi
  done
done
[ $status -eq 0 ] && echo "module symbols ok: $# libraries checked"
exit $status
