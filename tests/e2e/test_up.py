"""The lab's hosts on real VMs: fit for the work, and `up` is idempotent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

DOCKER_HOSTS = ("host1", "host2")


@pytest.fixture(scope="module")
def sessions(lab):
    handle = lab.lab()
    yield handle, handle.sessions()
    handle.close()


@pytest.mark.parametrize("slot", ["host1", "host2", "lan"])
def test_node_answers_over_ssh_and_carries_its_address(sessions, slot):
    handle, found = sessions
    session = found[slot]
    facts = handle.state.nodes[slot]
    record = session.run(f"ip -j addr show dev {facts['nic']}")
    assert record.exit_status == 0, record.stderr
    addresses = {a["local"] for i in json.loads(record.stdout) for a in i["addr_info"]}
    node = handle.config.nodes[slot]
    assert node.address in addresses
    if slot == "lan":
        assert handle.config.data["network"]["gateway"] in addresses
    operstate = session.run(f"cat /sys/class/net/{facts['nic']}/operstate").stdout
    assert operstate.strip() == "up"
    assert facts["mac"] == node.mac


@pytest.mark.parametrize("slot", DOCKER_HOSTS)
def test_docker_host_runs_busybox_and_loads_ipvlan_and_8021q(sessions, slot):
    _, found = sessions
    session = found[slot]
    info = session.run("docker info --format '{{.ServerVersion}}'")
    assert info.exit_status == 0 and info.stdout.strip(), info.stderr
    run = session.run("docker run --rm busybox echo hello-from-busybox", timeout=120)
    assert run.stdout.strip() == "hello-from-busybox", run.stderr
    modules = session.run(
        "sudo -n modprobe ipvlan && sudo -n modprobe 8021q && lsmod | awk '{print $1}'"
    )
    assert modules.exit_status == 0, modules.stderr
    assert {"ipvlan", "8021q"} <= set(modules.stdout.split())


def test_docker_sdk_talks_over_the_ssh_session(sessions):
    handle, found = sessions
    client = found["host1"].docker(handle.dir)
    assert client.version()["Version"] == handle.state.nodes["host1"]["docker"]
    assert any("busybox:latest" in image.tags for image in client.images.list())


def test_status_json_shows_every_node_running(lab):
    result = lab.invoke("status", "--json", check=True)
    rows = {row["slot"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"host1", "host2", "lan"}
    for row in rows.values():
        assert row["state"] == "running", row
        assert row["kernel"] and row["nic"], row
        assert row["provider"] in ("libvirt-qemu", "libvirt-kvm", "virtualbox")
    assert rows["host1"]["docker"] and rows["host2"]["docker"]


def test_up_on_a_running_lab_only_checks_it_quickly(lab):
    result = lab.invoke("up", check=True, label="up (warm)")
    assert "checking the running lab" in result.stderr
    assert "booting the nodes" not in result.stderr
    assert "bringing each node to the lab's baseline" not in result.stderr


def test_the_box_went_into_libvirts_pool_before_vagrant_booted_the_nodes(lab):
    up = lab.cold_up
    if "checking the running lab" in up.stderr:
        pytest.skip("the session's lab was already up (IPVLAN_LAB_KEEP)")
    if "libvirt" not in up.stderr.split("provider: ", 1)[-1].split()[0]:
        pytest.skip("only libvirt providers copy the box in themselves")
    assert "copied the box into libvirt's pool as " in up.stderr
    # vagrant-libvirt found its copy there and made none of its own.
    log = (lab.root / ".lab" / "vagrant.log").read_text(errors="replace")
    assert (
        "Uploading base box image as volume"
        not in log.split("Bringing machine 'host1' up")[-1]
    )


def test_libvirt_probes_qemu_once_and_keeps_what_it_found(lab):
    state = json.loads((lab.root / ".lab" / "state.json").read_text())
    if "libvirtd" not in state.get("made", {}).get("daemon", {}):
        pytest.skip("the lab did not start libvirtd itself")
    cache = Path("/var/cache/libvirt/qemu/capabilities")
    probes = sorted(cache.glob("*.xml"))
    x86 = [p for p in probes if "qemu-system-x86_64<" in p.read_text()]
    assert x86, f"libvirt cached no capabilities of qemu-system-x86_64 in {cache}"
    before = x86[0].stat().st_mtime_ns
    # Looking a domain's capabilities up is what defining or starting one
    # does first; a stale cache means a new probe, rewritten here.
    subprocess.run(
        ["virsh", "-c", "qemu:///system", "domcapabilities", "--virttype", "qemu"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert x86[0].stat().st_mtime_ns == before, "libvirt probed QEMU again"


def test_the_nodes_carry_this_checkouts_mark(lab):
    state = json.loads((lab.root / ".lab" / "state.json").read_text())
    if "libvirt" not in state["lab"]["provider"]:
        pytest.skip("only libvirt nodes carry the mark")
    from ipvlan_lab.providers import domain_description

    prefix = lab.lab().config.data["network"]["name"] + "_"
    for slot in ("host1", "host2", "lan"):
        described = subprocess.run(
            ["virsh", "-c", "qemu:///system", "desc", prefix + slot],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert described.stdout.strip() == domain_description(), described.stderr


def test_unknown_node_for_ssh_is_one_clear_error(lab):
    result = lab.invoke("ssh", "host3")
    assert result.returncode == 2
    assert "no node called 'host3'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_measures_what_the_lab_relies_on(lab):
    result = lab.invoke("bench", "--rounds", "3", check=True, label="bench")
    saved = sorted((lab.root / "results").glob("bench-*.json"))[-1]
    figures = {f["name"]: f for f in json.loads(saved.read_text())}
    kept = figures["command on the kept-open session"]["median"]
    fresh = figures["command on a new SSH connection"]["median"]
    at_once = figures["`sleep 1` on all three nodes, at once"]["median"]
    one_by_one = figures["`sleep 1` on all three nodes, one by one"]["median"]
    assert kept < fresh, "a kept-open session beats a new connection"
    assert at_once < one_by_one, "work on all nodes at once beats one by one"
    assert "median s" in result.stdout
