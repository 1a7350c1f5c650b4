"""The providers: the choice between them, KVM, libvirt's networks, routes."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ipvlan_lab import providers
from ipvlan_lab.config import PROJECT as ROOT
from ipvlan_lab.config import from_data
from ipvlan_lab.errors import ConfigError, ProviderError
from ipvlan_lab.providers import (
    LibvirtKVM,
    LibvirtQEMU,
    VirtualBox,
    choose,
    domain_description,
    isolated_network_xml,
    kvm_problems,
    management_network_xml,
    network_uuid,
)
from ipvlan_lab.state import State


@pytest.fixture
def works(monkeypatch):
    """Decide which providers can work here: ``works(kvm=..., ...)``."""

    def decide(**problems: str | None) -> None:
        for cls, key in (
            (LibvirtKVM, "kvm"),
            (VirtualBox, "vbox"),
            (LibvirtQEMU, "qemu"),
        ):
            found = problems.get(key)
            monkeypatch.setattr(
                cls, "problems", lambda self, found=found: [found] if found else []
            )

    return decide


# Choosing a provider


def test_auto_takes_the_first_that_works_and_says_why(works):
    works(kvm="no /dev/kvm (no hardware virtualization)", vbox="no VBoxManage")
    choice = choose(from_data({}))
    assert choice.provider.name == "libvirt-qemu"
    assert choice.why == (
        "the first provider that can work here (not libvirt-kvm: no /dev/kvm (no "
        "hardware virtualization); not virtualbox: no VBoxManage)"
    )


def test_auto_takes_kvm_when_it_works(works):
    works()
    choice = choose(from_data({}))
    assert choice.provider.name == "libvirt-kvm"
    assert choice.why == "the first provider that can work here"


def test_auto_with_nothing_that_works_says_why_for_each(works):
    works(kvm="no /dev/kvm", vbox="no VBoxManage", qemu="virsh is not installed")
    with pytest.raises(ProviderError) as caught:
        choose(from_data({}))
    assert caught.value.message == (
        "no provider can work here: not libvirt-kvm: no /dev/kvm; "
        "not virtualbox: no VBoxManage; not libvirt-qemu: virsh is not installed"
    )
    assert "apt-get install" in caught.value.hint


def test_an_asked_for_provider_that_cannot_work_is_an_error_not_a_fallback(works):
    works(kvm="no /dev/kvm")
    with pytest.raises(ProviderError) as caught:
        choose(from_data({}), "libvirt-kvm")
    assert caught.value.message == (
        "provider libvirt-kvm was asked for but cannot run here: no /dev/kvm"
    )
    assert caught.value.hint == providers.INSTALL_LIBVIRT


def test_lab_yaml_asks_too_and_gets_no_fallback(works):
    works(vbox="VirtualBox is not installed")
    with pytest.raises(ProviderError, match="provider virtualbox was asked for"):
        choose(from_data({"provider": "virtualbox"}))


def test_who_asked_is_the_reason(works):
    works()
    config = from_data({"provider": "virtualbox"})
    assert choose(config).why == "asked for by lab.yaml"
    choice = choose(config, "libvirt-qemu")
    assert (choice.provider.name, choice.why) == (
        "libvirt-qemu",
        "asked for by --provider",
    )


def test_an_unknown_provider(works):
    works()
    with pytest.raises(ProviderError) as caught:
        choose(from_data({}), "vmware")
    assert caught.value.message == "unknown provider 'vmware'"
    assert (
        caught.value.hint
        == "use one of: auto, libvirt-kvm, virtualbox, libvirt-qemu, existing"
    )


def test_problems_start_with_a_missing_vagrant(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert VirtualBox(from_data({})).problems() == [
        "vagrant is not installed",
        "VirtualBox is not installed (no VBoxManage on the PATH)",
    ]


# KVM


def kvm_tree(tmp_path: Path, modules: tuple[str, ...], dev: bool = True):
    (tmp_path / "dev").mkdir()
    if dev:
        (tmp_path / "dev" / "kvm").touch()
    for module in modules:
        (tmp_path / "module" / module).mkdir(parents=True)
    (tmp_path / "module").mkdir(exist_ok=True)
    return {"dev": tmp_path / "dev" / "kvm", "modules": tmp_path / "module"}


@pytest.mark.parametrize(
    ("modules", "dev", "expected"),
    [
        (("kvm", "kvm_intel"), True, []),
        (("kvm", "kvm_amd"), True, []),
        (("kvm", "kvm_pvm", "kvm_intel"), True, []),
        ((), False, ["no /dev/kvm (no hardware virtualization)"]),
        (("kvm",), True, ["neither kvm_intel nor kvm_amd is loaded"]),
        (("kvm", "kvm_pvm"), True, ["is kvm_pvm (paravirtual nesting)"]),
    ],
    ids=["intel", "amd", "pvm-beside-intel", "no-dev", "no-module", "pvm"],
)
def test_kvm_problems(tmp_path, modules, dev, expected):
    found = kvm_problems(**kvm_tree(tmp_path, modules, dev))
    assert len(found) == len(expected)
    for problem, text in zip(found, expected, strict=True):
        assert text in problem


def test_kvm_that_this_user_cannot_open(tmp_path, monkeypatch):
    tree = kvm_tree(tmp_path, ("kvm", "kvm_intel"))
    monkeypatch.setattr(providers.os, "access", lambda path, mode: False)
    assert kvm_problems(**tree) == [
        f"{tree['dev']} is not readable and writable by this user"
    ]


def test_kvm_provider_adds_kvm_problems(monkeypatch):
    monkeypatch.setattr(providers.Libvirt, "_problems", lambda self: [])
    monkeypatch.setattr(providers, "kvm_problems", lambda: ["no /dev/kvm"])
    assert LibvirtKVM(from_data({}))._problems() == ["no /dev/kvm"]
    assert LibvirtQEMU(from_data({}))._problems() == []


# libvirt's networks


def test_the_lab_network_is_a_bare_segment():
    root = ET.fromstring(isolated_network_xml("ipvlan-lab"))
    assert root.findtext("name") == "ipvlan-lab"
    assert root.find("bridge").get("stp") == "off"
    for absent in ("forward", "ip", "dns", "dhcp", ".//dhcp"):
        assert root.find(absent) is None, f"the lab network has <{absent}>"


def test_the_management_network_gives_dhcp_and_nothing_else():
    root = ET.fromstring(management_network_xml("ipvlan-lab-mgmt", "192.168.121.0/24"))
    assert root.findtext("name") == "ipvlan-lab-mgmt"
    assert root.find("forward") is None, "no forwarding, no NAT"
    assert root.find("dns").get("enable") == "no"
    ip = root.find("ip")
    assert (ip.get("address"), ip.get("netmask")) == ("192.168.121.1", "255.255.255.0")
    dhcp = ip.find("dhcp/range")
    assert (dhcp.get("start"), dhcp.get("end")) == ("192.168.121.2", "192.168.121.254")


def test_each_network_carries_the_uuid_the_lab_gives_its_name():
    for xml in (
        isolated_network_xml("ipvlan-lab"),
        management_network_xml("ipvlan-lab-mgmt", "192.168.121.0/24"),
    ):
        root = ET.fromstring(xml)
        assert root.findtext("uuid") == network_uuid(root.findtext("name"))
    assert network_uuid("ipvlan-lab") != network_uuid("ipvlan-lab-mgmt")


def test_another_checkout_of_the_lab_gives_its_networks_other_uuids(monkeypatch):
    here = network_uuid("ipvlan-lab")
    monkeypatch.setattr(providers, "PROJECT", Path("/srv/another/ipvlan-lab"))
    assert network_uuid("ipvlan-lab") != here


class FakeLibvirt:
    """libvirt's networks as virsh would show them: name -> UUID."""

    def __init__(self, monkeypatch, networks: dict[str, str]):
        self.networks = dict(networks)
        self.domains: list[str] = []
        #: Domains named like the lab's that another checkout made.
        self.foreign: set[str] = set()
        self.calls: list[tuple[str, ...]] = []
        monkeypatch.setattr(providers, "_virsh_ok", lambda: True)
        monkeypatch.setattr(providers, "_pool_exists", lambda: False)
        monkeypatch.setattr(providers, "firewall_chains", lambda: [])
        monkeypatch.setattr(providers, "_net_exists", lambda n: n in self.networks)
        monkeypatch.setattr(providers, "_net_active", lambda n: n in self.networks)
        monkeypatch.setattr(providers, "_net_uuid", self.networks.get)
        monkeypatch.setattr(providers, "_virsh", self.virsh)

    def virsh(self, *args, stdin=None, check=True):
        self.calls.append(args)
        if args[0] == "net-undefine":
            self.networks.pop(args[1])
        if args[0] == "net-define":
            name = ET.fromstring(stdin).findtext("name")
            self.networks[name] = ET.fromstring(stdin).findtext("uuid")
        if args[0] == "undefine":
            self.domains.remove(args[1])
        out = "\n".join(self.domains) if args[0] == "list" else ""
        if args[0] == "desc":
            out = "" if args[1] in self.foreign else domain_description()
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")


