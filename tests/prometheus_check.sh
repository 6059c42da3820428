#!/usr/bin/env bash
# The Prometheus rules and a live /metrics, checked with promtool (Debian `prometheus`,
# installed by scripts/install-deps.sh): the rules parse, their unit tests pass, every
# metric they use is exported by a running server, and its exposition passes the linter;
# the same for the Grafana dashboard's queries.
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

# The Grafana dashboard: valid JSON with panels, every query valid PromQL (promtool
# checks them as recording rules), every metric it queries exported.
dashboard=$source_dir/config/grafana/townhall-dashboard.json
python3 - "$dashboard" "$work/dashboard_rules.yml" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
assert dashboard["panels"], "the dashboard has no panels"
exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
assert all(exprs), "a panel has an empty query"
with open(sys.argv[2], "w") as out:
    out.write("groups:\n- name: grafana_panels\n  rules:\n")
    for i, expr in enumerate(exprs):
        out.write(f"  - record: townhall_dashboard_panel_{i}\n    expr: {json.dumps(expr)}\n")
print(f"dashboard: {len(dashboard['panels'])} panels, {len(exprs)} queries")
PY
promtool check rules "$work/dashboard_rules.yml"

status=0
for source in "$rules" "$dashboard"; do
  for name in $(grep -oE 'townhall_[a-z_]+' "$source" | grep -v '^townhall_dashboard_panel_' | sed 's/_bucket$//' | sort -u); do
    if ! grep -q "^# TYPE $name " "$work/metrics"; then
      echo "$(basename "$source") uses $name, which the server does not export" >&2
      status=1
    fi
  done
done
[ $status -eq 0 ] && echo "every metric the rules and the dashboard use is exported"
exit $status
