"""The hypervisors the lab can run on, and the choice between them.

A provider is a small class: what it needs on this machine (:meth:`problems`),
what it sets up before Vagrant starts (:meth:`prepare`), and what it removes
after Vagrant is done (:meth:`teardown`). :func:`choose` picks one, and never
falls back silently from one that was asked for.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import PROJECT, Config
from .errors import ConfigError, ProviderError
from .state import State

log = logging.getLogger(__name__)

LIBVIRT_URI = "qemu:///system"
#: The storage pool vagrant-libvirt keeps disks in, and its definition file.
POOL = "default"
POOL_FILE = Path("/etc/libvirt/storage/default.xml")
POOL_PATH = "/var/lib/libvirt/images"
DAEMONS = ("virtlogd", "libvirtd")
KVM_DEVICE = Path("/dev/kvm")
#: Starts the daemon named in $0, in a mount namespace of its own, with an
#: empty file over /dev/kvm and a copy of qemu.conf that turns off libvirt's
#: per-domain /dev (which would try to carry the /dev/kvm mount into each
#: guest's namespace and fail). Nothing outside the namespace sees either
#: change, and both files are gone once the namespace is.
HIDE_KVM = (
    'f=$(mktemp) && q=$(mktemp) && trap \'rm -f "$f" "$q"\' EXIT'
    ' && mount --bind "$f" /dev/kvm'
    " && sed '/^[[:space:]]*namespaces[[:space:]]*=/d' /etc/libvirt/qemu.conf"
    ' >"$q" && echo "namespaces = []" >>"$q"'
    ' && mount --bind "$q" /etc/libvirt/qemu.conf && rm -f "$f" "$q"'
    ' && exec "$0" -d'
)
#: Seconds a virsh command may take before libvirtd counts as hung.
VIRSH_TIMEOUT = 60
FIREWALL_TABLES = ("filter", "nat", "mangle")
INSTALL_LIBVIRT = (
    "apt-get install vagrant vagrant-libvirt libvirt-daemon-system "
    "libvirt-clients dnsmasq-base qemu-system-x86 qemu-utils "
    "(or run ./bootstrap.sh)"
)


@dataclass
class Choice:
    """The provider chosen, and why."""

    provider: Provider
    why: str


class Provider:
    """What every provider offers; see the module docstring."""

    #: The lab's name for it (``lab.yaml``'s ``provider``).
    name = ""
    #: Vagrant's name for it.
    vagrant = ""
    #: The ``boxes`` entry of ``lab.yaml`` it uses.
    box_key = ""
    #: Whether ``auto`` may choose it.
    automatic = True
    #: Whether the nodes are machines of the user's that outlive the lab.
    keeps_machines = False

    def __init__(self, config: Config, say: Callable[[str], None] = log.info):
        self.config = config
        self.say = say

    def problems(self) -> list[str]:
        """What keeps this provider from working here; empty when it can."""
        missing = [] if shutil.which("vagrant") else ["vagrant is not installed"]
        return missing + self._problems()

    def _problems(self) -> list[str]:
        return []

    def install_hint(self) -> str:
        """What to install so that :meth:`problems` comes back empty."""
        return INSTALL_LIBVIRT

    @property
    def prefix(self) -> str:
        """What the names of the lab's machines and disks start with (the
        Vagrantfile's default_prefix): the lab network's name and ``_``."""
        return self.config.data["network"]["name"] + "_"

    def box(self) -> dict:
        """The box entry (name and version) this provider boots."""
        return self.config.data["boxes"][self.box_key]

    def vagrant_settings(self) -> dict:
        """Provider values the Vagrantfile reads besides ``lab.yaml``."""
        return {"provider": self.name, "vagrant_provider": self.vagrant}

    def prepare(self, state: State) -> None:
        """Set up what Vagrant needs from the hypervisor."""

    def refresh_box(self) -> None:
        """Drop the hypervisor's copy of the box if the box was rebuilt since
        the copy was made, so that new nodes boot the box Vagrant holds."""

    def stage_box(self, state: State) -> None:
        """Give the hypervisor its copy of the box before Vagrant boots the
        nodes, if this provider can do that faster than Vagrant."""

    def teardown(self, state: State) -> list[str]:
        """Remove what :meth:`prepare` made, once no node is left; return what
        of the lab is still present."""
        return self.leftovers()

    def leftovers(self) -> list[str]:
        """Anything of the lab still present on this machine."""
        return []

    def subnets(self) -> dict[str, ipaddress.IPv4Network]:
        """The lab's subnets this provider uses, by their ``lab.yaml`` key."""
        subnets = {
            "vlan.host_subnet": self.config.vlan_host_subnet,
            "vlan.subnet": self.config.vlan_subnet,
        }
        if self.config.data["network"]["mode"] == "isolated":
            # Bridged, the lab's segment is a LAN this machine may well route.
            subnets = {"network.subnet": self.config.subnet, **subnets}
        return subnets

    def own_devices(self) -> set[str]:
        """This machine's network devices that are the lab's own."""
        return set()

    def check_routes(self, routes: list[dict] | None = None) -> None:
        """Raise :class:`ConfigError` if a lab subnet is one this machine
        already routes (``routes`` as ``ip -j route`` prints them; read from
        this machine when left out)."""
        check_routes(
            self.config,
            self.subnets(),
            host_routes() if routes is None else routes,
            self.own_devices(),
        )


