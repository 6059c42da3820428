#!/usr/bin/env bash
# make run-split: the split deployment on one laptop (issue 23 §6; README "Run split across
# machines"). Starts a RabbitMQ broker of its own, `townhall serve --modules auth` and
# `--modules permits,revenue,parks,notify` (demo data; the passwords are printed once, as
# by `make run`), and nginx as the front door, all on loopback ports, each in its own
# directory under $SPLIT_DIR (default ./data-split, kept between runs). Prints
# "front door: http://127.0.0.1:PORT" once every process is ready; Ctrl-C stops them all.
#
#   scripts/run-split.sh
#
# make test runs it (tests/split/split_test.cpp, Split.TheCitizenJourneyThroughTheFrontDoor):
# the citizen journey of the single-process tests through the front door, then SIGTERM.
# Environment: TOWNHALL_BINARY (default build/release/app/townhall), SPLIT_DIR, PORT (the
# front door's, default 8090; 0 picks a free one), REGISTRY (the registry to split, default
# config/townhall.json; make bench-split passes one without rate limits).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
binary=${TOWNHALL_BINARY:-$root/build/release/app/townhall}
work=${SPLIT_DIR:-$root/data-split}
front_port=${PORT:-8090}
registry=${REGISTRY:-$root/config/townhall.json}

for tool in /usr/lib/rabbitmq/bin/rabbitmq-server /usr/bin/epmd /usr/sbin/nginx python3 curl; do
  if [ ! -x "$tool" ] && ! command -v "$tool" >/dev/null; then
    echo "run-split: $tool is missing; run 'make deps' (scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
done
[ -x "$binary" ] || { echo "run-split: no townhall binary at $binary (make build)" >&2; exit 1; }

mkdir -p "$work" && chmod 700 "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
[ "$front_port" = 0 ] && front_port=$(free_port)
wait_for() {  # wait_for SECONDS WHAT COMMAND...: until the command succeeds
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq 1 $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "run-split: $what did not come up within ${seconds}s (logs in $work)" >&2
  return 1
}

