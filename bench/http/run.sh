#!/usr/bin/env bash
# HTTP gateway throughput vs a bare Beast server, measured in one run on this machine.
# Usage: bench/http/run.sh [build dir, default build/bench]   (or: make bench)
# Env: ROUNDS (default 3), DURATION per measurement (default 5s), CONNECTIONS (default 64), THREADS (wrk threads, default 2)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build/bench}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
duration=${DURATION:-5s}
rounds=${ROUNDS:-3}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
townhall_port=${TOWNHALL_BENCH_PORT:-18080}
bare_port=${BARE_BENCH_PORT:-18081}
data=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$data"; }
trap cleanup EXIT

"$build/app/townhall" serve --config "$root/bench/http/bench-config.json" --data-dir "$data" \
  --port "$townhall_port" > "$data/townhall.out" 2>&1 &
pids+=($!)
"$build/bench/bare_beast" "$bare_port" 2 > "$data/bare.out" 2>&1 &
pids+=($!)
for url in "http://127.0.0.1:$townhall_port/healthz" "http://127.0.0.1:$bare_port/"; do
  for _ in $(seq 100); do curl -sf "$url" > /dev/null && break; sleep 0.1; done
done

measure() {  # prints requests/sec; latency percentiles go to stderr
  wrk -t"$threads" -c"$connections" -d"$duration" --latency "$1" > "$data/wrk.txt"
  awk '/Requests\/sec/ {print $2}' "$data/wrk.txt"
  echo "  $1: $(awk '/Requests\/sec/ {print $2}' "$data/wrk.txt") req/s, latency" \
    "$(grep -E '^ +(50|99)%' "$data/wrk.txt" | tr -s ' ' | tr '\n' ' ')" >&2
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "wrk -t$threads -c$connections -d$duration x $rounds rounds (alternating), $(nproc) cores, server threads 2"
: > "$data/bare"; : > "$data/health"; : > "$data/status"
for round in $(seq "$rounds"); do
  measure "http://127.0.0.1:$bare_port/" >> "$data/bare"
  measure "http://127.0.0.1:$townhall_port/healthz" >> "$data/health"
  measure "http://127.0.0.1:$townhall_port/api/v1/permits/status" >> "$data/status"
done
bare=$(median < "$data/bare"); health=$(median < "$data/health"); status=$(median < "$data/status")
echo "median req/s  bare beast: $bare  townhall /healthz: $health  townhall /api/v1/permits/status: $status"
awk -v h="$health" -v b="$bare" -v s="$status" 'BEGIN {
  printf "ratio gateway/bare (healthz): %.2f\nratio status route/bare     : %.2f\n", h / b, s / b }'