class VirtualBox(Provider):
    """VirtualBox, the how-to's own hypervisor."""

    name = "virtualbox"
    vagrant = "virtualbox"
    box_key = "virtualbox"

    def _problems(self) -> list[str]:
        if shutil.which("VBoxManage"):
            return []
        return ["VirtualBox is not installed (no VBoxManage on the PATH)"]

    def install_hint(self) -> str:
        return "install VirtualBox from virtualbox.org and Vagrant from vagrantup.com"


class Libvirt(Provider):
    """libvirt, driving QEMU with or without KVM."""

    vagrant = "libvirt"
    box_key = "libvirt"
    #: The libvirt domain type: ``kvm`` or ``qemu``.
    driver = ""

    def _problems(self) -> list[str]:
        problems = []
        for tool in ("virsh", "libvirtd", "virtlogd", "qemu-system-x86_64"):
            if not shutil.which(tool):
                problems.append(f"{tool} is not installed")
        if shutil.which("vagrant") and not _has_plugin("vagrant-libvirt"):
            problems.append("the vagrant-libvirt plugin is not installed")
        return problems

    def vagrant_settings(self) -> dict:
        settings = super().vagrant_settings()
        settings["libvirt_driver"] = self.driver
        settings["libvirt_description"] = domain_description()
        return settings

    def subnets(self) -> dict[str, ipaddress.IPv4Network]:
        subnets = super().subnets()
        subnets["management.subnet"] = ipaddress.IPv4Network(
            self.config.data["management"]["subnet"]
        )
        return subnets

    def own_devices(self) -> set[str]:
        # The bridges of the lab's own libvirt networks: the management
        # network's route on its bridge is the lab's, not a clash.
        if not _virsh_ok():
            return set()
        bridges = set()
        for name in (
            self.config.data["network"]["name"],
            self.config.data["management"]["name"],
        ):
            for line in _virsh("net-info", name, check=False).stdout.splitlines():
                if line.startswith("Bridge:"):
                    bridges.add(line.split(":", 1)[1].strip())
        return bridges

    # Daemons -----------------------------------------------------------

    def prepare(self, state: State) -> None:
        self._note_before(state)
        self._start_daemons(state)
        management = self.config.data["management"]
        self._define_network(
            state,
            management["name"],
            management_network_xml(management["name"], management["subnet"]),
        )
        if self.config.data["network"]["mode"] == "isolated":
            name = self.config.data["network"]["name"]
            self._define_network(state, name, isolated_network_xml(name))

    def _start_daemons(self, state: State) -> None:
        if _virsh_ok():
            return
        if _pid1() == "systemd":
            raise ProviderError(
                "libvirtd is not running",
                hint="start it with `systemctl start libvirtd`, then run this again",
            )
        for daemon in DAEMONS:
            if _running(daemon):
                continue
            self.say(f"starting {daemon} (no systemd here to start it)")
            argv = self._daemon_command(daemon)
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            if result.returncode != 0 and argv[0] == "unshare":
                # No mount namespace allowed here: libvirtd as it is, slower.
                self.say(
                    f"{daemon} cannot be given a /dev/kvm of its own here "
                    f"({result.stderr.strip()[-200:] or 'unshare failed'}); "
                    "starting it as it is"
                )
                argv = [daemon, "-d"]
                result = subprocess.run(
                    argv, capture_output=True, text=True, check=False
                )
            if result.returncode != 0:
                raise ProviderError(
                    f"{daemon} could not be started: {result.stderr.strip()}",
                    hint=f"run `{daemon} -d` by hand to see why; "
                    f"reinstall with: {INSTALL_LIBVIRT}",
                )
            pid = _wait_pid(daemon)
            state.record("daemon", daemon, pid=pid)
        deadline = time.monotonic() + 30
        while not _virsh_ok():
            if time.monotonic() > deadline:
                raise ProviderError(
                    "libvirtd started but does not answer within 30 s",
                    hint="see /var/log/libvirt/libvirtd.log",
                )
            time.sleep(0.5)

    def _daemon_command(self, daemon: str) -> list[str]:
        """How the lab starts ``daemon``.

        Where the lab runs guests without KVM but a /dev/kvm exists that
        cannot run them (nested, paravirtual), libvirtd probes QEMU with KVM
        and then finds the device closed to its QEMU user. It then takes its
        cached capabilities for stale and probes QEMU again, some 30 s under
        emulation, before every domain it defines or starts. A libvirtd that
        sees an empty file there probes without KVM once and keeps the result.
        """
        if (
            daemon == "libvirtd"
            and self.driver == "qemu"
            and KVM_DEVICE.exists()
            and kvm_problems(KVM_DEVICE)
            and shutil.which("unshare")
        ):
            self.say(
                "libvirtd will not see /dev/kvm: the lab's guests cannot use "
                "KVM here, and libvirt would otherwise probe QEMU again for "
                "every domain"
            )
            return [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                HIDE_KVM,
                daemon,
            ]
        return [daemon, "-d"]

    def _stop_daemons(self, state: State) -> None:
        # Stop only what the lab started, libvirtd first.
        for daemon in reversed(DAEMONS):
            info = state.made("daemon").get(daemon)
            if not info:
                continue
            pid = info.get("pid")
            if pid and _pid_is(pid, daemon):
                self.say(f"stopping {daemon} (the lab started it)")
                _terminate(pid)
            state.forget("daemon", daemon)

    # Networks ----------------------------------------------------------

    def _define_network(self, state: State, name: str, xml: str) -> None:
        if not _net_exists(name):
            self.say(f"creating the isolated libvirt network {name}")
            _virsh("net-define", "/dev/stdin", stdin=xml)
            state.record("libvirt-network", name)
        elif not self._is_ours(state, name):
            raise ProviderError(
                f"a libvirt network named {name} exists and is not this lab's",
                hint="give the lab other network names in lab.yaml "
                "(network.name, management.name), or remove that network "
                f"yourself with `virsh net-undefine {name}`",
            )
        if not _net_active(name):
            _virsh("net-start", name)

    @staticmethod
    def _is_ours(state: State, name: str) -> bool:
        """A network is the lab's if the lab recorded making it, or if it
        carries the UUID the lab gives a network of that name."""
        return name in state.made("libvirt-network") or _net_uuid(name) == (
            network_uuid(name)
        )

    def _note_before(self, state: State) -> None:
        # What was here before the lab: libvirtd and its package make firewall
        # chains and (through vagrant-libvirt) a storage pool; down removes
        # only what was not.
        if "before" not in state.data["lab"]:
            state.data["lab"]["before"] = {
                "firewall": firewall_chains(),
                "pool": POOL_FILE.exists(),
            }
            state.save()

    def teardown(self, state: State) -> list[str]:
        names = {
            self.config.data["network"]["name"],
            self.config.data["management"]["name"],
            *state.made("libvirt-network"),
        }
        before = state.data["lab"].get("before", {})
        left = []
        if _virsh_ok():
            for domain in self._domains():
                # A node Vagrant lost track of (stopped between making the
                # domain and noting its id): the lab's by its name's prefix.
                self.say(f"removing libvirt domain {domain} (Vagrant did not)")
                _virsh("destroy", domain, check=False)
                _virsh("undefine", domain, check=False)
            for name in sorted(names):
                if _net_exists(name) and not self._is_ours(state, name):
                    self.say(f"leaving libvirt network {name}: it is not the lab's")
                elif _net_exists(name):
                    self.say(f"removing libvirt network {name}")
                    if _net_active(name):
                        _virsh("net-destroy", name, check=False)
                    _virsh("net-undefine", name, check=False)
                state.forget("libvirt-network", name)
            for volume in self._volumes():
                self.say(f"removing libvirt volume {volume}")
                _virsh("vol-delete", "--pool", POOL, volume, check=False)
            if before.get("pool") is False and _pool_exists():
                self.say(f"removing libvirt storage pool {POOL} (vagrant-libvirt's)")
                _virsh("pool-destroy", POOL, check=False)
                _virsh("pool-undefine", POOL, check=False)
            left = self.leftovers()
        self._stop_daemons(state)
        if "firewall" in before:
            kept = {tuple(chain) for chain in before["firewall"]}
            for table, chain in sorted(set(firewall_chains()) - kept):
                self.say(f"removing firewall chain {table}/{chain} (libvirt's)")
                remove_chain(table, chain)
        state.data["lab"].pop("before", None)
        state.save()
        return left

    def refresh_box(self) -> None:
        # vagrant-libvirt copies a box into the storage pool once, under the
        # box's name and version, and boots every later node from that copy:
        # after `invoke box --force` the old box would still be the one booted.
        if not _virsh_ok() or not _pool_exists() or self._domains():
            return
        built = box_image_time(self.box()["name"])
        if built is None:
            return
        box = _volume_name(self.box()["name"])
        for volume in self._volumes():
            if not volume.startswith(box):
                continue
            made = _volume_time(volume)
            if made is not None and made < built:
                self.say(f"removing libvirt volume {volume}: the box was rebuilt since")
                _virsh("vol-delete", "--pool", POOL, volume, check=False)

    def stage_box(self, state: State) -> None:
        # vagrant-libvirt copies the box into the pool itself when the pool has
        # no volume of the name it looks for, but 250 KB a call through Ruby:
        # minutes under emulation. virsh does it in seconds, under that name.
        image = box_image(self.box())
        if image is None or not _virsh_ok():
            return
        volume = box_volume_name(self.box()["name"], image)
        staging = state.data["lab"].get("staging")
        if staging:
            # An upload that never finished: its volume is not the box.
            _virsh("vol-delete", "--pool", POOL, staging, check=False)
            state.data["lab"].pop("staging")
            state.save()
        if not _pool_exists():
            _virsh("pool-define", "/dev/stdin", stdin=pool_xml())
            _virsh("pool-build", POOL, check=False)
        if not _pool_active():
            _virsh("pool-start", POOL)
        if volume in self._volumes():
            return

        started = time.monotonic()
        state.data["lab"]["staging"] = volume
        state.save()
        _virsh("vol-create", POOL, "/dev/stdin", stdin=volume_xml(volume, image))
        _virsh("vol-upload", "--pool", POOL, volume, str(image), timeout=None)
        state.data["lab"].pop("staging")
        state.save()
        self.say(
            f"copied the box into libvirt's pool as {volume} "
            f"({time.monotonic() - started:.0f} s)"
        )

    def _domains(self, ours: bool = True) -> list[str]:
        """The domains named like the lab's nodes that carry this checkout's
        description (``ours``), or those that do not: another checkout's."""
        names = _virsh("list", "--all", "--name", check=False).stdout.split()
        return [
            name
            for name in names
            if name.startswith(self.prefix)
            and (_domain_description(name) == domain_description()) == ours
        ]

    def _volumes(self) -> list[str]:
        """The pool's volumes that are the lab's: the disks of its nodes (not
        those of another checkout's running nodes of the same names) and the
        box, unless a disk that stays is built on it."""
        if not _pool_exists():
            return []
        box = _volume_name(self.box()["name"])
        listed = _virsh("vol-list", "--pool", POOL, check=False).stdout
        names = [line.split()[0] for line in listed.splitlines()[2:] if line.split()]
        others = {f"{name}.img" for name in self._domains(ours=False)}
        disks = [n for n in names if n.startswith(self.prefix) and n not in others]
        staying = [n for n in names if n not in disks and not n.startswith(box)]
        backing = {Path(path).name for path in map(_volume_backing, staying) if path}
        boxes = [n for n in names if n.startswith(box) and n not in backing]
        return disks + boxes

    def leftovers(self) -> list[str]:
        found = []
        if _virsh_ok():
            found += [f"libvirt domain {name}" for name in self._domains()]
            for name in (
                self.config.data["network"]["name"],
                self.config.data["management"]["name"],
            ):
                if _net_exists(name) and _net_uuid(name) == network_uuid(name):
                    found.append(f"libvirt network {name}")
            found += [f"libvirt volume {v}" for v in self._volumes()]
        return found


