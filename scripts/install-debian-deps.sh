#!/usr/bin/env bash
# Install the Debian packages the tests and benchmarks drive (real clients, load generators).
# Idempotent and quick when everything is present; needs root (CI and dev machines run as root).
set -euo pipefail
PACKAGES=(curl wrk s3cmd rclone)
PACKAGES+=(cloud-init)  # guest API tests: DataSourceLXD reads our socket
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-debian-deps: need root to install: ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
