#!/usr/bin/env bash
# The Prometheus rules and a live /metrics, checked with promtool (Debian `prometheus`,
# installed by scripts/install-deps.sh): the rules parse, their unit tests pass, every
# metric they use is exported by a running server, and its exposition passes the linter.
# Usage: prometheus_check.sh <townhall binary> <source dir>
set -euo pipefail
binary=$1
source_dir=$2
if ! command -v promtool >/dev/null; then
  echo "SKIPPED: promtool is not installed (Debian package 'prometheus'; scripts/install-deps.sh installs it)" >&2
  exit 77
fi
rules=$source_dir/config/prometheus/alerts.yml
promtool check rules "$rules"
promtool test rules "$source_dir/tests/prometheus/alerts_test.yml"

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
for _ in $(seq 1 300); do  # up to 30 s for the listening line
  port=$(sed -n 's#^townhall listening on http://[^:]*:\([0-9]*\)$#\1#p' "$work/out")
  [ -n "$port" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/log" >&2; echo "the server exited" >&2; exit 1; fi
  sleep 0.1
done
[ -n "$port" ] || { echo "the server did not start" >&2; cat "$work/log" >&2; exit 1; }
curl -sf "http://127.0.0.1:$port/metrics" >"$work/metrics"
promtool check metrics <"$work/metrics"

status=0
for name in $(grep -oE 'townhall_[a-z_]+' "$rules" | sed 's/_bucket$//' | sort -u); do
  if ! grep -q "^# TYPE $name " "$work/metrics"; then
    echo "alerts.yml uses $name, which the server does not export" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "every metric the rules use is exported"
exit $status
