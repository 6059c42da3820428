# Sourced by the wrk benchmarks (bench/soak/run.sh, bench/patch/run.sh): a release server
# with the default registry (rate limit and access log off) in a temp dir, an admin, and
# one verified, signed-in citizen.
#
#   bench_server BUILD PORT [EXTRA_USER_ARGS...]
# Sets: work (the temp dir, removed on exit), server (its pid), base (its URL), token and
# id (the citizen's). Each EXTRA_USER_ARGS is one more `admin create-user` argument string
# ("--email a@b --password ... --name ... --role ..."), created before the server starts.
# PRELOAD=lib.so starts the server with LD_PRELOAD=lib.so (an allocator A/B).

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
server=
bench_cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap bench_cleanup EXIT

bench_server() {
  local build=$1 port=$2
  shift 2
  case "$build" in /*) ;; *) build="$bench_root/$build" ;; esac
  local townhall=$build/app/townhall
  mkdir -m 700 "$work/data"
  python3 - "$bench_root/config/townhall.json" "$work/registry.json" <<'PY'
import json, sys
registry = json.load(open(sys.argv[1]))
registry["server"]["rate_limit"]["enabled"] = False
registry.setdefault("logging", {})["access_log"] = "off"
json.dump(registry, open(sys.argv[2], "w"))
PY
  local files=(--config "$work/registry.json" --data-dir "$work/data")
  "$townhall" migrate --init "${files[@]}" >/dev/null
  "$townhall" admin create-user "${files[@]}" --email admin@bench.test --password "bench password 1" --name Admin \
    --role admin >/dev/null
  local extra
  for extra in "$@"; do
    # shellcheck disable=SC2086 # each extra is a list of arguments
    "$townhall" admin create-user "${files[@]}" $extra >/dev/null
  done
  ${PRELOAD:+env LD_PRELOAD=$PRELOAD} "$townhall" serve "${files[@]}" --port "$port" >"$work/out" 2>"$work/log" &
  server=$!
  base=http://127.0.0.1:$port
  local _
  for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
  local admin
  admin=$(curl -sf "$base/api/v1/auth/login" -d '{"email":"admin@bench.test","password":"bench password 1"}' |
    bench_json '["token"]')
  id=$(curl -sf "$base/api/v1/auth/register" \
    -d '{"email":"load@bench.test","password":"bench password 1","name":"Load"}' | bench_json '["id"]')
  curl -sf -X PATCH "$base/api/v1/auth/citizens/$id" -H "Authorization: Bearer $admin" \
    -d '{"identity_verified":true}' >/dev/null
  token=$(curl -sf "$base/api/v1/auth/login" -d '{"email":"load@bench.test","password":"bench password 1"}' |
    bench_json '["token"]')
}

bench_json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# Each citizen cache's lag at BASE_URL (`townhall_sync_latency_seconds` of every citizen
# subscription: histogram bucket bounds, so "<="), one line per cache.
bench_cache_lag() {
  curl -sf "$1/metrics" | python3 -c '
import re, sys
buckets = {}
for line in sys.stdin:
    m = re.match(r"townhall_sync_latency_seconds_bucket\{(.*)le=\"([^\"]+)\"\} (\S+)", line)
    if not m: continue
    labels, le, count = m.group(1), m.group(2), float(m.group(3))
    if "citizen" not in labels: continue
    buckets.setdefault(labels, []).append((float("inf") if le == "+Inf" else float(le), count))
for labels, series in sorted(buckets.items()):
    series.sort()
    total = series[-1][1]
    if total == 0: continue
    def q(p):
        for le, c in series:
            if c >= p * total: return le
    name = re.search(r"module=\"([^\"]+)\".*subscription=\"([^\"]+)\"", labels)
    within = max((c for le, c in series if le <= 0.005), default=0)
    print(f"lag {name.group(1)}.{name.group(2)}: {int(total)} events, p50 <= {q(0.5)*1000:g} ms, p99 <= {q(0.99)*1000:g} ms, "
          f"{100 * (total - within) / total:.2f} % over 5 ms")
'
}
