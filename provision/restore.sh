#!/bin/bash
# Undo what node.sh and lan.sh changed on a machine that outlives the lab
# (provider existing), newest change first, from the notes they left in
# /var/lib/ipvlan-lab/changes. The lab runs this as root over SSH from
# `invoke down`, after it has removed what the scenarios left.
#
# Environment:
#   LAB_NODE        the node's name in the lab, used in every message (required)
#
# Output: one line per change undone or kept, then "restored" (exit 0) or
# "restore failed: N problem(s)" (exit 1). Docker packages the lab installed
# stay installed: the line says how to remove them.
set -eu

if [ -z "${LAB_NODE:-}" ]; then
    echo "node: LAB_NODE is not set; fix: run restore.sh with LAB_NODE set"
    exit 2
fi
state=${LAB_STATE_DIR:-/var/lib/ipvlan-lab}
problems=0

problem() {
    echo "$LAB_NODE: $1; fix: $2"
    problems=$((problems + 1))
}

undo() {
    local what=$1 arg=${2:-} nic=${3:-}
    case "$what" in
        address)
            if ! ip -o -4 addr show dev "$nic" 2>/dev/null | grep -qF " $arg "; then
                echo "$LAB_NODE: address $arg is no longer on $nic"
            elif ip addr del "$arg" dev "$nic"; then
                echo "$LAB_NODE: removed address $arg from $nic"
            else
                problem "cannot remove $arg from $nic" \
                    "ip addr del $arg dev $nic on $LAB_NODE"
            fi
            ;;
        link-up)
            ip link set dev "$arg" down 2>/dev/null || true
            echo "$LAB_NODE: set $arg down again"
            ;;
        resolv.conf)
            if [ -e "$state/resolv.conf" ] || [ -L "$state/resolv.conf" ]; then
                rm -f /etc/resolv.conf
                cp -a "$state/resolv.conf" /etc/resolv.conf
                rm -f "$state/resolv.conf"
                echo "$LAB_NODE: put back /etc/resolv.conf"
            else
                problem "no copy of the old /etc/resolv.conf" \
                    "write /etc/resolv.conf on $LAB_NODE by hand"
            fi
            ;;
        file)
            rm -f "$arg"
            if [[ $arg == /etc/ssh/* ]]; then
                systemctl reload ssh >/dev/null 2>&1 \
                    || systemctl reload sshd >/dev/null 2>&1 || true
            fi
            echo "$LAB_NODE: removed $arg"
            ;;
        image)
            docker image rm "$arg" >/dev/null 2>&1 || true
            echo "$LAB_NODE: removed the image $arg"
            ;;
        started)
            systemctl disable --now "$arg" >/dev/null 2>&1 || true
            echo "$LAB_NODE: stopped $arg, which was not running before"
            ;;
        started-only)
            # Enabled but stopped before the lab: stopped again, still enabled.
            systemctl stop "$arg" >/dev/null 2>&1 || true
            echo "$LAB_NODE: stopped $arg, which was not running before"
            ;;
        package)
            echo "$LAB_NODE: kept $arg, which the lab installed" \
                "(apt-get purge $arg removes it)"
            ;;
        package-version)
            echo "$LAB_NODE: kept $arg at the lab's version; it was $nic" \
                "(apt-get install --allow-downgrades $arg=$nic puts it back)"
            ;;
        *)
            problem "an unknown note: $what $arg $nic" \
                "look at $state/changes on $LAB_NODE"
            ;;
    esac
}

if [ -f "$state/changes" ]; then
    # Newest first: the resolver before the packages, an address before its
    # link goes down. A change that could not be undone stays noted, so that
    # the next `invoke down` tries it again.
    kept=()
    while read -r what arg nic; do
        before=$problems
        undo "$what" "$arg" "$nic"
        [ "$problems" -eq "$before" ] || kept=("$what${arg:+ $arg}${nic:+ $nic}" "${kept[@]}")
    done < <(tac "$state/changes")
    if [ ${#kept[@]} -eq 0 ]; then
        rm -f "$state/changes"
    else
        printf '%s\n' "${kept[@]}" >"$state/changes"
    fi
fi
rmdir "$state" 2>/dev/null || true

if [ "$problems" -eq 0 ]; then
    echo "restored"
    exit 0
fi
echo "restore failed: $problems problem(s)"
exit 1
