#!/usr/bin/env bash
# Proves boundary_check.sh can fail: each planted violation must be caught.
set -u
check=${1:?path to boundary_check.sh}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
plant() {  # plant <name> <file> <content>
  rm -rf "$tmp/modules"; mkdir -p "$tmp/modules/auth/src" "$tmp/modules/permits/src"
  echo '#include "townhall/auth/module.hpp"' > "$tmp/modules/permits/src/ok.cpp"
  [ -n "$2" ] && printf '%s\n' "$3" > "$tmp/modules/$2"
  if bash "$check" "$tmp" >/dev/null; then result=pass; else result=fail; fi
  echo "$1: $result"
  [ "$1" = clean ] && [ $result = pass ] && return 0
  [ "$1" != clean ] && [ $result = fail ] && return 0
  echo "boundary_check.sh got '$1' wrong"; exit 1
}
plant clean "" ""
plant include-private "permits/src/bad.cpp" '#include "modules/auth/src/repository.hpp"'
plant include-private-short "permits/src/bad.cpp" '#include "auth/src/repository.hpp"'
plant other-db "permits/src/bad.cpp" 'const char* f = "auth.db";'
plant opens-db "permits/src/bad.cpp" 'SQLite::Database db("x");'
plant opens-db-braces "permits/src/bad.cpp" 'SQLite::Database db{"x"};'
plant makes-db "permits/src/bad.cpp" 'auto db = std::make_unique<SQLite::Database>(path, flags);'
plant makes-shared-db "permits/src/bad.cpp" 'auto db = std::make_shared< SQLite::Database >("x");'
plant news-db "permits/src/bad.cpp" 'auto* db = new SQLite::Database("x");'
plant makes-module-db "permits/src/bad.cpp" 'auto db = std::make_unique<db::ModuleDb>("p", file, manifest);'
plant sqlite3-open-v2 "permits/src/bad.cpp" 'sqlite3_open_v2("x", &handle, flags, nullptr);'
plant exempt-without-reason "permits/src/bad.cpp" 'auto db = std::make_unique<SQLite::Database>("x");  // boundary-exempt:'
plant_exempt() {
  rm -rf "$tmp/modules"; mkdir -p "$tmp/modules/auth/src" "$tmp/modules/permits/src"
  printf '%s\n' 'auto db = std::make_unique<SQLite::Database>("x");  // boundary-exempt: an outside system' \
    > "$tmp/modules/permits/src/ledger.cpp"
  bash "$check" "$tmp" >/dev/null || { echo "boundary_check.sh refused an exempted line"; exit 1; }
  echo "exempt-with-reason: pass"
}
plant_exempt
echo "boundary check self-test ok"
