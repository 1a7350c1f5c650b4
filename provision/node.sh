#!/bin/bash
# Bring one of the lab's Docker hosts to its baseline, then check it.
#
# The lab runs this as root inside the guest, over SSH, as often as it likes:
# every step first looks at what is there and only changes what is missing.
#
# Environment:
#   LAB_NODE        the node's name in the lab, used in every message (required)
#   LAB_NIC         the lab NIC, the future ipvlan parent, e.g. eth1 (required)
#   LAB_ADDRESS     this host's address on the lab NIC, as CIDR, e.g.
#                   192.168.4.236/24 (required; added now, not made persistent)
#   DOCKER_SOURCE   where to install Docker from when it is missing:
#                   distro (Debian's docker.io), docker (Docker's apt
#                   repository, docker-ce) or none (the default: Docker must
#                   already be installed)
#   DOCKER_VERSION  an apt version to pin Docker's package to (optional)
#   BUSYBOX_TAR     a busybox root file system to import as busybox:latest
#                   (default: /usr/local/share/ipvlan-lab/busybox-rootfs.tar,
#                   which the lab's box provides; without it, docker pull)
#   LAB_DNS         an address to make the host's only name server (optional),
#                   so that containers' lookups stay inside the lab
#   LAB_MACHINE     vm (the lab's own VM, the default) or own (a machine of
#                   the user's: an address of LAB_ADDRESS's IP with another
#                   prefix is a problem to report, not one to remove)
#
# Each change it makes is noted in /var/lib/ipvlan-lab/changes; restore.sh
# undoes them.
#
# Output: one line per problem, "NODE: what is wrong; fix: what to do", then
# a last line "baseline ok" (exit 0) or "baseline failed: N problem(s)"
# (exit 1). Missing parameters exit with 2.
set -eu

: "${DOCKER_SOURCE:=none}"
: "${DOCKER_VERSION:=}"
: "${BUSYBOX_TAR:=/usr/local/share/ipvlan-lab/busybox-rootfs.tar}"
export DEBIAN_FRONTEND=noninteractive

for name in LAB_NODE LAB_NIC LAB_ADDRESS; do
    if [ -z "${!name:-}" ]; then
        echo "${LAB_NODE:-node}: $name is not set; fix: run node.sh with" \
            "LAB_NODE, LAB_NIC and LAB_ADDRESS in its environment"
        exit 2
    fi
done

case "$DOCKER_SOURCE" in
    distro | docker | none) ;;
    *)
        echo "$LAB_NODE: DOCKER_SOURCE=$DOCKER_SOURCE is not a source; fix: set" \
            "it to distro, docker or none"
        exit 2
        ;;
esac

# problem and finish: how this script reports.
. "$(dirname "$0")/baseline.sh"

if [ "$(id -u)" -ne 0 ]; then
    problem "node.sh runs as $(id -un), not root" "run it with sudo"
    finish
fi

# --- Docker: installed (if allowed), running, answering ---------------------

docker_package() {
    case "$DOCKER_SOURCE" in
        docker) echo docker-ce ;;
        *) echo docker.io ;;
    esac
}

installed_version() {
    dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null \
        | awk '$3 == "installed" { print $4 }'
}

# The installers run where set -e does not apply: each step checks itself.
install_from_distro() {
    apt-get update -q || return
    apt-get install -y -q --no-install-recommends --allow-downgrades \
        "docker.io${DOCKER_VERSION:+=$DOCKER_VERSION}"
}

install_from_docker() {
    # Docker's own repository, as its documentation sets it up.
    local distro codename
    distro=$(. /etc/os-release && echo "$ID")
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    apt-get update -q || return
    apt-get install -y -q --no-install-recommends ca-certificates curl || return
    install -d -m 0755 /etc/apt/keyrings
    curl -fsSL "https://download.docker.com/linux/$distro/gpg" \
        -o /etc/apt/keyrings/docker.asc || return
    echo "deb [arch=$(dpkg --print-architecture)" \
        "signed-by=/etc/apt/keyrings/docker.asc]" \
        "https://download.docker.com/linux/$distro $codename stable" \
        > /etc/apt/sources.list.d/docker.list
    apt-get update -q || return
    apt-get install -y -q --no-install-recommends --allow-downgrades \
        "docker-ce${DOCKER_VERSION:+=$DOCKER_VERSION}" \
        "docker-ce-cli${DOCKER_VERSION:+=$DOCKER_VERSION}" containerd.io
}

