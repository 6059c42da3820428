#!/usr/bin/env bash
# Installs the Debian 12 packages Townhall needs. Idempotent: does nothing when everything
# is already installed. Uses sudo when not run as root.
#
#   scripts/install-deps.sh --build   what building the server needs (make release; a
#                                     production machine): compiler, CMake, the libraries
#   scripts/install-deps.sh [--test]  everything make test, make fuzz and the benchmarks
#                                     need (the default; make run, make test): the build
#                                     set, test and benchmark tools, Clang for the fuzzers,
#                                     Node.js, npm and Chromium, and the npm packages the
#                                     tests run
set -euo pipefail

mode=test
case "${1:-}" in
  --build) mode=build ;;
  --test | "") mode=test ;;
  -h | --help)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [--build | --test]" >&2
    exit 2
    ;;
esac

# Building the server (and running it: the shared libraries come with the -dev packages).
build_packages=(
  build-essential cmake pkg-config
  libboost1.81-dev                      # Beast, Asio
  libsqlite3-dev libsqlitecpp-dev       # SQLite 3.40 and its C++ wrapper
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libsodium-dev                         # Argon2id, tokens, the secret box, SHA-256
  libhowardhinnant-date-dev tzdata      # IANA time zones (parks' opening hours)
  libunistring-dev                      # NFKC and case folding of emails
  libcurl4-openssl-dev                  # notify's SMTP client (STARTTLS, AUTH)
  librabbitmq-dev                       # rabbitmq-c: AMQP 0-9-1 client of the split's bus transport
)
# Only for make test, make fuzz, the benchmarks and the soak.
test_packages=(
  ccache                                # faster rebuilds (CMake uses it when present)
  sqlite3                               # the sqlite3 shell, to look into module files
  libgtest-dev libgmock-dev libbenchmark-dev
  curl wrk                              # the tests' and benchmarks' HTTP clients
  python3                               # the Prometheus check's and benchmarks' helpers
  python3-aiosmtpd                      # the SMTP server notify's tests deliver to
  prometheus                            # only for promtool: alert rules and /metrics
  clang libclang-rt-14-dev              # libFuzzer (make fuzz)
  nodejs npm                            # the OpenAPI validator and the browser driver
  chromium                              # the dashboard test's browser
  rabbitmq-server                       # the broker the transport tests start (own dir and ports)
  nginx                                 # nginx -t on the split's generated site (never started as a service)
)

packages=("${build_packages[@]}")
if [ "$mode" = test ]; then
  packages+=("${test_packages[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  # NodeSource's nodejs brings its own npm and conflicts with Debian's npm package.
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  # rabbitmq-server's postinst starts the system broker (invoke-rc.d: port 5672 and an
  # epmd on 4369) wherever an init runs, and fails the whole install when that start fails;
  # nginx's starts a web server on port 80. The tests start their own brokers (own dirs,
  # own ports, own epmd) and only check nginx's configuration, so neither is started: a
  # policy-rc.d denying them while apt runs, unless the machine has a policy of its own
  # (containers often do; without an init nothing starts). Under systemd the units stay
  # enabled, for the operator who wants them.
  policy=/usr/sbin/policy-rc.d
  if [[ " ${missing[*]} " == *" rabbitmq-server "* || " ${missing[*]} " == *" nginx "* ]] && [ ! -e "$policy" ]; then
    trap '"${sudo_cmd[@]}" rm -f "$policy"' EXIT
    printf '#!/bin/sh\n# scripts/install-deps.sh: no system broker or web server during the install\ncase "$1" in rabbitmq-server | nginx) exit 101 ;; esac\nexit 0\n' |
      "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod 755 "$policy"
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ -n "$(trap -p EXIT)" ]; then "${sudo_cmd[@]}" rm -f "$policy" && trap - EXIT; fi
fi

[ "$mode" = test ] || exit 0

# The npm packages the tests run, versions pinned in each package-lock.json: the OpenAPI
# validator (tests/openapi) and playwright-core, which drives Debian's chromium for the
# dashboard test (tests/dashboard; it never downloads a browser), and the portal test's
# own copy of it with axe-core, the accessibility checker (tests/portal).
root=$(cd "$(dirname "$0")/.." && pwd)
npm_install() {  # <dir> <package> <what it is for>
  if [ ! -d "$root/$1/node_modules/$2" ]; then
    echo "installing $3 (npm ci in $1)"
    if ! (cd "$root/$1" && npm ci --no-audit --no-fund --loglevel=error); then
      echo "WARNING: npm ci failed in $1; the test that needs $2 will be skipped" >&2
    fi
  fi
}
npm_install tests/openapi @apidevtools/swagger-parser "the OpenAPI validator"
npm_install tests/dashboard playwright-core "the browser driver"
npm_install tests/portal axe-core "the portal's browser driver and accessibility checker"
