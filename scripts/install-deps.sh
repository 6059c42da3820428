#!/usr/bin/env bash
# Installs the Debian 12 packages Townhall builds, tests and benchmarks with.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  libboost1.81-dev
  libsqlite3-dev libsqlitecpp-dev sqlite3
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsodium-dev
  libhowardhinnant-date-dev tzdata libunistring-dev
  curl wrk
  prometheus
  clang libclang-rt-14-dev
  nodejs
  chromium
)

missing=()
for p in "${packages[@]}"; do
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
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's nodejs comes without npm (NodeSource's includes it).
if ! command -v npm >/dev/null; then
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends npm
fi

# The npm packages the tests run, versions pinned in each package-lock.json: the OpenAPI
# validator (tests/openapi) and playwright-core, which drives Debian's chromium for the
# dashboard test (tests/dashboard; it never downloads a browser).
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
