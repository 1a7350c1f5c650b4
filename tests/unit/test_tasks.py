"""tasks.py, the thin door: arguments in, one call to the package, errors out.

The verbs are replaced by recorders, so these tests parse and dispatch only;
nothing reaches a lab. The last ones run ``verify`` itself on a fake lab, for
the lab it takes down.
"""

from __future__ import annotations

import pytest
from invoke import Collection, Program

import tasks
from ipvlan_lab import verbs
from ipvlan_lab.errors import ConfigError, LabError


@pytest.fixture
def calls(monkeypatch) -> list:
    """Every verb, recording how it was called instead of running."""
    made: list = []

    def recorder(name, result=None):
        def record(*args, **kwargs):
            made.append((name, args, kwargs))
            return result

        return record

    for name in ("box", "up", "status", "list_scenarios", "rerender_report"):
        monkeypatch.setattr(verbs, name, recorder(name))
    monkeypatch.setattr(verbs, "ssh_command", recorder("ssh_command", ["true"]))
    monkeypatch.setattr(tasks.os, "execvp", lambda file, args: None)
    for name in ("run_scenario", "verify", "down"):
        monkeypatch.setattr(verbs, name, recorder(name, 0))
    return made


def invoke(*argv: str) -> int:
    """Run the lab's invoke program in-process; its exit code."""
    program = Program(namespace=Collection.from_module(tasks))
    try:
        program.run(["invoke", *argv])
    except SystemExit as exc:
        return exc.code or 0
    return 0


@pytest.mark.parametrize(
    ("argv", "call"),
    [
        (["box"], ("box", (), {"force": False})),
        (["box", "--force"], ("box", (), {"force": True})),
        (["up"], ("up", (None,), {})),
        (["up", "--provider", "libvirt-qemu"], ("up", ("libvirt-qemu",), {})),
        (["status", "--json"], ("status", (), {"as_json": True})),
        (["scenario", "--list"], ("list_scenarios", (None,), {})),
        (["scenario", "vlan", "--list"], ("list_scenarios", ("vlan",), {})),
        (["scenario", "vlan"], ("run_scenario", ("vlan",), {"keep": False})),
        (["scenario", "vlan", "--keep"], ("run_scenario", ("vlan",), {"keep": True})),
        (
            ["verify", "--name", "novlan", "--name", "vlan", "--destroy", "never"],
            ("verify", (["novlan", "vlan"],), {"destroy": "never", "provider": None}),
        ),
        (["verify"], ("verify", ([],), {"destroy": None, "provider": None})),
        (["report"], ("rerender_report", (None,), {})),
        (
            ["report", "20260101-000000-verify"],
            ("rerender_report", ("20260101-000000-verify",), {}),
        ),
        (["down"], ("down", (), {})),
        (["ssh", "host1"], ("ssh_command", ("host1",), {})),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_each_task_calls_one_verb(calls, argv, call):
    assert invoke(*argv) == 0
    assert calls == [call]


def test_scenario_without_a_name_is_a_usage_error(calls, capsys):
    assert invoke("scenario") == 2
    assert calls == []
    assert capsys.readouterr().err == (
        "ipvlan-lab: which scenario? `invoke scenario NAME`\n"
        "hint: `invoke scenario --list` lists them\n"
    )


def test_ssh_without_a_node_is_a_usage_error(calls, capsys):
    assert invoke("ssh") == 2
    assert calls == []
    assert capsys.readouterr().err == (
        "ipvlan-lab: which node? `invoke ssh NODE`\n"
        "hint: use one of: host1, host2, lan\n"
    )


def test_a_lab_error_becomes_its_message_hint_and_code(monkeypatch, capsys):
    def refuse(provider):
        raise ConfigError("lab.yaml: vlan.id is 0", hint="fix vlan.id")

    monkeypatch.setattr(verbs, "up", refuse)
    assert invoke("up") == 2
    assert capsys.readouterr().err == (
        "ipvlan-lab: lab.yaml: vlan.id is 0\nhint: fix vlan.id\n"
    )


def test_an_error_without_a_hint_is_one_line(monkeypatch, capsys):
    class Odd(LabError):
        exit_code = 3

    def refuse(as_json):
        raise Odd("something odd")

    monkeypatch.setattr(verbs, "status", refuse)
    assert invoke("status") == 3
    assert capsys.readouterr().err == "ipvlan-lab: something odd\n"


def test_interrupted(monkeypatch, capsys):
    def interrupt(provider):
        raise KeyboardInterrupt

    monkeypatch.setattr(verbs, "up", interrupt)
    assert invoke("up") == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_verbs_exit_code_is_the_commands(monkeypatch):
    monkeypatch.setattr(verbs, "verify", lambda names, destroy, provider: 1)
    assert invoke("verify") == 1


def test_an_unexpected_error_is_not_swallowed(monkeypatch):
    # Only the lab's expected errors are turned into messages; a bug keeps its
    # traceback.
    def broken(as_json):
        raise RuntimeError("a bug")

    monkeypatch.setattr(verbs, "status", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        invoke("status")


# verify --destroy: which labs verify takes down


class FakeLab:
    """A lab that is either up already or must be brought up."""

    def __init__(self, ready: bool, log: list):
        self.state = type("S", (), {"data": {"lab": {"ready": ready}}})()
        self.log = log

    def preflight(self, provider):
        self.log.append("preflight")

    def up(self, provider, choice):
        self.log.append("up")

    def close(self):
        pass

    def down(self):
        self.log.append("down")


@pytest.mark.parametrize(
    ("ready", "destroy", "exit_code", "taken_down"),
    [
        (True, None, 0, False),  # the user's lab stays up
        (True, None, 1, False),
        (False, None, 0, True),  # a lab verify brought up goes
        (False, None, 2, True),
        (True, "always", 0, True),
        (False, "never", 0, False),
        (True, "on-failure", 0, False),
        (True, "on-failure", 1, True),
        (False, "on-failure", 2, True),
        (False, "on-failure", 0, False),
    ],
)
def test_verify_destroys_by_its_policy(
    monkeypatch, ready, destroy, exit_code, taken_down
):
    log: list = []
    monkeypatch.setattr(verbs, "Lab", lambda: FakeLab(ready, log))
    monkeypatch.setattr(verbs, "_load", lambda lab, names: [])
    monkeypatch.setattr(verbs, "_summary", lambda run: None)
    monkeypatch.setattr(
        verbs.runner,
        "run",
        lambda *a, **k: type("Run", (), {"exit_code": exit_code})(),
    )
    assert verbs.verify([], destroy=destroy) == exit_code
    assert ("down" in log) is taken_down
    assert ("up" in log) is (not ready)


def test_verify_takes_down_a_lab_it_brought_up_even_when_the_run_breaks(
    monkeypatch,
):
    log: list = []
    monkeypatch.setattr(verbs, "Lab", lambda: FakeLab(False, log))
    monkeypatch.setattr(verbs, "_load", lambda lab, names: [])

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(verbs.runner, "run", broken)
    with pytest.raises(KeyboardInterrupt):
        verbs.verify([])
    assert log == ["preflight", "up", "down"]
