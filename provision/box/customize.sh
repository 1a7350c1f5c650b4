#!/bin/sh
# Turn a freshly bootstrapped Debian 12 root file system into the lab's box.
#
# mmdebstrap runs this as a customize hook, on the build machine, once every
# package is installed; commands that must run as the guest (useradd,
# systemctl enable) go through chroot. Arguments:
#   $1  the root file system being built
#   $2  Vagrant's insecure public key, to authorize for user vagrant
#   $3  the box's default hostname (Vagrant renames each machine later)
#   $4  the label of the root file system (the kernel finds root by it)
set -eu
umask 022

root=$1
pubkey=$2
hostname=$3
label=$4

in_root() {
    chroot "$root" "$@"
}

# Write stdin to a new file inside the root file system (mode 0644, whatever
# was there before: mmdebstrap copies some files from the build machine with
# their modes), creating its directory.
put() {
    mkdir -p "$(dirname "$root/$1")"
    rm -f "$root/$1"
    cat > "$root/$1"
}

# --- User vagrant: the insecure key, sudo without a password, Docker ---------
in_root useradd --create-home --shell /bin/bash --groups sudo,docker vagrant
# "*" rather than the default "!": no password, but not a locked account, so
# sshd never refuses the key because of the lock.
in_root usermod --password '*' vagrant
install -d -m 0700 "$root/home/vagrant/.ssh"
install -m 0600 "$pubkey" "$root/home/vagrant/.ssh/authorized_keys"
in_root chown -R vagrant:vagrant /home/vagrant/.ssh
put etc/sudoers.d/vagrant <<'EOF'
vagrant ALL=(ALL) NOPASSWD: ALL
EOF
chmod 0440 "$root/etc/sudoers.d/vagrant"

# --- Names and the root file system -------------------------------------------
echo "$hostname" | put etc/hostname
put etc/hosts <<EOF
127.0.0.1 localhost
127.0.1.1 $hostname
::1 localhost ip6-localhost ip6-loopback
EOF
# Not the build machine's name server: the lab sets one when it needs it.
put etc/resolv.conf <<'EOF'
# No name server: ipvlan-lab's node.sh writes one when LAB_DNS is given.
EOF
# No locales are installed; C.UTF-8 is built into the C library.
echo "LANG=C.UTF-8" | put etc/default/locale
# No fsck at boot (pass 0): the disk is a throwaway and fsck costs boot time.
put etc/fstab <<EOF
LABEL=$label / ext4 rw,noatime,errors=remount-ro 0 0
EOF
# Every machine made from the box must get its own machine-id: networkd
# derives DHCP identities from it. An empty file makes systemd create one.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

# --- Network: systemd-networkd, no ifupdown (it pulls in udev-settle) --------
put etc/systemd/network/10-management.network <<'EOF'
# eth0 is Vagrant's management NIC: DHCP, identified by MAC address so the
# hypervisor's DHCP server hands each machine the lease it expects.
[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
ClientIdentifier=mac
EOF
# Named 90- so that a file Vagrant writes for a private network (50-vagrant-*)
# takes precedence. The globs leave out VLAN links such as eth1.100, which
# Docker creates and owns.
put etc/systemd/network/90-lab.network <<'EOF'
# Every other ethN is a lab NIC: up, with no address and no DHCP. An ipvlan
# parent must be up; the lab adds addresses itself, and KeepConfiguration
# stops networkd from removing them when it restarts.
[Match]
Name=eth[1-9] eth[1-9][0-9]

[Link]
RequiredForOnline=no

[Network]
DHCP=no
LinkLocalAddressing=no
IPv6AcceptRA=no
ConfigureWithoutCarrier=yes
KeepConfiguration=yes
EOF
in_root systemctl enable systemd-networkd.service

# --- sshd: no DNS lookups; host keys made on each machine's first boot ------
put etc/ssh/sshd_config.d/ipvlan-lab.conf <<'EOF'
UseDNS no
# The lab runs many commands at once over one connection per node.
MaxSessions 64
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
EOF
rm -f "$root"/etc/ssh/ssh_host_*
# Only ed25519 and ECDSA keys: an RSA key takes seconds to make under
# emulation.
put etc/systemd/system/ssh-host-keys.service <<'EOF'
[Unit]
Description=Make this machine's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key

[Install]
WantedBy=ssh.service
EOF
in_root systemctl enable ssh-host-keys.service

# --- Nothing periodic: no apt, man-db or disk maintenance behind the lab ----
for unit in apt-daily.timer apt-daily-upgrade.timer man-db.timer \
    dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

# --- A busybox root file system, imported as busybox:latest by node.sh -------
bb=$(mktemp -d)
trap 'rm -rf "$bb"' EXIT
mkdir -p "$bb/bin" "$bb/sbin" "$bb/usr/bin" "$bb/usr/sbin" "$bb/etc" \
    "$bb/root" "$bb/tmp"
chmod 1777 "$bb/tmp"
cp "$root/bin/busybox" "$bb/bin/busybox"
# busybox-static runs on the build machine too; it names its own applets.
for applet in $("$bb/bin/busybox" --list-full); do
    [ -e "$bb/$applet" ] || ln -s /bin/busybox "$bb/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
    > "$bb/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$bb/etc/group"
mkdir -p "$root/usr/local/share/ipvlan-lab"
tar --numeric-owner --owner=0 --group=0 -C "$bb" \
    -cf "$root/usr/local/share/ipvlan-lab/busybox-rootfs.tar" .