def test_down_without_state_removes_only_networks_that_are_the_labs(
    tmp_path, monkeypatch
):
    libvirt = FakeLibvirt(
        monkeypatch,
        {
            "ipvlan-lab": network_uuid("ipvlan-lab"),
            "ipvlan-lab-mgmt": "0b5e7e3c-0000-4000-8000-000000000001",
        },
    )
    said = []
    provider = LibvirtQEMU(from_data({}), say=said.append)
    left = provider.teardown(State(tmp_path))
    assert ("net-undefine", "ipvlan-lab") in libvirt.calls
    assert ("net-undefine", "ipvlan-lab-mgmt") not in libvirt.calls
    assert libvirt.networks == {
        "ipvlan-lab-mgmt": "0b5e7e3c-0000-4000-8000-000000000001"
    }
    assert "leaving libvirt network ipvlan-lab-mgmt: it is not the lab's" in said
    assert left == [], "someone else's network is not a leftover of the lab"


def test_down_removes_a_node_vagrant_lost_track_of(tmp_path, monkeypatch):
    libvirt = FakeLibvirt(monkeypatch, {})
    libvirt.domains = ["ipvlan-lab_host2", "someone-elses-vm"]
    said = []
    left = LibvirtQEMU(from_data({}), say=said.append).teardown(State(tmp_path))
    assert ("destroy", "ipvlan-lab_host2") in libvirt.calls
    assert libvirt.domains == ["someone-elses-vm"]
    assert "removing libvirt domain ipvlan-lab_host2 (Vagrant did not)" in said
    assert left == []