class LibvirtKVM(Libvirt):
    """libvirt with KVM: fast, where ``/dev/kvm`` runs stock kernels."""

    name = "libvirt-kvm"
    driver = "kvm"

    def _problems(self) -> list[str]:
        return super()._problems() + kvm_problems()


class LibvirtQEMU(Libvirt):
    """libvirt with QEMU's software emulation (TCG): slow, runs anywhere."""

    name = "libvirt-qemu"
    driver = "qemu"


class Existing(Provider):
    """Three machines of the user's, reached over SSH: no Vagrant, no VMs.

    ``lab.yaml``'s ``ssh`` section says how to reach each; the lab's subnets
    are the user's LAN, not this machine's, so no route here can clash.
    """

    name = "existing"
    automatic = False
    keeps_machines = True

    def problems(self) -> list[str]:
        if self.config.provider != self.name:
            return [
                "provider existing takes its machines from lab.yaml: set "
                "provider: existing and each node's ssh entry there"
            ]
        return []

    def install_hint(self) -> str:
        return "set provider: existing and ssh.host1, ssh.host2, ssh.lan in lab.yaml"

    def box(self) -> dict:
        return {"name": "-", "version": None}

    def subnets(self) -> dict[str, ipaddress.IPv4Network]:
        return {}


PROVIDERS: dict[str, type[Provider]] = {
    cls.name: cls for cls in (LibvirtKVM, VirtualBox, LibvirtQEMU, Existing)
}


