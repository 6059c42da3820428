#!/usr/bin/env bash
# A live server's /openapi.json through a real validator (@apidevtools/swagger-parser,
# pinned in tests/openapi/package-lock.json, installed by scripts/install-deps.sh).
# Usage: openapi_check.sh <townhall binary> <source dir>
set -euo pipefail
binary=$1
checker=$2/tests/openapi
if ! command -v node >/dev/null || [ ! -d "$checker/node_modules/@apidevtools/swagger-parser" ]; then
  echo "SKIPPED: node or the validator is missing (scripts/install-deps.sh installs both: nodejs, npm ci in tests/openapi)" >&2
  exit 77
fi
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -m 700 "$work/data"
"$binary" serve --port 0 --data-dir "$work/data" >"$work/out" 2>"$work/log" &
server_pid=$!
port=
for _ in $(seq 1 300); do
  port=$(sed -n 's#^townhall listening on http://[^:]*:\([0-9]*\)$#\1#p' "$work/out")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "the server did not start" >&2; exit 1; }
curl -sf "http://127.0.0.1:$port/openapi.json" >"$work/openapi.json"
node "$checker/validate.mjs" "$work/openapi.json"
