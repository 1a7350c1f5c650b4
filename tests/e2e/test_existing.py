"""Provider ``existing`` on real machines: the shared lab's VMs, driven by a
second lab as if they were three machines of a user's own, over SSH alone.

The second lab has a folder and a lab.yaml of its own. It gives the LAN node
an address of its own choosing (.198), so that `up` has something to add and
`down` something to undo; the shared lab must come through untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from .results import latest_run, load

pytestmark = pytest.mark.lab

LAN_ADDRESS = "192.168.4.198"


@pytest.fixture(scope="module")
def existing(lab, tmp_path_factory):
    """Run `invoke ...` as the second lab, on the shared lab's machines."""
    folder = tmp_path_factory.mktemp("existing")
    state = json.loads((lab.root / ".lab" / "state.json").read_text())
    ssh = {}
    for slot in ("host1", "host2", "lan"):
        known = state["nodes"][slot]["ssh"]
        ssh[slot] = {k: known[k] for k in ("host", "port", "user", "key")}
    # One NIC named, the others found by MAC, as lab.yaml allows.
    ssh["host1"]["nic"] = state["nodes"]["host1"]["nic"]
    config = folder / "lab.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "provider": "existing",
                "ssh": ssh,
                "nodes": {"lan": {"address": LAN_ADDRESS}},
            }
        )
    )
    env = {
        **os.environ,
        "IPVLAN_LAB_CONFIG": str(config),
        "IPVLAN_LAB_DIR": str(folder / "lab"),
    }

    def invoke(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=lab.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            stdin=subprocess.DEVNULL,
        )
        sys.stderr.write(
            f"\n[existing: invoke {' '.join(args)}: exit {result.returncode}]\n"
            f"{result.stderr[-3000:]}\n"
        )
        return result

    return invoke


def on(lab, slot: str, command: str) -> str:
    """Run a command on a node through the shared lab's own session."""
    shared = lab.lab()
    try:
        return shared.sessions()[slot].run(command, timeout=60).stdout
    finally:
        shared.close()


def test_up_reaches_the_machines_and_notes_what_it_changes(lab, existing):
    result = existing("up")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reaching your machines over SSH" in result.stderr
    assert "booting the nodes" not in result.stderr, "no Vagrant here"
    assert f"inet {LAN_ADDRESS}/24" in on(lab, "lan", "ip -o -4 addr show")
    assert on(lab, "host1", "cat /etc/resolv.conf").strip() == (
        f"nameserver {LAN_ADDRESS}"
    )
    notes = on(lab, "lan", "sudo cat /var/lib/ipvlan-lab/changes").splitlines()
    assert f"address {LAN_ADDRESS}/24 eth1" in notes

    status = existing("status", "--json")
    assert status.returncode == 0, status.stderr[-2000:]
    rows = json.loads(status.stdout)
    assert {row["state"] for row in rows} == {"reachable"}
    assert {row["provider"] for row in rows} == {"existing"}


def test_a_procedure_runs_on_the_machines(existing):
    result = existing("scenario", "novlan")
    assert result.returncode == 0, result.stderr[-4000:]
    run = load(latest_run("scenario-novlan"))
    assert run["environment"]["provider"] == "existing"
    (scenario,) = run["scenarios"]
    assert scenario["status"] == "ok"
    outcomes = {check["outcome"] for check in scenario["checks"]}
    assert outcomes == {"pass"}


def test_down_undoes_what_up_changed_and_leaves_the_machines(lab, existing):
    result = existing("down")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"removed address {LAN_ADDRESS}/24 from eth1" in result.stderr
    assert "put back /etc/resolv.conf" in result.stderr
    assert f"inet {LAN_ADDRESS}/" not in on(lab, "lan", "ip -o -4 addr show")
    lan = lab.lab().config.nodes["lan"].address
    assert on(lab, "host1", "cat /etc/resolv.conf").strip() == f"nameserver {lan}"
    assert on(lab, "lan", "sudo test -e /var/lib/ipvlan-lab/changes; echo $?") == (
        "1\n"
    )
    # The machines were the shared lab's: still running, and still fit.
    again = lab.invoke("up", label="up (after provider existing)")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "checking the running lab" in again.stderr