def choose(
    config: Config, requested: str | None = None, say: Callable[[str], None] = log.info
) -> Choice:
    """The provider to use: the one asked for, or the first that can work.

    ``requested`` (from ``--provider``) wins over the configuration. A provider
    that was asked for and cannot work is an error, never a fallback.
    """
    asked = requested or config.provider
    if asked != "auto":
        if asked not in PROVIDERS:
            raise ProviderError(
                f"unknown provider {asked!r}",
                hint="use one of: auto, " + ", ".join(PROVIDERS),
            )
        provider = PROVIDERS[asked](config, say)
        problems = provider.problems()
        if problems:
            raise ProviderError(
                f"provider {asked} was asked for but cannot run here: "
                + "; ".join(problems),
                hint=provider.install_hint(),
            )
        source = "--provider" if requested else "lab.yaml"
        return Choice(provider, f"asked for by {source}")

    passed = []
    for name, cls in PROVIDERS.items():
        if not cls.automatic:
            continue
        provider = cls(config, say)
        problems = provider.problems()
        if not problems:
            why = "the first provider that can work here"
            if passed:
                why += " (" + "; ".join(passed) + ")"
            return Choice(provider, why)
        passed.append(f"not {name}: {problems[0]}")
    raise ProviderError(
        "no provider can work here: " + "; ".join(passed),
        hint=f"for libvirt: {INSTALL_LIBVIRT}; or install VirtualBox",
    )


