"""Faults on real VMs: the lab survives them, names them, and cleans up.

These break the shared lab on purpose, so they run after every other test,
and in this order: the last ones take the lab down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ipvlan_lab.connections import Session
from ipvlan_lab.errors import ConnectionFailed
from ipvlan_lab.machines import SSHTarget

from ..conftest import INVOKE, ROOT
from ..e2e.results import latest_run, load
from ..machine import Snapshot

pytestmark = [pytest.mark.lab, pytest.mark.destructive]


def on(lab, slot: str, command: str) -> None:
    handle = lab.lab()
    try:
        record = handle.sessions()[slot].run(command, timeout=120)
    finally:
        handle.close()
    assert record.exit_status == 0, record.stderr


def start(log: Path, *args: str) -> subprocess.Popen:
    """`invoke ARGS` in its own process group, as a terminal would run it;
    its progress (standard error) goes to ``log``.

    Ctrl-C reaches it as at a terminal even when the suite itself runs in the
    background, where the shell has set SIGINT to be ignored and every child
    would inherit that.
    """
    with open(log, "w") as err:
        return subprocess.Popen(
            [*INVOKE, *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def wait_for_output(proc_log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc_log.exists() and text in proc_log.read_text(errors="replace"):
            return
        time.sleep(1)
    raise AssertionError(f"{text!r} did not appear within {timeout} s")


def test_a_dropped_connection_is_reopened_once(lab):
    handle = lab.lab()
    target = SSHTarget(**handle.state.nodes["host1"]["ssh"])
    session = Session("host1", target)
    try:
        assert session.run("true").exit_status == 0
        session.connection.transport.close()  # the connection drops
        assert session.run("echo back").stdout.strip() == "back"
        # A node that can no longer be reached: one clear error.
        session.target = SSHTarget(
            host="127.0.0.1", port=1, user="vagrant", key=target.key
        )
        session.connection.transport.close()
        with pytest.raises(ConnectionFailed, match="host1"):
            session.run("true")
    finally:
        session.close()


@pytest.mark.parametrize(
    "fault, break_it, mend_it, named",
    [
        (
            "lab NIC down",
            "sudo -n ip link set {nic} down",
            "sudo -n ip link set {nic} up",
            "lab NIC {nic} is down",
        ),
        (
            "dockerd stopped",
            "sudo -n systemctl stop docker.socket docker.service",
            "true",
            "dockerd on host2 does not answer",
        ),
    ],
)
def test_a_broken_host_is_a_lab_fault_not_a_confirmation(
    lab, fault, break_it, mend_it, named
):
    nic = lab.lab().state.nodes["host2"]["nic"]
    on(lab, "host2", break_it.format(nic=nic))
    try:
        result = lab.invoke("scenario", "novlan", label=f"scenario novlan ({fault})")
    finally:
        on(lab, "host2", mend_it.format(nic=nic))
        lab.invoke("up", check=True, label="up (after a fault)")
    assert result.returncode == 2, result.stderr[-3000:]
    assert named.format(nic=nic) in result.stderr
    run = load(latest_run("scenario-novlan"))
    assert run["exit_code"] == 2
    checks = run["scenarios"][0]["checks"]
    cross_host = [
        c
        for c in checks
        if c["id"]
        in (
            "h1-cross-host-ip",
            "h1-cross-host-name",
            "h1-host-to-other-container",
        )
        or (c["source"] == "test101" and c["target"] in ("test201", "192.168.4.201"))
    ]
    touching_host2 = [c for c in checks if "host2" in (c.get("message") or "")]
    assert touching_host2, "the checks that need host2 say why"
    for check in touching_host2 + cross_host:
        assert check["outcome"] == "lab-fault", check
        assert check["verdict"] == "lab-fault", check


def test_up_twice_at_once_waits_for_the_lock(lab, tmp_path):
    first = start(tmp_path / "first.err", "up")
    time.sleep(2)
    second = start(tmp_path / "second.err", "up")
    assert first.wait(timeout=600) == 0, (tmp_path / "first.err").read_text()
    assert second.wait(timeout=600) == 0, (tmp_path / "second.err").read_text()
    both = (tmp_path / "first.err").read_text() + (tmp_path / "second.err").read_text()
    assert "waiting for the lab: invoke up" in both


def test_ctrl_c_during_a_scenario_then_the_next_run_cleans_up(lab, tmp_path):
    log = tmp_path / "scenario.err"
    proc = start(log, "scenario", "novlan")
    wait_for_output(log, "--name test102", timeout=300)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at the terminal
    proc.wait(timeout=300)
    assert proc.returncode == 130, log.read_text()[-2000:]
    assert "interrupted" in log.read_text()
    interrupted = load(latest_run("scenario-novlan"))
    assert "interrupted" in interrupted["message"]

    result = lab.invoke("scenario", "novlan", label="scenario novlan (after Ctrl-C)")
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_vm_killed_mid_scenario_ends_in_a_report_with_lab_faults(lab, tmp_path):
    handle = lab.lab()
    domain = handle.config.data["network"]["name"] + "_host2"
    log = tmp_path / "scenario.err"
    proc = start(log, "scenario", "novlan")
    wait_for_output(log, "--name test202", timeout=300)
    if handle.state.data["lab"]["provider"].startswith("libvirt"):
        subprocess.run(
            ["virsh", "-c", "qemu:///system", "destroy", domain],
            check=True,
            capture_output=True,
        )
    proc.wait(timeout=900)
    text = log.read_text()
    assert proc.returncode == 2, text[-3000:]
    run = load(latest_run("scenario-novlan"))
    assert run["exit_code"] == 2
    scenario = run["scenarios"][0]
    assert scenario["status"] == "lab-fault"
    assert "host2" in scenario["message"]
    faults = [c for c in scenario["checks"] if c["outcome"] == "lab-fault"]
    assert faults
    assert not [
        c
        for c in scenario["checks"]
        if c["source"].startswith("test20") and c["outcome"] == "pass"
    ]
    assert (latest_run("scenario-novlan") / "report.html").exists()


def test_down_on_a_half_made_lab_leaves_nothing(lab):
    result = lab.invoke("down", label="down (half-made lab)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nothing of the lab is left" in result.stderr
    assert_nothing_left(lab, "a half-made lab")


def test_ctrl_c_during_up_then_verify_resumes_and_cleans_up(lab, tmp_path):
    log = tmp_path / "up.err"
    proc = start(log, "up")
    wait_for_output(log, "booting the nodes", timeout=300)
    time.sleep(20)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=300)
    assert proc.returncode == 130, log.read_text()[-3000:]
    assert "interrupted; the next `invoke up` resumes" in log.read_text()
    # The main job from an interrupted lab: verify resumes `up`, runs, and
    # takes down the lab it brought up.
    result = lab.invoke("verify", "--name", "novlan", label="verify novlan (resumed)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "taking the lab down (--destroy always)" in result.stderr
    run = load(latest_run("verify"))
    assert [s["name"] for s in run["scenarios"]] == ["novlan"]
    assert_nothing_left(lab, "verify took down the lab it resumed")
    # And `down` on a lab that is gone says so, and touches nothing.
    again = lab.invoke("down", label="down (no lab)")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "the lab is not up: there is nothing of it to remove" in again.stderr
    assert "warning" not in again.stderr
    assert_nothing_left(lab, "down on no lab")


def assert_nothing_left(lab, when: str) -> None:
    """No VM, libvirt network or volume, bridge, tap, process or firewall
    chain that was not there before the session's lab was made."""
    left = Snapshot.take().added_since(lab.before)
    lab.figure(f"left after down ({when})", sum(map(len, left.values())))
    assert left == {}, left
