#!/usr/bin/env bash
# Install the real servers and build tools the elector test suite needs.
# Idempotent: when every package is present it returns at once without touching apt.
# Usage: scripts/install-deps.sh [--build-only]
set -euo pipefail

# --build-only: just what building the workspace needs (etcd-client's build runs protoc).
if [ "${1:-}" = "--build-only" ]; then
  packages=(protobuf-compiler libprotobuf-dev)
else
  packages=(redis-server redis-tools etcd-server etcd-client zookeeperd protobuf-compiler libprotobuf-dev iproute2 procps systemd chromium python3-kazoo)
fi

# PostgreSQL for election-postgres (its tests run initdb + postgres from it, as nobody).
if [ "${1:-}" != "--build-only" ]; then packages+=(postgresql); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all present (${packages[*]})"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages may start system services; the tests start their own servers.
for svc in redis-server etcd zookeeper postgresql; do
  $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "install-deps: done"
