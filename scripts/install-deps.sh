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

# The OpenAPI validator the tests run (versions pinned in tests/openapi/package-lock.json).
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$root/tests/openapi/node_modules/@apidevtools/swagger-parser" ]; then
  echo "installing the OpenAPI validator (npm ci in tests/openapi)"
  if ! (cd "$root/tests/openapi" && npm ci --no-audit --no-fund --loglevel=error); then
    echo "WARNING: npm ci failed; the openapi_valid test will be skipped" >&2
  fi
fi
