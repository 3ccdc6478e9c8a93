#!/usr/bin/env bash
# Installs the Debian packages the e2e harness (internal/testenv) needs on a
# fresh Debian 12 machine. Idempotent and quiet: installs only what is missing.
set -euo pipefail

# gcc, libc6-dev and libseccomp-dev: hack/build-containerd.sh links runc static-pie with libseccomp.
# tinyproxy-bin: the forward proxy of TestProxy, the binary only (no service to start or stop).
pkgs=(debootstrap systemd-container iproute2 apt-utils dpkg-dev curl gpg util-linux tar ignition gcc libc6-dev libseccomp-dev tinyproxy-bin)

if [ "$(id -u)" -ne 0 ]; then
  echo "e2e-prereqs: must run as root (apt-get install)" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

export DEBIAN_FRONTEND=noninteractive
apt-get -qq update
apt-get -qq -y install --no-install-recommends "${missing[@]}" >/dev/null
echo "e2e-prereqs: installed ${missing[*]}"
