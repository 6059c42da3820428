#!/usr/bin/env bash
# Citizen PATCH throughput (issue 24 §3): a release server with every module (so
# citizen.updated goes to permits', revenue's and parks' citizen caches and to notify),
# one verified citizen changing their own phone number under wrk -t1 -c32. Prints req/s,
# p50/p99 and each cache's lag (its sync latency from /metrics) at the end.
# Usage: bench/patch/run.sh [build dir, default build/bench]   (or: make bench-patch)
# Env: DURATION (wrk syntax, default 10s), CONNECTIONS (default 32), PORT (default 18086),
#      PROFILE=1 records the server with `perf record -g` during the run (perf.data in
#      the build dir; `perf report -i build/bench/patch.perf.data`); PRELOAD=LIB starts
#      the server with LD_PRELOAD=LIB (an allocator A/B, e.g. Debian's libmimalloc2.0;
#      bench/server.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/bench}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
port=${PORT:-18086}
# shellcheck source=../server.sh
. "$root/bench/server.sh"
bench_server "$build" "$port"

echo "patch: wrk -t1 -c$connections -d$duration, release build, $(nproc) cores"
perf_pid=
if [ "${PROFILE:-0}" = 1 ]; then
  perf record -e cpu-clock -g -p "$server" -o "$build/patch.perf.data" >"$work/perf.out" 2>&1 &
  perf_pid=$!
fi
TOKEN=$token ID=$id wrk -t1 -c"$connections" -d"$duration" --latency -s "$root/bench/patch/patch.lua" "$base" | tee "$work/wrk"
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; echo "profile: $build/patch.perf.data"; fi
kill -0 "$server" || { echo "the server died" >&2; cat "$work/log" >&2; exit 1; }
# Every cache's lag: the sync latency histogram of each citizen subscription.
bench_cache_lag "$base"
grep -q "non-200 answers 0" "$work/wrk" || { echo "patch: some answers were not 200" >&2; exit 1; }