def test_down_leaves_another_checkouts_nodes_of_the_same_names(tmp_path, monkeypatch):
    libvirt = FakeLibvirt(monkeypatch, {})
    libvirt.domains = ["ipvlan-lab_host1", "ipvlan-lab_host2"]
    libvirt.foreign = {"ipvlan-lab_host1"}
    LibvirtQEMU(from_data({}), say=lambda _: None).teardown(State(tmp_path))
    assert ("destroy", "ipvlan-lab_host1") not in libvirt.calls
    assert libvirt.domains == ["ipvlan-lab_host1"]


def test_the_vagrantfile_gets_the_description_that_marks_the_nodes():
    settings = LibvirtQEMU(from_data({})).vagrant_settings()
    assert settings["libvirt_description"] == domain_description()
    assert str(uuid.uuid5(uuid.NAMESPACE_URL, f"ipvlan-lab:{ROOT}:domains")) in (
        domain_description()
    )


def test_a_network_the_lab_recorded_making_is_its_own(tmp_path, monkeypatch):
    libvirt = FakeLibvirt(monkeypatch, {"ipvlan-lab": "made-before-uuids"})
    state = State(tmp_path)
    state.record("libvirt-network", "ipvlan-lab")
    LibvirtQEMU(from_data({}), say=lambda _: None).teardown(state)
    assert libvirt.networks == {}
    assert "ipvlan-lab" not in state.made("libvirt-network")


def test_up_refuses_a_network_of_the_same_name_that_is_not_the_labs(
    tmp_path, monkeypatch
):
    libvirt = FakeLibvirt(monkeypatch, {"ipvlan-lab": "someone-elses"})
    provider = LibvirtQEMU(from_data({}), say=lambda _: None)
    with pytest.raises(ProviderError) as caught:
        provider._define_network(State(tmp_path), "ipvlan-lab", "<network/>")
    assert "ipvlan-lab exists and is not this lab's" in str(caught.value)
    assert "network.name" in caught.value.hint
    assert libvirt.networks == {"ipvlan-lab": "someone-elses"}
    assert not any(call[0] in ("net-start", "net-define") for call in libvirt.calls)


