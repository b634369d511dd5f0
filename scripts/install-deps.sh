#!/usr/bin/env bash
# Installs everything pier needs to build, run and test on Debian 12.
# Safe to run twice: it only installs what is missing.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the test peers (AWS CLI, boto3,
#                                    s3cmd, rclone, nginx, s3rver, ...)
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

build_pkgs=(build-essential cmake pkg-config git ca-certificates media-types
  libcurl4-openssl-dev libssl-dev libgit2-dev libsqlite3-dev libyaml-dev
  libjansson-dev libexpat1-dev libmicrohttpd-dev)
test_pkgs=(libcmocka-dev python3 python3-botocore python3-boto3 python3-pytest
  awscli s3cmd rclone nginx-light wrk hyperfine nodejs npm clang-format curl
  procps iproute2 chromium)

pkgs=("${build_pkgs[@]}")
[ $want_test = 1 ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# On machines where node/npm come from elsewhere (nvm, NodeSource), keep them.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" != 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ $want_test = 1 ]; then
  # npm test tools, pinned in tests/node/package.json + package-lock.json.
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ ! -d "$here/tests/node/node_modules/@20minutes/s3rver" ] || \
     [ ! -d "$here/tests/node/node_modules/playwright-core" ] || \
     [ "$here/tests/node/package.json" -nt "$here/tests/node/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm test tools"
    (cd "$here/tests/node" && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
