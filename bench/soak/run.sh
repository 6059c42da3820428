#!/usr/bin/env bash
# Soak under load: a release server with a mixed read/write load from wrk for DURATION
# (default 10m), its RSS sampled every 10 s. Passes when no answer was 5xx (nor any
# other non-2xx) and RSS after the warm-up (the first 20 % of the run) stays within
# ±10 % of its median. Prints p50/p99 and the RSS series.
# Usage: bench/soak/run.sh [build dir, default build/bench]   (or: make soak-load)
# Env: DURATION (wrk syntax, default 10m), CONNECTIONS (default 32), PORT (default 18085)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/bench}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
duration=${DURATION:-10m}
connections=${CONNECTIONS:-32}
port=${PORT:-18085}
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -m 700 "$work/data"
python3 - "$root/config/townhall.json" "$work/registry.json" <<'PY'
import json, sys
registry = json.load(open(sys.argv[1]))
registry["server"]["rate_limit"]["enabled"] = False
registry.setdefault("logging", {})["access_log"] = "off"
json.dump(registry, open(sys.argv[2], "w"))
PY
townhall=$build/app/townhall
"$townhall" migrate --init --config "$work/registry.json" --data-dir "$work/data" >/dev/null
"$townhall" admin create-user --config "$work/registry.json" --data-dir "$work/data" --email admin@soak.test \
  --password "soak password 1" --name Admin --role admin >/dev/null
"$townhall" admin create-user --config "$work/registry.json" --data-dir "$work/data" --email rita@soak.test \
  --password "soak password 1" --name Rita --role permits_reviewer --department BLD >/dev/null
"$townhall" serve --config "$work/registry.json" --data-dir "$work/data" --port "$port" >"$work/out" 2>"$work/log" &
server=$!
base=http://127.0.0.1:$port
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
admin=$(curl -sf "$base/api/v1/auth/login" -d '{"email":"admin@soak.test","password":"soak password 1"}' | json '["token"]')
id=$(curl -sf "$base/api/v1/auth/register" -d '{"email":"load@soak.test","password":"soak password 1","name":"Load"}' | json '["id"]')
curl -sf -X PATCH "$base/api/v1/auth/citizens/$id" -H "Authorization: Bearer $admin" -d '{"identity_verified":true}' >/dev/null
token=$(curl -sf "$base/api/v1/auth/login" -d '{"email":"load@soak.test","password":"soak password 1"}' | json '["token"]')
sleep 1  # permits' cache learns the verification from the bus

echo "soak: wrk -t2 -c$connections -d$duration, release build, $(nproc) cores"
( while kill -0 "$server" 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$server/status"; sleep 10; done ) >"$work/rss" &
TOKEN=$token wrk -t2 -c"$connections" -d"$duration" --latency -s "$root/bench/soak/mixed.lua" "$base" | tee "$work/wrk"
kill -0 "$server" || { echo "the server died" >&2; cat "$work/log" >&2; exit 1; }
echo "RSS (KiB, every 10 s): $(tr '\n' ' ' <"$work/rss")"
python3 - "$work/rss" "$work/wrk" <<'PY'
import re, statistics, sys
rss = [int(x) for x in open(sys.argv[1]).read().split()]
wrk = open(sys.argv[2]).read()
steady = rss[max(1, len(rss) // 5):]
median = statistics.median(steady)
spread = max(abs(x - median) / median for x in steady)
bad = int(re.search(r"non-2xx/3xx answers (\d+)", wrk).group(1))
print(f"soak: RSS after warm-up {min(steady)}..{max(steady)} KiB, median {median:.0f}, max deviation {spread:.1%}")
ok = spread <= 0.10 and bad == 0
print("soak: PASS" if ok else "soak: FAIL")
sys.exit(0 if ok else 1)
PY
