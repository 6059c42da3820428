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
# shellcheck source=../server.sh
. "$root/bench/server.sh"
bench_server "$build" "$port" \
  "--email rita@bench.test --password bench-password-1 --name Rita --role permits_reviewer --department BLD"
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
