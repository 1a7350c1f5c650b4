"""Machines of the user's own (provider ``existing``): reaching them, the
notes provisioning leaves on them, and restore.sh, which undoes what they say.

The scripts run here for real, on files in a temporary folder: only notes
that touch nothing of this machine (files, packages, an address on a NIC that
does not exist) are given to restore.sh.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from ipvlan_lab.config import from_data
from ipvlan_lab.errors import MachineError
from ipvlan_lab.machines import ExistingMachines
from ipvlan_lab.providers import PROVIDERS, Existing, choose

PROVISION = Path(__file__).resolve().parents[2] / "provision"


def note(state: Path, machine: str, *changes: str) -> subprocess.CompletedProcess:
    """Source baseline.sh as the provision scripts do and note ``changes``."""
    script = f". {PROVISION / 'baseline.sh'}; " + "; ".join(
        f"note {change}" for change in changes
    )
    return subprocess.run(
        ["bash", "-c", script],
        env={"LAB_NODE": "host1", "LAB_MACHINE": machine, "LAB_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        check=True,
    )


def restore(state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(PROVISION / "restore.sh")],
        env={"LAB_NODE": "host1", "LAB_STATE_DIR": str(state), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_notes_are_kept_once_and_only_on_a_machine_of_the_users(tmp_path):
    note(
        tmp_path / "own", "own", "'file /tmp/x'", "'file /tmp/x'", "'package docker.io'"
    )
    assert (tmp_path / "own" / "changes").read_text().splitlines() == [
        "file /tmp/x",
        "package docker.io",
    ]
    note(tmp_path / "vm", "vm", "'file /tmp/x'")
    assert not (tmp_path / "vm").exists(), "the lab's own VMs note nothing"


def test_restore_undoes_the_notes_newest_first(tmp_path):
    state = tmp_path / "state"
    made = tmp_path / "ipvlan-lab-sessions.conf"
    made.write_text("MaxSessions 64\n")
    note(
        state,
        "own",
        f"'file {made}'",
        "'package docker.io'",
        "'address 10.255.255.1/32 lab-none0'",
    )
    done = restore(state)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "host1: address 10.255.255.1/32 is no longer on lab-none0",
        "host1: kept docker.io, which the lab installed (apt-get purge docker.io "
        "removes it)",
        f"host1: removed {made}",
        "restored",
    ]
    assert not made.exists()
    assert not state.exists(), "the notes go once they are undone"


def test_a_docker_the_lab_moved_to_its_version_is_named_with_the_old_one(tmp_path):
    state = tmp_path / "state"
    note(state, "own", "'package-version docker-ce 5:24.0.7-1~debian.12~bookworm'")
    done = restore(state)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[0] == (
        "host1: kept docker-ce at the lab's version; it was "
        "5:24.0.7-1~debian.12~bookworm (apt-get install --allow-downgrades "
        "docker-ce=5:24.0.7-1~debian.12~bookworm puts it back)"
    )


def test_restore_with_nothing_noted_has_nothing_to_do(tmp_path):
    done = restore(tmp_path / "never-made")
    assert (done.returncode, done.stdout) == (0, "restored\n")


def test_restore_names_a_note_it_does_not_know(tmp_path):
    state = tmp_path / "state"
    note(state, "own", "'mystery thing'")
    done = restore(state)
    assert done.returncode == 1
    assert "host1: an unknown note: mystery thing ; fix: look at" in done.stdout
    assert done.stdout.splitlines()[-1] == "restore failed: 1 problem(s)"


def test_a_change_that_could_not_be_undone_stays_noted(tmp_path):
    state = tmp_path / "state"
    made = tmp_path / "made.conf"
    made.write_text("x\n")
    note(state, "own", f"'file {made}'", "'mystery thing'", "'package docker.io'")
    done = restore(state)
    assert done.returncode == 1
    assert not made.exists(), "what could be undone was"
    # Only the note that failed is left, for the next `invoke down`.
    assert (state / "changes").read_text() == "mystery thing\n"
    again = restore(state)
    assert "an unknown note: mystery thing" in again.stdout


# The machines, and the provider


def config_for(port: int, **host1):
    entry = {"host": "127.0.0.1", "port": port, "user": "admin"}
    return from_data(
        {
            "provider": "existing",
            "ssh": {
                "host1": {**entry, **host1},
                "host2": entry,
                "lan": entry,
            },
        }
    )


@pytest.fixture
def listening():
    """A port on loopback that accepts connections, as sshd's would."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_machines_that_answer_are_reachable(listening):
    machines = ExistingMachines(config_for(listening))
    found = machines.status()
    assert {slot: s.state for slot, s in found.items()} == {
        "host1": "reachable",
        "host2": "reachable",
        "lan": "reachable",
    }
    machines.up()
    assert machines.made() == []


def test_a_machine_that_does_not_answer_is_named(listening):
    port = closed_port()
    config = from_data(
        {
            "provider": "existing",
            "ssh": {
                "host1": {"host": "127.0.0.1", "port": listening, "user": "a"},
                "host2": {"host": "127.0.0.1", "port": port, "user": "a"},
                "lan": {"host": "127.0.0.1", "port": listening, "user": "a"},
            },
        }
    )
    machines = ExistingMachines(config)
    assert machines.status()["host2"].state == "unreachable"
    with pytest.raises(MachineError) as caught:
        machines.up()
    assert caught.value.message.startswith(
        f"cannot reach over SSH: host2 (127.0.0.1:{port})"
    )
    assert "host1" not in caught.value.message
    assert "ssh section of lab.yaml" in caught.value.hint


def test_the_target_is_lab_yamls_entry(tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_text("not a real key")
    machines = ExistingMachines(config_for(2222, key=str(key), user="root"))
    target = machines.ssh_target("host1")
    assert (target.host, target.port, target.user, target.key) == (
        "127.0.0.1",
        2222,
        "root",
        str(key),
    )
    assert machines.ssh_target("lan").key == "", "no key: the agent and ~/.ssh"


def test_the_existing_provider_is_chosen_only_by_lab_yaml(listening):
    chosen = choose(config_for(listening))
    assert isinstance(chosen.provider, Existing)
    assert chosen.why == "asked for by lab.yaml"
    assert chosen.provider.subnets() == {}, "the lab's subnets are the user's LAN"
    assert chosen.provider.keeps_machines
    assert not PROVIDERS["existing"].automatic


def test_the_lan_node_of_existing_machines_leaves_the_gateway_to_the_router(
    listening,
):
    assert config_for(listening).lan_addresses() == ["192.168.4.199/24"]
    assert from_data({}).lan_addresses() == ["192.168.4.199/24", "192.168.4.1/24"]