def kvm_problems(
    dev: Path = KVM_DEVICE, modules: Path = Path("/sys/module")
) -> list[str]:
    """Why KVM cannot run a stock guest kernel here; empty when it can."""
    if not dev.exists():
        return ["no /dev/kvm (no hardware virtualization)"]
    if not os.access(dev, os.R_OK | os.W_OK):
        return [f"{dev} is not readable and writable by this user"]
    if (modules / "kvm_pvm").exists() and not any(
        (modules / m).exists() for m in ("kvm_intel", "kvm_amd")
    ):
        return [
            f"{dev} is kvm_pvm (paravirtual nesting), which cannot run stock "
            "guest kernels"
        ]
    if not any((modules / m).exists() for m in ("kvm_intel", "kvm_amd")):
        return ["neither kvm_intel nor kvm_amd is loaded"]
    return []


def domain_description() -> str:
    """What this checkout writes into its nodes' libvirt descriptions, so that
    `down` removes its own nodes and never another checkout's of the same
    names."""
    checkout = uuid.uuid5(uuid.NAMESPACE_URL, f"ipvlan-lab:{PROJECT}:domains")
    return f"ipvlan-lab node ({checkout})"


def _domain_description(name: str) -> str:
    return _virsh("desc", name, check=False).stdout.strip()