ensure_docker_installed() {
    local package current
    package=$(docker_package)
    current=$(installed_version "$package")
    if command -v dockerd >/dev/null && {
        [ -z "$DOCKER_VERSION" ] || [ "$current" = "$DOCKER_VERSION" ]
    }; then
        return 0
    fi
    local wanted="$package${DOCKER_VERSION:+ $DOCKER_VERSION}"
    case "$DOCKER_SOURCE" in
        distro | docker)
            echo "$LAB_NODE: installing $wanted (DOCKER_SOURCE=$DOCKER_SOURCE)"
            if ! "install_from_$DOCKER_SOURCE" >/tmp/node-docker-install.log 2>&1
            then
                problem "installing $wanted failed" \
                    "read /tmp/node-docker-install.log on $LAB_NODE"
                return 1
            fi
            if [ -n "$current" ]; then
                # The user's Docker, moved to the lab's version: say what it was.
                note "package-version $package $current"
            else
                note "package $package"
            fi
            ;;
        none)
            if command -v dockerd >/dev/null; then
                local have="$package ${current:-(version unknown)}"
                problem "$have is installed, not $DOCKER_VERSION" \
                    "install $wanted, or set DOCKER_SOURCE=distro or docker"
            else
                problem "Docker is not installed (DOCKER_SOURCE=none)" \
                    "install it, or set DOCKER_SOURCE=distro or docker"
            fi
            return 1
            ;;
    esac
}

ensure_docker_running() {
    # Enabling costs seconds under emulation: only when Docker is not running.
    if ! systemctl is-active --quiet docker.service; then
        if systemctl is-enabled --quiet docker.service 2>/dev/null; then
            systemctl start docker.service >/dev/null 2>&1 || true
            note "started-only docker.service"
        else
            systemctl enable --now docker.service >/dev/null 2>&1 || true
            note "started docker.service"
        fi
    fi
    # dockerd takes seconds to answer under emulation: wait up to a minute.
    local deadline=$((SECONDS + 60))
    until timeout 20 docker info >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            problem "dockerd does not answer docker info" \
                "look at journalctl -u docker on $LAB_NODE"
            return 1
        fi
        sleep 2
    done
    # The lab runs docker as the SSH user, without sudo (the Docker SDK over
    # `docker system dial-stdio` too): that user must be in the docker group.
    local user=${SUDO_USER:-root}
    if [ "$user" != root ] && ! id -nG "$user" | tr ' ' '\n' | grep -qx docker; then
        problem "$user, the lab's SSH user, cannot use Docker without sudo" \
            "add it to the docker group (usermod -aG docker $user) on $LAB_NODE"
    fi
}

ensure_busybox_image() {
    docker image inspect busybox:latest >/dev/null 2>&1 && return 0
    if [ -f "$BUSYBOX_TAR" ]; then
        docker import -c 'CMD ["sh"]' "$BUSYBOX_TAR" busybox:latest >/dev/null \
            && note "image busybox:latest" && return 0
        problem "docker import of $BUSYBOX_TAR failed" \
            "check the tar, or remove it to let node.sh pull busybox"
        return 1
    fi
    docker pull -q busybox:latest >/dev/null 2>&1 && note "image busybox:latest" \
        && return 0
    problem "no busybox image: $BUSYBOX_TAR is missing and docker pull failed" \
        "copy a busybox root file system tar to $BUSYBOX_TAR on $LAB_NODE"
    return 1
}

if ensure_docker_installed && ensure_docker_running; then
    ensure_busybox_image || true
fi

# --- Kernel: ipvlan and 802.1Q VLANs ------------------------------------------

kernel=$(uname -r)
if ! modprobe ipvlan 2>/dev/null; then
    problem "kernel $kernel built without CONFIG_IPVLAN (modprobe ipvlan failed)" \
        "boot a kernel with ipvlan, e.g. Debian's linux-image-amd64"
