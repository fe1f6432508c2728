#!/bin/bash
# Installs Dockyard's system packages and a virtualenv at .venv with the project in it.
# Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(busybox-static runc iproute2 curl nftables skopeo tini docker-compose)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
