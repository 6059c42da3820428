#!/usr/bin/env bash
# Proves boundary_symbols.sh can fail: a library calling another module's private
# function must be caught, one using only its own code must pass.
set -u
check=${1:?path to boundary_symbols.sh}
cxx=${2:-c++}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
build() {  # build <module> <source>
  printf '%s\n' "$2" > "$tmp/$1.cpp"
  "$cxx" -std=c++20 -c "$tmp/$1.cpp" -o "$tmp/$1.o" && ar rcs "$tmp/libtownhall_$1.a" "$tmp/$1.o"
}
build auth 'namespace townhall::auth::store { int find_citizen(int id) { return id; } }'
build permits 'namespace townhall::permits { int own(int id) { return id + 1; } }'
bash "$check" "$tmp" auth permits >/dev/null || { echo "clean libraries were refused"; exit 1; }
build permits 'namespace townhall::auth::store { int find_citizen(int); }
namespace townhall::permits { int peek(int id) { return townhall::auth::store::find_citizen(id); } }'
if bash "$check" "$tmp" auth permits >/dev/null; then echo "a call into auth's store was not caught"; exit 1; fi
echo "boundary symbols self-test ok"
