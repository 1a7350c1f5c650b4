#!/bin/bash
# Bring the lab's LAN node to its baseline, then check it.
#
# The LAN node plays the LAN's router (the how-to's gateway) and "another
# machine on the LAN": it only needs its addresses on the lab NIC. On the
# lab's own VM (LAB_MACHINE=vm, the default) Docker is stopped there, if the
# box has it, to leave the CPU to the Docker hosts; a machine of the user's
# (LAB_MACHINE=own) keeps its Docker.
# The lab runs this as root inside the guest, over SSH, as often as it likes.
#
# Environment:
#   LAB_NODE        the node's name in the lab, used in every message (required)
#   LAB_NIC         the lab NIC, e.g. eth1 (required)
#   LAB_ADDRESSES   the node's addresses on the lab NIC, space-separated CIDRs,
#                   e.g. "192.168.4.199/24 192.168.4.1/24" (required; added
#                   now, not made persistent)
#   LAB_MACHINE     vm (the default) or own, as above
#
# Each change it makes is noted in /var/lib/ipvlan-lab/changes; restore.sh
# undoes them.
#
# Output: one line per problem, "NODE: what is wrong; fix: what to do", then
# a last line "baseline ok" (exit 0) or "baseline failed: N problem(s)"
# (exit 1). Missing parameters exit with 2.
set -eu

for name in LAB_NODE LAB_NIC LAB_ADDRESSES; do
    if [ -z "${!name:-}" ]; then
        echo "${LAB_NODE:-lan}: $name is not set; fix: run lan.sh with" \
            "LAB_NODE, LAB_NIC and LAB_ADDRESSES in its environment"
        exit 2
    fi
done

# problem and finish: how this script reports.
. "$(dirname "$0")/baseline.sh"

if [ "$(id -u)" -ne 0 ]; then
    problem "lan.sh runs as $(id -un), not root" "run it with sudo"
    finish
fi

# --- Docker and containerd: stopped and disabled, when present ---------------

for unit in docker.socket docker.service containerd.service; do
    [ "$LAB_MACHINE" = vm ] || break
    # Disabling costs seconds under emulation: only what is on or enabled.
    if systemctl is-enabled --quiet "$unit" 2>/dev/null \
        || systemctl is-active --quiet "$unit" 2>/dev/null; then
        systemctl disable --now "$unit" >/dev/null 2>&1 || true
        if systemctl is-active --quiet "$unit"; then
            problem "$unit is still running" "systemctl stop $unit on $LAB_NODE"
        fi
    fi
done

# --- The lab NIC: up, carrying every address ---------------------------------

has_address() {
    ip -o -4 addr show dev "$LAB_NIC" | grep -qF " $1 "
}

if ! ip link show dev "$LAB_NIC" >/dev/null 2>&1; then
    problem "no interface $LAB_NIC (found: $(ls /sys/class/net | paste -sd,))" \
        "set the lab NIC's name, or give the VM a second NIC"
    finish
fi

if ! ip -o link show dev "$LAB_NIC" | grep -q '[<,]UP[,>]'; then
    ip link set dev "$LAB_NIC" up || true
    note "link-up $LAB_NIC"
fi
# A virtual NIC reports its carrier a moment after it is set up.
for _ in 1 2 3 4 5 6 7 8 9 10; do
    ip -o link show dev "$LAB_NIC" | grep -q 'LOWER_UP' && break
    sleep 0.5
done
if ! ip -o link show dev "$LAB_NIC" | grep -q 'LOWER_UP'; then
    problem "$LAB_NIC is down or has no carrier" \
        "attach the VM's second NIC to the lab network"
fi

for address in $LAB_ADDRESSES; do
    has_address "$address" && continue
    if ! error=$(ip addr add "$address" dev "$LAB_NIC" 2>&1); then
        problem "cannot add $address to $LAB_NIC ($error)" \
            "give LAB_ADDRESSES as IPv4 CIDRs, e.g. \"192.168.4.1/24\""
        continue
    fi
    note "address $address $LAB_NIC"
    if ! has_address "$address"; then
        problem "$address is not on $LAB_NIC after adding it" \
            "look at ip addr show dev $LAB_NIC on $LAB_NODE"
    fi
done

finish
