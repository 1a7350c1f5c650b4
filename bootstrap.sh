#!/usr/bin/env bash
# Prepare this machine for the lab: the host packages (Debian/Ubuntu, as root)
# and a Python virtual environment in .venv with the lab's dependencies.
# Safe to run again: it installs only what is missing.
#
#   ./bootstrap.sh            libvirt + QEMU/KVM, Vagrant, the box tools
#   LAB_APT=no ./bootstrap.sh only the Python side (VirtualBox users, or no root)
set -euo pipefail
cd "$(dirname "$0")"

host_packages=(
  vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients dnsmasq-base
  qemu-system-x86 qemu-utils iptables
  # to build the offline box
  mmdebstrap grub-pc-bin fdisk e2fsprogs
  # the tests: the report in a real browser, captures, the venv itself
  chromium tcpdump iproute2 openssh-client python3-venv
)

if [ "${LAB_APT:-yes}" != no ]; then
  missing=()
  for p in "${host_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "bootstrap: needs root to install: ${missing[*]}" >&2
      echo "bootstrap: run it with sudo, or LAB_APT=no to skip host packages" >&2
      exit 2
    fi
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts must not start services here: the lab starts libvirt
    # itself when it needs it (and only then).
    policy=/usr/sbin/policy-rc.d
    [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1; }
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    [ -z "${made_policy:-}" ] || rm -f "$policy"
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.requirements
if ! cmp -s requirements.txt "$stamp"; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  cp requirements.txt "$stamp"
fi
echo "bootstrap: ready (.venv/bin/invoke --list shows the lab's commands)"