fi
if ! modprobe 8021q 2>/dev/null; then
    problem "kernel $kernel built without CONFIG_VLAN_8021Q (modprobe 8021q failed)" \
        "boot a kernel with 802.1Q VLAN support, e.g. Debian's linux-image-amd64"
fi

# --- sshd: room for the lab's parallel commands -------------------------------

# The lab keeps one SSH connection per node and runs several commands (and
# Docker API streams) on it at once; sshd's default of 10 sessions per
# connection is too few. A reload keeps the connections that are open.
sessions_conf=/etc/ssh/sshd_config.d/ipvlan-lab-sessions.conf
if [ -d /etc/ssh/sshd_config.d ] && ! grep -qs "^MaxSessions 64" "$sessions_conf"; then
    echo "MaxSessions 64" >"$sessions_conf"
    note "file $sessions_conf"
    systemctl reload ssh >/dev/null 2>&1 || systemctl reload sshd >/dev/null 2>&1 \
        || problem "sshd did not reload with MaxSessions 64" \
            "run systemctl reload ssh on $LAB_NODE"
fi

# --- Name resolution: only the lab's own LAN ----------------------------------

# Containers' lookups of names Docker does not know go to the host's resolver.
# Pointing it at the LAN node keeps them inside the lab and makes them fail
# fast, as a LAN resolver that knows no such name would.
# On a machine of the user's, the file it was (or the link: systemd-resolved's)
# is kept for restore.sh; the first one kept stays.
if [ -n "${LAB_DNS:-}" ] && ! grep -qx "nameserver $LAB_DNS" /etc/resolv.conf; then
    kept="$LAB_STATE_DIR/resolv.conf"
    if [ "$LAB_MACHINE" = own ] && ! [ -e "$kept" ] && ! [ -L "$kept" ]; then
        mkdir -p "$LAB_STATE_DIR"
        cp -a /etc/resolv.conf "$kept"
    fi
    rm -f /etc/resolv.conf
    echo "nameserver $LAB_DNS" >/etc/resolv.conf
    note "resolv.conf"
fi

# --- The lab NIC: up, carrying LAB_ADDRESS ------------------------------------

ensure_address() {
    local ip=${LAB_ADDRESS%/*} other
    # The same IP with another prefix length would make two routes: drop it.
    for other in $(ip -o -4 addr show dev "$LAB_NIC" | awk '{ print $4 }'); do
        if [ "${other%/*}" = "$ip" ] && [ "$other" != "$LAB_ADDRESS" ]; then
            if [ "$LAB_MACHINE" = own ]; then
                problem "$LAB_NIC has $other, not $LAB_ADDRESS" \
                    "make network.subnet in lab.yaml your LAN's ($other)"
                return 1
            fi
            ip addr del "$other" dev "$LAB_NIC"
        fi
    done
    ip -o -4 addr show dev "$LAB_NIC" | grep -qF " $LAB_ADDRESS " && return 0
    local error
    if ! error=$(ip addr add "$LAB_ADDRESS" dev "$LAB_NIC" 2>&1); then
        problem "cannot add $LAB_ADDRESS to $LAB_NIC ($error)" \
            "give LAB_ADDRESS as an IPv4 CIDR, e.g. 192.168.4.236/24"
        return 1
    fi
    note "address $LAB_ADDRESS $LAB_NIC"
}

ensure_nic_up() {
    if ! ip -o link show dev "$LAB_NIC" | grep -q '[<,]UP[,>]'; then
        ip link set dev "$LAB_NIC" up
        note "link-up $LAB_NIC"
    fi
    # A virtual NIC reports its carrier a moment after it is set up.
    local tries=10
    until ip -o link show dev "$LAB_NIC" | grep -q 'LOWER_UP'; do
        tries=$((tries - 1))
        if [ "$tries" -eq 0 ]; then
            problem "$LAB_NIC is up but has no carrier" \
                "attach the VM's second NIC to the lab network"
            return 1
        fi
        sleep 0.5
    done
}

if ! ip link show dev "$LAB_NIC" >/dev/null 2>&1; then
    problem "no interface $LAB_NIC (found: $(ls /sys/class/net | paste -sd,))" \
        "set the lab NIC's name, or give the VM a second NIC"
else
    ensure_nic_up || true
    ensure_address || true
fi

finish