pids=()
cleanup() {
  trap - EXIT INT TERM
  # In reverse: nginx, the processes (they flush their outboxes to the broker), the broker.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true  # the broker: its process group
    wait "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the broker: its own node, epmd and ports; its data kept in $work/broker ---
broker=$work/broker
mkdir -p "$broker/mnesia" "$broker/log" && chmod 700 "$broker"
amqp_port=$(free_port)
dist_port=$(free_port)
epmd_port=$(free_port)
: >"$broker/rabbitmq.conf"
echo "[]." >"$broker/enabled_plugins"
/usr/bin/epmd -port "$epmd_port" -address 127.0.0.1 >"$broker/epmd.log" 2>&1 &
pids+=($!)
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$broker" LANG=C.UTF-8 \
  RABBITMQ_NODENAME=townhall-split@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT="$amqp_port" RABBITMQ_DIST_PORT="$dist_port" \
  ERL_EPMD_PORT="$epmd_port" ERL_EPMD_ADDRESS=127.0.0.1 \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
  RABBITMQ_CONF_ENV_FILE="$broker/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$broker/rabbitmq.conf" \
  RABBITMQ_ADVANCED_CONFIG_FILE="$broker/advanced.config" RABBITMQ_ENABLED_PLUGINS_FILE="$broker/enabled_plugins" \
  RABBITMQ_MNESIA_BASE="$broker/mnesia" RABBITMQ_LOG_BASE="$broker/log" RABBITMQ_PID_FILE="$broker/rabbitmq.pid" \
  setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$broker/console.log" 2>&1 &
pids+=($!)
echo "run-split: starting RabbitMQ on 127.0.0.1:$amqp_port (logs in $broker/log)"
wait_for 120 "RabbitMQ" bash -c "exec 3<>/dev/tcp/127.0.0.1/$amqp_port"

# --- the registry: the built-in one, split in two, with keys and the broker's URL ---
auth_port=$(free_port)
services_port=$(free_port)
internal_port=$(free_port)
python3 - "$registry" "$work/townhall.json" "$auth_port" "$services_port" "$internal_port" <<'PY'
import json, sys
source, target, auth_port, services_port, internal_port = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
registry = json.load(open(source))
registry["modules"]["auth"]["internal"] = {"address": "127.0.0.1", "port": internal_port}
callers = [m for m in registry["modules"] if m != "auth"]
for module in callers:
    registry["modules"][module]["internal"] = {"key_file": f"keys/{module}.key"}
registry["bus"]["transport"] = {"kind": "rabbitmq", "url_file": "amqp.url", "stream_prefix": "townhall."}
registry["deployment"] = {
    "auth": {"modules": ["auth"], "address": "127.0.0.1", "port": auth_port},
    "services": {"modules": callers, "address": "127.0.0.1", "port": services_port},
}
registry["server"]["trusted_proxies"] = ["127.0.0.1"]
json.dump(registry, open(target, "w"), indent=2)
PY
callers=$(python3 -c 'import json,sys; print(",".join(m for m in json.load(open(sys.argv[1]))["modules"] if m != "auth"))' \
  "$work/townhall.json")
umask 077
for process in auth services; do
  mkdir -p "$work/$process/keys"
  echo "amqp://guest:guest@127.0.0.1:$amqp_port/%2f" >"$work/$process/amqp.url"
done
for module in ${callers//,/ }; do
  key=$work/keys/$module.key
  mkdir -p "$work/keys"
  [ -f "$key" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$key"
  cp "$key" "$work/auth/keys/" && cp "$key" "$work/services/keys/"
done
umask 022

# --- the two processes ---
"$binary" serve --demo --config "$work/townhall.json" --data-dir "$work/auth" --modules auth \
  >"$work/auth.out" 2>"$work/auth.log" &
pids+=($!)
wait_for 60 "the auth process" curl -sf "http://127.0.0.1:$auth_port/healthz"
"$binary" serve --demo --config "$work/townhall.json" --data-dir "$work/services" --modules "$callers" \
  >"$work/services.out" 2>"$work/services.log" &
pids+=($!)
wait_for 60 "the services process" curl -sf "http://127.0.0.1:$services_port/healthz"

# --- nginx: the generated site, served on a loopback port without TLS for the laptop ---
rm -rf "$work/deploy"
"$binary" registry --deploy "$work/deploy" --config "$work/townhall.json" >/dev/null
mkdir -p "$work/nginx"
python3 - "$work/deploy/nginx/townhall.conf" "$work/nginx/site.conf" "$front_port" <<'PY'
import re, sys
site, target, port = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
# The redirecting port-80 server goes; the TLS server listens on plain loopback HTTP.
redirect = re.search(r"# Plain HTTP only redirects.*?\n}\n", site, re.S)
assert redirect, "the generated site has no redirecting server: scripts/run-split.sh needs updating"
site = site.replace(redirect.group(0), "")
site, listens = re.subn(r"    listen (\[::\]:)?443 ssl http2;\n", "", site)
assert listens == 2, "the generated site's TLS listeners changed: scripts/run-split.sh needs updating"
site = site.replace("    server_name townhall.example.org;\n", f"    listen 127.0.0.1:{port};\n    server_name localhost;\n")
site = re.sub(r"    (ssl_[a-z_]+|add_header Strict-Transport-Security)[^\n]*\n", "", site)
open(target, "w").write(site)
PY
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
    access_log $work/nginx/access.log;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    include /etc/nginx/mime.types;
    include $work/nginx/site.conf;
}
EOF
/usr/sbin/nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/error.log" -g "daemon off;" \
  >"$work/nginx/console.log" 2>&1 &
pids+=($!)
front=http://127.0.0.1:$front_port
wait_for 30 "nginx" curl -sf "$front/healthz"
wait_for 60 "the processes' readiness" bash -c \
  "curl -sf http://127.0.0.1:$auth_port/readyz && curl -sf http://127.0.0.1:$services_port/readyz"

cat "$work/auth.out" "$work/services.out" | grep -v "^townhall listening" || true
echo "front door: $front"
echo "  auth process:     http://127.0.0.1:$auth_port (log $work/auth.log)"
echo "  services process: http://127.0.0.1:$services_port (log $work/services.log)"
echo "  broker:           amqp://127.0.0.1:$amqp_port (log $broker/log)"

echo "Ctrl-C stops everything."
wait -n "${pids[@]}" || true
echo "run-split: a process exited; stopping the others (logs in $work)" >&2
exit 1