def test_up_takes_back_its_own_network_and_defines_a_missing_one(tmp_path, monkeypatch):
    libvirt = FakeLibvirt(monkeypatch, {"ipvlan-lab": network_uuid("ipvlan-lab")})
    state = State(tmp_path)
    provider = LibvirtQEMU(from_data({}), say=lambda _: None)
    provider._define_network(state, "ipvlan-lab", isolated_network_xml("ipvlan-lab"))
    assert not any(call[0] == "net-define" for call in libvirt.calls)
    provider._define_network(state, "other", isolated_network_xml("other"))
    assert libvirt.networks["other"] == network_uuid("other")
    assert "other" in state.made("libvirt-network")


# Routes of this machine


ROUTES = [
    {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0", "flags": []},
    {"dst": "192.0.2.0/24", "dev": "eth0", "scope": "link", "flags": []},
    {"dst": "192.168.121.0/24", "dev": "virbr1", "scope": "link", "flags": []},
]


def test_the_labs_own_bridge_is_no_clash():
    config = from_data({})
    provider = LibvirtQEMU(config)
    subnets = provider.subnets()
    providers.check_routes(config, subnets, ROUTES, {"virbr1"})
    with pytest.raises(ConfigError, match="management.subnet"):
        providers.check_routes(config, subnets, ROUTES, set())


def test_which_subnets_each_provider_checks():
    isolated = from_data({})
    assert list(LibvirtQEMU(isolated).subnets()) == [
        "network.subnet",
        "vlan.host_subnet",
        "vlan.subnet",
        "management.subnet",
    ]
    assert list(VirtualBox(isolated).subnets()) == [
        "network.subnet",
        "vlan.host_subnet",
        "vlan.subnet",
    ]
    bridged = from_data({"network": {"mode": "bridged", "adapter": "enp3s0"}})
    assert "network.subnet" not in VirtualBox(bridged).subnets()


def test_a_bridged_lab_may_share_this_machines_lan():
    config = from_data({"network": {"mode": "bridged", "adapter": "enp3s0"}})
    routes = [{"dst": "192.168.4.0/24", "dev": "enp3s0"}]
    VirtualBox(config).check_routes(routes)


def test_a_clash_names_subnet_route_device_and_a_free_subnet():
    config = from_data({"vlan": {"subnet": "10.1.0.0/16", "gateway": "10.1.0.1"}})
    routes = [
        {"dst": "192.168.0.0/24", "dev": "eth0"},
        {"dst": "10.0.0.0/8", "dev": "tun0"},
        {"type": "unreachable", "dst": "not a route"},
    ]
    with pytest.raises(ConfigError) as caught:
        VirtualBox(config).check_routes(routes)
    assert caught.value.message == (
        "lab.yaml: vlan.subnet (10.1.0.0/16) overlaps this machine's route "
        "10.0.0.0/8 on tun0; the lab's nodes and this machine would not agree "
        "where those addresses are"
    )
    # 192.168.0.0/16 holds the lab's subnets, so the /16 offered is elsewhere.
    assert "(for example 172.16.0.0/16)" in caught.value.hint


def test_a_route_with_no_device_is_named_by_its_type():
    config = from_data({})
    routes = [{"type": "blackhole", "dst": "192.168.100.0/24"}]
    with pytest.raises(ConfigError, match="192.168.100.0/24 on blackhole"):
        VirtualBox(config).check_routes(routes)


def fake_ip(tmp_path: Path, monkeypatch, text: str) -> None:
    (tmp_path / "ip").write_text(text)
    (tmp_path / "ip").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_host_routes_reads_ip(tmp_path, monkeypatch):
    fake_ip(tmp_path, monkeypatch, '#!/bin/sh\necho \'[{"dst": "10.0.0.0/8"}]\'\n')
    assert providers.host_routes() == [{"dst": "10.0.0.0/8"}]


@pytest.mark.parametrize(
    "script",
    ["#!/bin/sh\necho nonsense\n", "#!/bin/sh\nexit 1\n", "#!/bin/sh\necho 7\n"],
)
def test_host_routes_is_empty_when_ip_says_nothing_useful(
    tmp_path, monkeypatch, script
):
    fake_ip(tmp_path, monkeypatch, script)
    assert providers.host_routes() == []


def test_host_routes_without_ip(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert providers.host_routes() == []


def test_free_subnet_skips_what_is_taken():
    taken = [ipaddress.IPv4Network("192.168.0.0/23")]
    assert str(providers._free_subnet(24, taken)) == "192.168.2.0/24"
    assert providers._free_subnet(4, taken) is None


# Daemons


def test_a_running_libvirtd_is_left_alone(monkeypatch):
    monkeypatch.setattr(providers, "_virsh_ok", lambda: True)
    monkeypatch.setattr(
        providers.subprocess, "run", lambda *a, **k: pytest.fail("ran something")
    )
    LibvirtQEMU(from_data({}))._start_daemons(state=None)


def test_libvirtd_starts_as_it_is_where_no_mount_namespace_is_allowed(
    tmp_path, monkeypatch
):
    _unusable_kvm(tmp_path, monkeypatch, ["/dev/kvm is kvm_pvm"])
    answers = iter([False, True])
    monkeypatch.setattr(providers, "_virsh_ok", lambda: next(answers))
    monkeypatch.setattr(providers, "_pid1", lambda: "init")
    monkeypatch.setattr(providers, "_running", lambda daemon: daemon == "virtlogd")
    monkeypatch.setattr(providers, "_wait_pid", lambda daemon: 4242)
    ran = []

    def run(argv, **kwargs):
        ran.append(argv)
        failed = argv[0] == "unshare"
        return subprocess.CompletedProcess(
            argv, 1 if failed else 0, "", "unshare: Operation not permitted"
        )

    monkeypatch.setattr(providers.subprocess, "run", run)
    said = []
    state = State(tmp_path / "lab")
    LibvirtQEMU(from_data({}), said.append)._start_daemons(state)
    assert [argv[0] for argv in ran] == ["unshare", "libvirtd"]
    assert ran[-1] == ["libvirtd", "-d"]
    assert any("starting it as it is" in line for line in said), said
    assert state.made("daemon")["libvirtd"]["pid"] == 4242


def _unusable_kvm(tmp_path, monkeypatch, problems):
    device = tmp_path / "kvm"
    device.touch()
    monkeypatch.setattr(providers, "KVM_DEVICE", device)
    monkeypatch.setattr(providers, "kvm_problems", lambda dev: problems)


def test_libvirtd_started_for_guests_without_kvm_does_not_see_dev_kvm(
    tmp_path, monkeypatch
):
    _unusable_kvm(tmp_path, monkeypatch, ["/dev/kvm is kvm_pvm"])
    said = []
    provider = LibvirtQEMU(from_data({}), said.append)
    argv = provider._daemon_command("libvirtd")
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    assert argv[-3:] == ["-c", providers.HIDE_KVM, "libvirtd"]
    assert said == [
        "libvirtd will not see /dev/kvm: the lab's guests cannot use KVM here, "
        "and libvirt would otherwise probe QEMU again for every domain"
    ]
    assert provider._daemon_command("virtlogd") == ["virtlogd", "-d"]


@pytest.mark.parametrize(
    ("provider", "problems", "device"),
    [
        (LibvirtQEMU, [], True),  # KVM works: libvirt keeps it for others
        (LibvirtQEMU, ["no /dev/kvm"], False),
        (LibvirtKVM, ["/dev/kvm is kvm_pvm"], True),
    ],
)
def test_libvirtd_sees_the_machine_as_it_is_otherwise(
    tmp_path, monkeypatch, provider, problems, device
):
    _unusable_kvm(tmp_path, monkeypatch, problems)
    if not device:
        providers.KVM_DEVICE.unlink()
    assert provider(from_data({}))._daemon_command("libvirtd") == ["libvirtd", "-d"]


QEMU_CONF = Path("/etc/libvirt/qemu.conf")


@pytest.mark.skipif(
    os.geteuid() != 0
    or not Path("/dev/kvm").exists()
    or not QEMU_CONF.exists()
    or not shutil.which("unshare"),
    reason="needs root, unshare, libvirt's qemu.conf and a /dev/kvm",
)
def test_the_daemon_sees_an_empty_file_and_nothing_else_changes(tmp_path):
    seen = tmp_path / "seen"
    daemon = tmp_path / "daemon"
    daemon.write_text(
        "#!/bin/sh\n"
        f"stat -c '%F %s' /dev/kvm > {seen}\n"
        f"grep -c '^namespaces' {QEMU_CONF} >> {seen}\n"
        f"tail -n 1 {QEMU_CONF} >> {seen}\n"
    )
    daemon.chmod(0o755)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before = os.stat("/dev/kvm")
    conf_before = QEMU_CONF.read_bytes()
    subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"]
        + [providers.HIDE_KVM, str(daemon)],
        check=True,
        timeout=30,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    # One namespaces line, the lab's: libvirt gives guests no /dev of their own.
    assert seen.read_text() == "regular empty file 0\n1\nnamespaces = []\n"
    after = os.stat("/dev/kvm")
    assert (after.st_rdev, after.st_mode) == (before.st_rdev, before.st_mode)
    assert QEMU_CONF.read_bytes() == conf_before, "qemu.conf outside is untouched"
    assert list(scratch.iterdir()) == [], "the temporary files are gone"


def test_a_virsh_that_does_not_answer_is_a_provider_error(tmp_path, monkeypatch):
    def hang(argv, **kwargs):
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    monkeypatch.setattr(providers.subprocess, "run", hang)
    for check in (True, False):
        with pytest.raises(ProviderError) as caught:
            providers._virsh("net-info", "ipvlan-lab", check=check)
        assert caught.value.message == (
            "`virsh net-info ipvlan-lab` did not answer within 60 s"
        )
        assert "libvirtd" in caught.value.hint
        assert "/var/log/libvirt/libvirtd.log" in caught.value.hint
    # A caller that only asks whether libvirt answers gets no.
    (tmp_path / "virsh").write_text("#!/bin/sh\n")
    (tmp_path / "virsh").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert providers._virsh_ok() is False


def test_the_labs_own_bridges_come_from_libvirt(tmp_path, monkeypatch):
    (tmp_path / "virsh").write_text(
        "#!/bin/sh\n"
        'case "$3 $4" in\n'
        '  "version ") exit 0 ;;\n'
        '  "net-info ipvlan-lab") printf "Name: ipvlan-lab\\nBridge:  virbr2\\n" ;;\n'
        '  "net-info ipvlan-lab-mgmt") printf "Bridge:         virbr1\\n" ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    (tmp_path / "virsh").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    provider = LibvirtQEMU(from_data({}))
    assert provider.own_devices() == {"virbr1", "virbr2"}
    provider.check_routes(ROUTES)
    assert VirtualBox(from_data({})).own_devices() == set()


# The box's copy in libvirt's pool


BOX_COPY = "ipvlan-lab-VAGRANTSLASH-debian12_vagrant_box_image_0_box.img"


class FakePool:
    """A storage pool holding the box's copy and a node disk."""

    def __init__(
        self, monkeypatch, tmp_path, *, domains=(), foreign=(), copied_at=1000.0
    ):
        self.deleted: list[str] = []
        self.domains = list(domains)
        self.foreign = set(foreign)
        self.volumes = {
            BOX_COPY: copied_at,
            "ipvlan-lab_host1.img": copied_at,
        }
        monkeypatch.setattr(providers, "_virsh_ok", lambda: True)
        monkeypatch.setattr(providers, "_pool_exists", lambda: True)
        monkeypatch.setattr(providers, "_volume_time", self.volumes.get)
        monkeypatch.setattr(providers, "_virsh", self.virsh)
        monkeypatch.setenv("VAGRANT_HOME", str(tmp_path))
        self.image = (
            tmp_path / "boxes" / "ipvlan-lab-VAGRANTSLASH-debian12" / "0" / "libvirt"
        ) / "box.img"

    def add_box(self) -> float:
        self.image.parent.mkdir(parents=True, exist_ok=True)
        self.image.write_bytes(b"qcow2")
        return self.image.stat().st_ctime

    def virsh(self, *args, stdin=None, check=True):
        if args[0] == "list":
            out = "\n".join(self.domains)
        elif args[0] == "desc":
            out = "" if args[1] in self.foreign else domain_description()
        elif args[0] == "vol-dumpxml" and args[-1].endswith("_host1.img"):
            # The node disk is built on the box.
            out = (
                "<volume><backingStore><path>/var/lib/libvirt/images/"
                f"{BOX_COPY}</path></backingStore></volume>"
            )
        elif args[0] == "vol-list":
            rows = [f" {name}  /var/lib/libvirt/images/{name}" for name in self.volumes]
            out = " Name   Path\n----------\n" + "\n".join(rows)
        else:
            out = ""
        if args[0] == "vol-delete":
            self.deleted.append(args[-1])
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")


def test_a_box_rebuilt_after_its_copy_was_made_replaces_the_copy(tmp_path, monkeypatch):
    pool = FakePool(monkeypatch, tmp_path, copied_at=1000.0)
    assert pool.add_box() > 1000.0
    said = []
    LibvirtQEMU(from_data({}), say=said.append).refresh_box()
    assert pool.deleted == [
        "ipvlan-lab-VAGRANTSLASH-debian12_vagrant_box_image_0_box.img"
    ]
    assert "the box was rebuilt since" in said[0]


def test_a_copy_newer_than_the_box_is_kept(tmp_path, monkeypatch):
    pool = FakePool(monkeypatch, tmp_path, copied_at=4e9)
    pool.add_box()
    LibvirtQEMU(from_data({}), say=lambda _: None).refresh_box()
    assert pool.deleted == []


def test_another_checkouts_disks_and_the_box_under_them_are_not_the_labs(
    tmp_path, monkeypatch
):
    pool = FakePool(monkeypatch, tmp_path, domains=["ipvlan-lab_host1"])
    pool.foreign = {"ipvlan-lab_host1"}
    assert LibvirtQEMU(from_data({}))._volumes() == []
    # Once that node is gone, its disk and the box are the lab's to remove.
    pool.domains = []
    assert sorted(LibvirtQEMU(from_data({}))._volumes()) == [
        BOX_COPY,
        "ipvlan-lab_host1.img",
    ]


def test_the_copy_is_kept_while_nodes_may_be_backed_by_it(tmp_path, monkeypatch):
    pool = FakePool(monkeypatch, tmp_path, domains=["ipvlan-lab_host1"])
    pool.add_box()
    LibvirtQEMU(from_data({}), say=lambda _: None).refresh_box()
    assert pool.deleted == []


def test_no_box_in_vagrant_leaves_the_pool_alone(tmp_path, monkeypatch):
    pool = FakePool(monkeypatch, tmp_path)
    LibvirtQEMU(from_data({}), say=lambda _: None).refresh_box()
    assert pool.deleted == []


# Staging the box in the pool before Vagrant boots the nodes


class StagingPool:
    """virsh as seen by stage_box: a pool that holds ``volumes``."""

    def __init__(self, monkeypatch, tmp_path, *, volumes=(), fail_upload=False):
        self.volumes = list(volumes)
        self.calls: list[tuple[str, ...]] = []
        self.fail_upload = fail_upload
        monkeypatch.setattr(providers, "_virsh_ok", lambda: True)
        monkeypatch.setattr(providers, "_virsh", self.virsh)
        monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "vagrant.d"))
        self.image = (
            (tmp_path / "vagrant.d" / "boxes" / "ipvlan-lab-VAGRANTSLASH-debian12")
            / "0"
            / "libvirt"
            / "box.img"
        )

    def add_box(self, version: str = "0", mtime: int = 1_796_359_818) -> Path:
        self.image = self.image.parent.parent.parent / version / "libvirt" / "box.img"
        self.image.parent.mkdir(parents=True)
        self.image.write_bytes(b"QFI\xfb" + bytes(60))
        (self.image.parent / "metadata.json").write_text(
            '{"provider": "libvirt", "format": "qcow2", "virtual_size": 6}'
        )
        os.utime(self.image, (mtime, mtime))
        return self.image

    def virsh(self, *args, stdin=None, check=True, timeout=None):
        self.calls.append(args)
        code, out = 0, ""
        if args[0] == "pool-info":
            out = "Name:           default\nState:          running\n"
        elif args[0] == "vol-list":
            rows = [f" {name}  /var/lib/libvirt/images/{name}" for name in self.volumes]
            out = " Name   Path\n----------\n" + "\n".join(rows)
        elif args[0] == "vol-create":
            self.created = ET.fromstring(stdin)
            self.volumes.append(self.created.findtext("name"))
        elif args[0] == "vol-delete":
            self.volumes.remove(args[-1])
        elif args[0] == "vol-upload" and self.fail_upload:
            if check:
                raise ProviderError("`virsh vol-upload` failed: no space")
            code = 1
        return subprocess.CompletedProcess(args, code, stdout=out, stderr="")

    def ran(self, verb: str) -> list[tuple[str, ...]]:
        return [call for call in self.calls if call[0] == verb]


BOX_VOLUME = "ipvlan-lab-VAGRANTSLASH-debian12_vagrant_box_image_0_1796359818_box.img"


def test_the_box_is_copied_into_the_pool_under_vagrant_libvirts_name(
    tmp_path, monkeypatch
):
    pool = StagingPool(monkeypatch, tmp_path, volumes=["someone-elses.img"])
    image = pool.add_box()
    state, said = State(tmp_path / "lab"), []
    LibvirtQEMU(from_data({}), say=said.append).stage_box(state)

    assert pool.created.findtext("name") == BOX_VOLUME
    assert pool.created.find("target/format").get("type") == "qcow2"
    assert int(pool.created.findtext("capacity")) == 6 * 1024**3
    assert pool.ran("vol-upload") == [
        ("vol-upload", "--pool", "default", BOX_VOLUME, str(image))
    ]
    assert BOX_VOLUME in pool.volumes and "someone-elses.img" in pool.volumes
    assert "staging" not in State(tmp_path / "lab").data["lab"]
    assert f"copied the box into libvirt's pool as {BOX_VOLUME}" in said[0]


def test_a_box_already_in_the_pool_is_not_copied_again(tmp_path, monkeypatch):
    pool = StagingPool(monkeypatch, tmp_path, volumes=[BOX_VOLUME])
    pool.add_box()
    LibvirtQEMU(from_data({}), say=lambda _: None).stage_box(State(tmp_path))
    assert not pool.ran("vol-create") and not pool.ran("vol-upload")


def test_a_copy_that_never_finished_is_removed_and_made_again(tmp_path, monkeypatch):
    pool = StagingPool(monkeypatch, tmp_path, fail_upload=True)
    pool.add_box()
    provider = LibvirtQEMU(from_data({}), say=lambda _: None)
    with pytest.raises(ProviderError, match="vol-upload"):
        provider.stage_box(State(tmp_path / "lab"))
    # The half-filled volume has the box's name: the state says it is not.
    assert State(tmp_path / "lab").data["lab"]["staging"] == BOX_VOLUME

    pool.fail_upload = False
    provider.stage_box(State(tmp_path / "lab"))
    assert pool.ran("vol-delete") == [("vol-delete", "--pool", "default", BOX_VOLUME)]
    assert len(pool.ran("vol-upload")) == 2
    assert pool.volumes == [BOX_VOLUME]
    assert "staging" not in State(tmp_path / "lab").data["lab"]


def test_a_versioned_box_is_named_by_its_version(tmp_path, monkeypatch):
    pool = StagingPool(monkeypatch, tmp_path)
    image = pool.add_box(version="1.2.0")
    assert providers.box_volume_name("ipvlan-lab/debian12", image) == (
        "ipvlan-lab-VAGRANTSLASH-debian12_vagrant_box_image_1.2.0_box.img"
    )


@pytest.mark.parametrize(
    "versions, wanted, expected",
    [
        ([], None, None),  # Vagrant has no such box: it fetches it itself
        (["1.0", "2.0"], None, None),  # which one Vagrant takes is its choice
        (["1.0", "2.0"], "2.0", "2.0"),
        (["0"], None, "0"),
    ],
)
def test_which_image_is_staged(tmp_path, monkeypatch, versions, wanted, expected):
    pool = StagingPool(monkeypatch, tmp_path)
    for version in versions:
        pool.add_box(version=version)
    found = providers.box_image({"name": "ipvlan-lab/debian12", "version": wanted})
    assert (found.parent.parent.name if found else None) == expected


def test_a_box_of_several_disks_is_left_to_vagrant(tmp_path, monkeypatch):
    pool = StagingPool(monkeypatch, tmp_path)
    image = pool.add_box()
    (image.parent / "metadata.json").write_text(
        '{"provider": "libvirt", "disks": [{"path": "a.qcow2"}]}'
    )
    LibvirtQEMU(from_data({}), say=lambda _: None).stage_box(State(tmp_path))
    assert not pool.ran("vol-create")