def _volume_backing(name: str) -> str | None:
    """The path of the image a pool volume is built on, if any."""
    xml = _virsh("vol-dumpxml", "--pool", POOL, name, check=False).stdout
    try:
        found = ET.fromstring(xml).find("backingStore/path")
    except ET.ParseError:
        return None
    return found.text if found is not None else None


def network_uuid(name: str) -> str:
    """The UUID this checkout of the lab gives the libvirt network it calls
    ``name``: the same on every run, so that `down` knows the lab's networks
    even without state, and never takes a network of the same name for its
    own, not even one another checkout of the lab made."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ipvlan-lab:{PROJECT}:network:{name}"))


def _network_element(name: str) -> ET.Element:
    root = ET.Element("network")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "uuid").text = network_uuid(name)
    return root


def isolated_network_xml(name: str) -> str:
    """A libvirt network with no address, no DHCP and no forwarding: a bare
    L2 segment that the host itself cannot be reached on."""
    root = _network_element(name)
    ET.SubElement(root, "bridge", stp="off", delay="0")
    return ET.tostring(root, encoding="unicode")


def management_network_xml(name: str, subnet: str) -> str:
    """The network Vagrant reaches the nodes through: DHCP from libvirt, and
    nothing else. No forwarding, no NAT, and no DNS, so that no name a node
    looks up is ever sent on to this machine's own resolvers."""
    net = ipaddress.IPv4Network(subnet)
    hosts = list(net.hosts())
    root = _network_element(name)
    ET.SubElement(root, "bridge", stp="off", delay="0")
    ET.SubElement(root, "dns", enable="no")
    ip = ET.SubElement(root, "ip", address=str(hosts[0]), netmask=str(net.netmask))
    dhcp = ET.SubElement(ip, "dhcp")
    ET.SubElement(dhcp, "range", start=str(hosts[1]), end=str(hosts[-1]))
    return ET.tostring(root, encoding="unicode")


def host_routes() -> list[dict]:
    """This machine's IPv4 routes, as ``ip -j route`` prints them; none when
    ``ip`` is missing or fails."""
    if not shutil.which("ip"):
        return []
    result = subprocess.run(
        ["ip", "-j", "route"], capture_output=True, text=True, check=False
    )
    try:
        routes = json.loads(result.stdout) if result.returncode == 0 else []
    except ValueError:
        return []
    if not isinstance(routes, list):
        return []
    return [r for r in routes if isinstance(r, dict)]


