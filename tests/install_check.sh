#!/usr/bin/env bash
# `cmake --install` into a temporary prefix: the layout README "Run in production"
# describes, an installed binary that runs, and systemd units that systemd-analyze
# accepts (with their paths pointed at the temporary prefix).
# Usage: install_check.sh <build dir>
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
prefix=$root/usr/local
cmake --install "$build" --prefix "$prefix" >/dev/null
for file in bin/townhall etc/townhall/townhall.json share/townhall/townhall.json.example \
            lib/systemd/system/townhall.service lib/systemd/system/townhall-backup.service \
            lib/systemd/system/townhall-backup.timer \
            share/townhall/prometheus/alerts.yml share/townhall/grafana/townhall-dashboard.json \
            share/townhall/nginx/townhall.conf share/doc/townhall/README.md share/doc/townhall/architecture.md; do
  [ -e "$prefix/$file" ] || { echo "missing after install: $file" >&2; exit 1; }
done
"$prefix/bin/townhall" version
mkdir -m 700 "$root/data"
"$prefix/bin/townhall" migrate --init --config "$prefix/etc/townhall/townhall.json" --data-dir "$root/data"

# An upgrade keeps the operator's configuration (issue 27.5): edit it, install again.
config=$prefix/etc/townhall/townhall.json
sed -i 's#"trusted_proxies": \[\]#"trusted_proxies": ["10.0.0.0/8"]#' "$config"
grep -q '"trusted_proxies": \["10.0.0.0/8"\]' "$config" || { echo "the test could not edit $config" >&2; exit 1; }
echo "# stale" >>"$prefix/lib/systemd/system/townhall.service"
cmake --install "$build" --prefix "$prefix" >/dev/null
grep -q '"trusted_proxies": \["10.0.0.0/8"\]' "$config" || { echo "an upgrade overwrote $config" >&2; exit 1; }
if grep -q "# stale" "$prefix/lib/systemd/system/townhall.service"; then
  echo "an upgrade did not refresh the systemd units" >&2; exit 1
fi
"$prefix/bin/townhall" migrate --config "$config" --data-dir "$root/data" >/dev/null

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIPPED the unit check: systemd-analyze is not installed" >&2
  exit 0
fi
units=$root/units
mkdir "$units"
for unit in townhall.service townhall-backup.service townhall-backup.timer; do
  sed "s#/usr/local#$prefix#g" "$prefix/lib/systemd/system/$unit" >"$units/$unit"
done
# Warnings about the host (no such user yet, a read-only /etc) are not the units' faults;
# syntax errors, unknown keys and missing executables are.
out=$(systemd-analyze verify "$units/townhall.service" "$units/townhall-backup.service" "$units/townhall-backup.timer" 2>&1 || true)
echo "$out"
if echo "$out" | grep -Ei "unknown|invalid|not executable|failed to|bad|missing" | grep -v "Failed to load configuration" | grep -q .; then
  echo "systemd-analyze found problems in the units" >&2
  exit 1
fi
echo "install layout and units ok"
