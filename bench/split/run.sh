#!/usr/bin/env bash
# The split deployment against one process, in the same run (issue 23, make bench-split):
# a verified citizen changes their phone number, each PATCH one command on auth's writer and
# one citizen.updated that permits', revenue's, parks' and notify's caches apply; in the
# split those caches are in the other process, reached through the broker.
#   1. one process (bench/server.sh), then 2. the split (scripts/run-split.sh: a broker,
#   `--modules auth`, `--modules permits,revenue,parks,notify`, nginx), each fresh:
#   - PATCHes at RATE per second for SECONDS (bench/load/rate_load.cpp, open loop), then
#     each cache's lag, ack -> applied (`townhall_sync_latency_seconds`, bucket bounds);
#   - the most it takes: wrk -t1 -c32 for DURATION (the PATCH script of bench/patch).
# PATCHes go to the process that serves auth, directly (nginx's own hop is not measured).
# Usage: bench/split/run.sh [build dir, default build/bench]   (or: make bench-split)
# Env: RATE (default 1000), RATE_SECONDS (default 10), DURATION (default 10s).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/bench}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
rate=${RATE:-1000}
seconds=${RATE_SECONDS:-10}
duration=${DURATION:-10s}
# shellcheck source=../server.sh
. "$root/bench/server.sh"

measure() {  # measure LABEL PATCH_PORT CACHES_URL TOKEN ID
  local label=$1 port=$2 caches=$3 token=$4 id=$5
  echo "== $label: $rate PATCH/s for ${seconds}s"
  "$build/bench/rate_load" --port "$port" --token "$token" --mix patch --id "$id" --rate "$rate" --seconds "$seconds" ||
    echo "$label: the rate was not held or some answers were not 200" >&2
  bench_cache_lag "$caches"
  echo "== $label: wrk -t1 -c32 -d$duration"
  TOKEN=$token ID=$id wrk -t1 -c32 -d"$duration" --latency -s "$root/bench/patch/patch.lua" \
    "http://127.0.0.1:$port" | grep -E "Requests/sec|50%|99%|non-200"
}

echo "bench-split: release build, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
bench_server "$build" 18087
measure "one process" 18087 "$base" "$token" "$id"
kill "$server" && wait "$server" 2>/dev/null || true
server=

# The split, from make run-split's script with this registry (no rate limit, no access log).
python3 - "$root/config/townhall.json" "$work/split-registry.json" <<'PY'
import json, sys
registry = json.load(open(sys.argv[1]))
registry["server"]["rate_limit"]["enabled"] = False
registry.setdefault("logging", {})["access_log"] = "off"
json.dump(registry, open(sys.argv[2], "w"))
PY
TOWNHALL_BINARY=$build/app/townhall SPLIT_DIR=$work/split PORT=0 REGISTRY=$work/split-registry.json \
  bash "$root/scripts/run-split.sh" >"$work/split.out" 2>&1 &
server=$!
for _ in $(seq 2400); do grep -q "^front door:" "$work/split.out" && break; kill -0 "$server" || break; sleep 0.1; done
grep -q "^front door:" "$work/split.out" || { echo "the split did not come up" >&2; cat "$work/split.out" >&2; exit 1; }
auth_port=$(sed -n 's|^  auth process: *http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/split.out")
services_port=$(sed -n 's|^  services process: *http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/split.out")
admin_password=$(sed -n 's|.*admin@demo.townhall  password: \(.*\)$|\1|p' "$work/split.out")
auth=http://127.0.0.1:$auth_port
admin=$(curl -sf "$auth/api/v1/auth/login" -d "{\"email\":\"admin@demo.townhall\",\"password\":\"$admin_password\"}" |
  bench_json '["token"]')
id=$(curl -sf "$auth/api/v1/auth/register" -d '{"email":"load@bench.test","password":"bench password 1","name":"Load"}' |
  bench_json '["id"]')
curl -sf -X PATCH "$auth/api/v1/auth/citizens/$id" -H "Authorization: Bearer $admin" \
  -d '{"identity_verified":true}' >/dev/null
token=$(curl -sf "$auth/api/v1/auth/login" -d '{"email":"load@bench.test","password":"bench password 1"}' |
  bench_json '["token"]')
measure "split (caches in the other process, through the broker)" "$auth_port" \
  "http://127.0.0.1:$services_port" "$token" "$id"
kill "$server" && wait "$server" 2>/dev/null || true
server=