def check_routes(
    config: Config,
    subnets: dict[str, ipaddress.IPv4Network],
    routes: list[dict],
    own: set[str] = frozenset(),
) -> None:
    """Raise :class:`ConfigError` if one of ``subnets`` overlaps a route of
    this machine (``routes``, as ``ip -j route`` prints them) on a device that
    is not one of the lab's ``own``. The default route is no clash."""
    where = str(config.path) if config.path else "lab.yaml"
    taken = [*subnets.values()]
    clashes = []
    for route in routes:
        dst = str(route.get("dst", ""))
        if dst in ("", "default"):
            continue
        try:
            routed = ipaddress.IPv4Network(dst, strict=False)
        except ValueError:
            continue
        if routed.prefixlen == 0:
            continue
        taken.append(routed)
        device = route.get("dev") or route.get("type") or "no device"
        if device in own:
            continue
        clashes += [
            (key, net, routed, device)
            for key, net in subnets.items()
            if net.overlaps(routed)
        ]
    if clashes:
        key, net, routed, device = clashes[0]
        free = _free_subnet(net.prefixlen, taken)
        raise ConfigError(
            f"{where}: {key} ({net}) overlaps this machine's route {routed} "
            f"on {device}; the lab's nodes and this machine would not agree "
            "where those addresses are",
            hint=f"set {key} in {where} to a subnet this machine does not route"
            + (f" (for example {free})" if free else "")
            + "; `ip route` lists what it routes",
        )


def _free_subnet(
    prefixlen: int, taken: list[ipaddress.IPv4Network]
) -> ipaddress.IPv4Network | None:
    for pool in ("192.168.0.0/16", "172.16.0.0/12", "10.0.0.0/8"):
        space = ipaddress.IPv4Network(pool)
        if prefixlen < space.prefixlen:
            continue
        for candidate in space.subnets(new_prefix=prefixlen):
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
    return None


# Small helpers around the tools ----------------------------------------


def _has_plugin(name: str) -> bool:
    result = subprocess.run(
        ["vagrant", "plugin", "list"], capture_output=True, text=True, check=False
    )
    return name in result.stdout


def _virsh(
    *args: str,
    stdin: str | None = None,
    check: bool = True,
    timeout: float | None = VIRSH_TIMEOUT,
):
    """Run ``virsh`` on the system connection. A virsh that does not answer
    within ``timeout`` seconds is a :class:`ProviderError`, with or without
    ``check``; a failure is one only with ``check``."""
    try:
        result = subprocess.run(
            ["virsh", "-c", LIBVIRT_URI, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ProviderError(
            f"`virsh {' '.join(args)}` did not answer within {timeout} s",
            hint="libvirtd is not answering: see /var/log/libvirt/libvirtd.log, "
            "restart libvirtd, then run this again",
        ) from None
    if check and result.returncode != 0:
        raise ProviderError(
            f"`virsh {' '.join(args)}` failed: {result.stderr.strip()}",
            hint="see /var/log/libvirt/libvirtd.log",
        )
    return result


def _virsh_ok() -> bool:
    if not shutil.which("virsh"):
        return False
    try:
        return _virsh("version", check=False).returncode == 0
    except ProviderError:
        # Unchecked, virsh fails only by not answering in time.
        return False


def _net_exists(name: str) -> bool:
    return _virsh("net-info", name, check=False).returncode == 0


def _volume_name(box: str) -> str:
    """What vagrant-libvirt's copies of ``box`` in the pool are named after."""
    return box.replace("/", "-VAGRANTSLASH-")


def box_image(box: dict) -> Path | None:
    """The libvirt image Vagrant boots for ``box`` (its ``lab.yaml`` entry):
    the one version it holds, or the version the entry names; ``None`` if
    Vagrant holds none, or more than one and the entry names none of them,
    or the box is not one disk (vagrant-libvirt's format 1)."""
    home = Path(os.environ.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")
    images = sorted(
        (home / "boxes" / _volume_name(box["name"])).glob("*/libvirt/box.img")
    )
    if box.get("version"):
        images = [i for i in images if i.parent.parent.name == str(box["version"])]
    if len(images) != 1:
        return None
    try:
        metadata = json.loads((images[0].parent / "metadata.json").read_text())
    except (OSError, ValueError):
        return None
    if metadata.get("disks") or metadata.get("format") != "qcow2":
        return None
    return images[0]


def box_volume_name(box: str, image: Path) -> str:
    """The name vagrant-libvirt gives its copy of ``image`` in the pool: the
    box's name and version, and for a box of no version (version 0), the
    image's modification time."""
    version = image.parent.parent.name
    if version in ("", "0"):
        version = f"0_{int(image.stat().st_mtime)}"
    return f"{_volume_name(box)}_vagrant_box_image_{version}_box.img"


def pool_xml() -> str:
    """The storage pool vagrant-libvirt would make: a folder, root's."""
    return (
        f"<pool type='dir'><name>{POOL}</name><target><path>{POOL_PATH}</path>"
        "<permissions><mode>0755</mode><owner>0</owner><group>0</group>"
        "</permissions></target></pool>"
    )


def volume_xml(name: str, image: Path) -> str:
    """A volume in the pool for the qcow2 ``image``, of the size that
    ``vol-upload`` then fills."""
    metadata = json.loads((image.parent / "metadata.json").read_text())
    capacity = int(metadata["virtual_size"]) * 1024**3
    return (
        f"<volume><name>{name}</name>"
        f"<capacity unit='B'>{capacity}</capacity>"
        f"<allocation unit='B'>{image.stat().st_size}</allocation>"
        "<target><format type='qcow2'/><permissions><mode>0744</mode>"
        "<owner>0</owner><group>0</group></permissions></target></volume>"
    )


def box_image_time(box: str) -> float | None:
    """When Vagrant took in its newest libvirt image of ``box`` (the change
    time: unpacking keeps the image's own modification time), or ``None`` if
    Vagrant has none."""
    home = Path(os.environ.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")
    folder = home / "boxes" / _volume_name(box)
    times = [p.stat().st_ctime for p in folder.glob("**/libvirt/*.img")]
    return max(times, default=None)


def _volume_time(volume: str) -> float | None:
    result = _virsh("vol-path", "--pool", POOL, volume, check=False)
    try:
        return Path(result.stdout.strip()).stat().st_mtime
    except OSError:
        return None


def _net_uuid(name: str) -> str | None:
    result = _virsh("net-uuid", name, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _pool_exists() -> bool:
    return _virsh("pool-info", POOL, check=False).returncode == 0


def _pool_active() -> bool:
    info = _virsh("pool-info", POOL, check=False).stdout
    return any(
        line.split(":", 1)[1].strip() in ("running", "yes")
        for line in info.splitlines()
        if line.startswith("State:")
    )


def _net_active(name: str) -> bool:
    info = _virsh("net-info", name, check=False).stdout
    return any(
        line.split(":", 1)[1].strip() == "yes"
        for line in info.splitlines()
        if line.startswith("Active:")
    )


def _pid1() -> str:
    try:
        return Path("/proc/1/comm").read_text().strip()
    except OSError:
        return ""


def _pids(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _pid_is(int(entry.name), name):
            pids.append(int(entry.name))
    return pids


def _pid_is(pid: int, name: str | None = None) -> bool:
    """Whether ``pid`` runs (a zombie does not), as ``name`` if one is given."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat.split(")")[-1]
    return (name is None or comm == name[:15]) and state.split()[0] != "Z"


def _running(name: str) -> bool:
    return bool(_pids(name))


def _wait_pid(name: str, timeout: float = 10) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = _pids(name)
        if pids:
            return pids[0]
        time.sleep(0.2)
    return None


def _terminate(pid: int, timeout: float = 15) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_is(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def firewall_chains() -> list[tuple[str, str]]:
    """The ``LIBVIRT_*`` iptables chains present now, as (table, chain)."""
    if not shutil.which("iptables"):
        return []
    chains = []
    for table in FIREWALL_TABLES:
        result = subprocess.run(
            ["iptables", "-w", "-t", table, "-S"],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in result.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "-N" and parts[1].startswith("LIBVIRT_"):
                chains.append((table, parts[1]))
    return chains


def remove_chain(table: str, chain: str) -> None:
    """Remove a chain and every jump to it from ``table``."""
    rules = subprocess.run(
        ["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True
    ).stdout.splitlines()
    for rule in rules:
        parts = rule.split()
        if parts[:1] == ["-A"] and parts[-2:] == ["-j", chain]:
            subprocess.run(
                ["iptables", "-w", "-t", table, "-D", *parts[1:]], check=False
            )
    subprocess.run(["iptables", "-w", "-t", table, "-F", chain], check=False)
    subprocess.run(["iptables", "-w", "-t", table, "-X", chain], check=False)
