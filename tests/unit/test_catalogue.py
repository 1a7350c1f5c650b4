"""The catalogue of bad input: each case a file, each case one clear error.

Every case must end in one message that says what is wrong, where, and what to
do (a ``hint:`` line), exit code 2, no traceback, and the lab's folder exactly
as it was. Adding a case means adding a file:

``data/bad/config/*.yaml``
    a configuration file whose first line is ``# error: TEXT``; run as
    ``invoke up`` with ``IPVLAN_LAB_CONFIG`` pointing at it.
``data/scenarios/bad/*.yaml``
    a scenario file whose first line is ``# error: TEXT``; run as
    ``invoke scenario PATH --list``.
``data/bad/args/*.yaml`` and ``data/bad/env/*.yaml``
    a small YAML file, the first line a comment saying what the case is::

        argv: [up, --provider, vmware]  # the command line after `invoke`
        error: unknown provider 'vmware'  # text the message must hold
        hint: "use one of: auto"        # text the hint must hold (optional)
        also: [novlan]                  # more text stderr must hold (optional)
        code: 2                         # the exit code (optional, default 2)
        config: {provider: virtualbox}  # lab.yaml (optional; "missing": none)
        lab: {state.json: "..."}        # files in the lab folder beforehand
        tools: {vagrant: "#!/bin/sh"}   # fake tools: the only ones on PATH
        routes: [...]                   # canned `ip -j route` (in-process)
        in_process: name                # instead of argv: a function below

Command-line cases run the real ``invoke`` program, each in a process of its
own with its own lab folder (``IPVLAN_LAB_DIR``) and a PATH that holds only
the case's fake tools, so that no case can reach the real lab, Vagrant or
libvirt. To keep the catalogue fast, one helper process imports the heavy
libraries once and forks a child per case; each child runs
``invoke.main.program``, which is all ``python -m invoke`` does. A few cases
also run as a plain ``python -m invoke`` to show the two agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
CONFIG_CASES = sorted((DATA / "bad" / "config").glob("*.yaml"))
SCENARIO_CASES = sorted((DATA / "scenarios" / "bad").glob("*.yaml"))
ARGS_CASES = sorted((DATA / "bad" / "args").glob("*.yaml"))
ENV_CASES = sorted((DATA / "bad" / "env").glob("*.yaml"))
#: What the scenario cases expect the lab to know of its nodes (their NICs).
SCENARIO_CONTEXT = DATA / "scenarios" / "context.yaml"


@dataclass
class Case:
    """One bad input and the error it must get."""

    kind: str
    name: str
    error: str
    argv: list[str] = field(default_factory=list)
    hint: str | None = None
    also: list[str] = field(default_factory=list)
    code: int = 2
    config: Any = None
    lab: dict[str, str] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def in_process(self) -> str | None:
        return self.spec.get("in_process")


def _first_line_error(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# error: "), f"{path} must start with '# error: '"
    return first.removeprefix("# error: ").replace("{file}", str(path))


def _scenario_state() -> str:
    # The NICs and MACs of context.yaml, as a running lab's state would hold.
    context = yaml.safe_load(SCENARIO_CONTEXT.read_text())
    nodes = {
        slot: {"nic": context[slot]["nic"], "mac": context[slot]["mac"]}
        for slot in ("host1", "host2", "lan")
    }
    state = {"version": 1, "made": {}, "lab": {}, "nodes": nodes}
    return json.dumps(state)


def _data_case(kind: str, path: Path) -> Case:
    spec = yaml.safe_load(path.read_text())
    assert isinstance(spec, dict), f"{path}: a case is a mapping"
    # Keys of the in-process cases, read by their functions below.
    extra = {"in_process", "routes", "provider", "own", "node", "output"}
    known = set(Case.__dataclass_fields__) | extra
    unknown = set(spec) - known - {"kind", "name", "spec"}
    assert not unknown, f"{path}: unknown keys {sorted(unknown)}"
    assert "error" in spec, f"{path}: a case says the error it must get"
    assert bool(spec.get("argv")) != bool(spec.get("in_process")), (
        f"{path}: a case has either argv or in_process"
    )
    return Case(
        kind=kind,
        name=path.stem,
        error=spec["error"],
        argv=[str(a) for a in spec.get("argv") or []],
        hint=spec.get("hint"),
        also=spec.get("also") or [],
        code=spec.get("code", 2),
        config=spec.get("config"),
        lab=spec.get("lab") or {},
        tools=spec.get("tools") or {},
        spec=spec,
    )


def _cases() -> list[Case]:
    cases = [
        Case("config", p.stem, _first_line_error(p), ["up"], config=p)
        for p in CONFIG_CASES
    ]
    state = _scenario_state()
    cases += [
        Case(
            "scenario",
            p.stem,
            _first_line_error(p),
            ["scenario", str(p), "--list"],
            lab={"state.json": state},
        )
        for p in SCENARIO_CASES
    ]
    cases += [_data_case("args", p) for p in ARGS_CASES]
    cases += [_data_case("env", p) for p in ENV_CASES]
    return cases


CASES = _cases()
CLI_CASES = [c for c in CASES if not c.in_process]
IN_PROCESS_CASES = [c for c in CASES if c.in_process]


# Running the command line ------------------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
    }


def _prepare(case: Case, base: Path) -> dict:
    """The case's folder (lab, fake tools, lab.yaml) and its job for the
    driver: argv, environment and working directory."""
    here = base / case.id.replace("/", "-")
    lab, bin_ = here / "lab", here / "bin"
    lab.mkdir(parents=True)
    bin_.mkdir()
    for name, text in case.lab.items():
        (lab / name).write_text(text)
    for name, text in case.tools.items():
        tool = bin_ / name
        tool.write_text(text)
        tool.chmod(0o755)
    if isinstance(case.config, Path):
        config = case.config
    elif case.config == "missing":
        config = here / "missing.yaml"
    else:
        config = here / "lab.yaml"
        config.write_text(yaml.safe_dump(case.config or {}))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IPVLAN_LAB_", "VAGRANT_", "LIBVIRT_"))
    }
    env.update(
        PATH=str(bin_),
        IPVLAN_LAB_DIR=str(lab),
        IPVLAN_LAB_CONFIG=str(config),
        COLUMNS="200",
    )
    return {"id": case.id, "argv": case.argv, "env": env, "cwd": str(ROOT)}


def run_cli(cases: list[Case], base: Path, forked: bool = True) -> dict[str, Any]:
    """Run every case's command line; each case's exit code, output, and
    its lab folder before and after."""
    jobs = [_prepare(case, base) for case in cases]
    before = {j["id"]: _snapshot(Path(j["env"]["IPVLAN_LAB_DIR"])) for j in jobs}
    if forked:
        found = _run_driver(jobs, base)
    else:
        found = {}
        for job in jobs:
            done = subprocess.run(
                [sys.executable, "-m", "invoke", *job["argv"]],
                cwd=job["cwd"],
                env=job["env"],
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
            found[job["id"]] = {
                "code": done.returncode,
                "stdout": done.stdout,
                "stderr": done.stderr,
            }
    return {
        j["id"]: SimpleNamespace(
            **found[j["id"]],
            before=before[j["id"]],
            after=_snapshot(Path(j["env"]["IPVLAN_LAB_DIR"])),
        )
        for j in jobs
    }


def _run_driver(jobs: list[dict], base: Path) -> dict[str, dict]:
    jobs_file, results_file = base / "jobs.json", base / "results.json"
    jobs_file.write_text(json.dumps(jobs))
    done = subprocess.run(
        [sys.executable, __file__, "--drive", str(jobs_file), str(results_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"the driver failed:\n{done.stderr[-4000:]}"
    return json.loads(results_file.read_text())


def _drive(jobs_file: str, results_file: str) -> None:
    """The helper process: import once, fork a child a case."""
    sys.path.insert(0, str(ROOT))
    import fabric  # noqa: F401
    import invoke.main  # noqa: F401
    import rich.table  # noqa: F401

    for module in (
        "box",
        "config",
        "connections",
        "console",
        "machines",
        "nodes",
        "providers",
        "report",
        "scenario",
        "state",
        "verdict",
    ):
        __import__(f"ipvlan_lab.{module}")
    # ipvlan_lab.lab reads IPVLAN_LAB_DIR when imported: each child imports it
    # afresh, with its own.
    assert "ipvlan_lab.lab" not in sys.modules

    results = {}
    for job in json.loads(Path(jobs_file).read_text()):
        results[job["id"]] = _fork(job)
    Path(results_file).write_text(json.dumps(results))


def _fork(job: dict) -> dict:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                os.environ.clear()
                os.environ.update(job["env"])
                os.chdir(job["cwd"])
                from invoke.main import program

                program.run(["invoke", *job["argv"]])
                code = 0
            except SystemExit as exc:
                if isinstance(exc.code, int) or exc.code is None:
                    code = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return {
            "code": os.waitstatus_to_exitcode(status),
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


if __name__ == "__main__" and sys.argv[1:2] == ["--drive"]:
    _drive(sys.argv[2], sys.argv[3])
    sys.exit(0)


# The tests ---------------------------------------------------------------

import pytest  # noqa: E402

from ipvlan_lab import box, nodes, providers, state  # noqa: E402
from ipvlan_lab.config import from_data  # noqa: E402
from ipvlan_lab.errors import LabError  # noqa: E402


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict[str, Any]:
    """Every command-line case, run once."""
    return run_cli(CLI_CASES, tmp_path_factory.mktemp("catalogue"))


def assert_clear(case: Case, code: int, stderr: str) -> None:
    """One clear error: the message, a hint, the exit code, no traceback."""
    assert "Traceback" not in stderr, stderr
    assert case.error in stderr, f"expected {case.error!r} in:\n{stderr}"
    for text in case.also:
        assert text in stderr, f"expected {text!r} in:\n{stderr}"
    if case.code == 2:
        hints = [line for line in stderr.splitlines() if line.startswith("hint: ")]
        assert hints, f"no hint: line in:\n{stderr}"
        if case.hint:
            assert any(case.hint in line for line in hints), (
                f"expected {case.hint!r} in the hint:\n{stderr}"
            )
    assert code == case.code, f"exit {code}, not {case.code}:\n{stderr}"


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_input_on_the_command_line(case, cli):
    result = cli[case.id]
    assert_clear(case, result.code, result.stderr)
    assert result.after == result.before, "the lab's folder changed"


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 40
    assert {c.kind for c in CASES} == {"config", "scenario", "args", "env"}
    assert set(IN_PROCESS) == {c.in_process for c in IN_PROCESS_CASES}


def test_the_driver_agrees_with_python_m_invoke(tmp_path):
    picked = {
        "config/vlan-id-zero",
        "scenario/unknown-kind",
        "args/unknown-scenario",
        "env/vagrant-missing",
    }
    cases = [c for c in CLI_CASES if c.id in picked]
    assert len(cases) == len(picked)
    forked = run_cli(cases, tmp_path / "forked")
    plain = run_cli(cases, tmp_path / "plain", forked=False)
    for case in cases:
        one, other = forked[case.id], plain[case.id]
        assert (one.code, one.stderr.replace(str(tmp_path / "forked"), "")) == (
            other.code,
            other.stderr.replace(str(tmp_path / "plain"), ""),
        )


# In-process cases: where the command line would need a real machine --------

IN_PROCESS = {}


def in_process(fn):
    """Register ``fn`` as the in-process case of that name."""
    IN_PROCESS[fn.__name__.replace("_", "-")] = fn
    return fn


def _fake_tool(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    (folder / name).chmod(0o755)


@in_process
def libvirtd_not_startable(case, tmp_path, monkeypatch):
    # No systemd, virsh cannot connect, virtlogd runs, libvirtd fails to
    # start: only the fake libvirtd on PATH is ever run.
    bin_ = tmp_path / "bin"
    _fake_tool(bin_, "libvirtd", case.spec["tools"]["libvirtd"])
    monkeypatch.setenv("PATH", str(bin_))
    monkeypatch.setattr(providers, "_virsh_ok", lambda: False)
    monkeypatch.setattr(providers, "_pid1", lambda: "init")
    monkeypatch.setattr(providers, "_running", lambda name: name == "virtlogd")
    lab = tmp_path / "lab"
    try:
        providers.LibvirtQEMU(from_data({}), lambda _: None)._start_daemons(
            state.State(lab)
        )
    finally:
        assert not lab.exists(), "nothing is recorded for a daemon that failed"


@in_process
def libvirtd_stopped_under_systemd(case, tmp_path, monkeypatch):
    monkeypatch.setattr(providers, "_virsh_ok", lambda: False)
    monkeypatch.setattr(providers, "_pid1", lambda: "systemd")
    started = []
    monkeypatch.setattr(providers.subprocess, "run", lambda *a, **k: started.append(a))
    try:
        providers.LibvirtKVM(from_data({}))._start_daemons(state.State(tmp_path))
    finally:
        assert not started, "under systemd the lab starts no daemon itself"


@in_process
def disk_too_small(case, tmp_path, monkeypatch):
    usage = SimpleNamespace(total=8 * 1024**3, used=7 * 1024**3, free=1024**3)
    monkeypatch.setattr(box, "box_exists", lambda name: False)
    monkeypatch.setattr(box.os, "geteuid", lambda: 0)
    monkeypatch.setattr(box, "check_tools", lambda: None)
    monkeypatch.setattr(box, "find_vagrant_key", lambda: tmp_path / "vagrant.pub")
    monkeypatch.setattr(box.shutil, "disk_usage", lambda path: usage)
    workdir = tmp_path / "box"
    try:
        box.build_box("ipvlan-lab/debian12", workdir=workdir, log=lambda _: None)
    finally:
        assert not workdir.exists(), "nothing is made when the disk is too small"


class _Guest:
    """A node whose provision script prints ``output`` and exits ``status``."""

    def __init__(self, output: str, status: int):
        self.output, self.status, self.ran = output, status, []

    def run(self, command: str, timeout: float | None = None):
        self.ran.append(command)
        if "bash" in command:
            return SimpleNamespace(
                stdout=self.output, stderr="", exit_status=self.status
            )
        made = "/tmp/ipvlan-lab.x1y2z3\n" if command.startswith("mktemp") else ""
        return SimpleNamespace(stdout=made, stderr="", exit_status=0)

    def put(self, local: Path, remote: str) -> None:
        assert local.is_file()


@in_process
def guest_kernel(case, tmp_path, monkeypatch):
    config = from_data({})
    node = config.nodes[case.spec["node"]]
    guest = _Guest(case.spec["output"], 1)
    try:
        nodes.provision(guest, config, node, "eth1")
    finally:
        assert guest.ran[-1] == "rm -rf /tmp/ipvlan-lab.x1y2z3", "scripts removed"


@in_process
def route_clash(case, tmp_path, monkeypatch):
    config = from_data(case.config or {})
    provider = providers.PROVIDERS[case.spec["provider"]](config)
    monkeypatch.setattr(provider, "own_devices", lambda: set(case.spec.get("own", [])))
    provider.check_routes(case.spec["routes"])


@in_process
def lock_held(case, tmp_path, monkeypatch):
    with state.lock(tmp_path, what="invoke up"):
        with state.lock(tmp_path, wait=0, what="invoke down"):
            pass


@pytest.mark.parametrize("case", IN_PROCESS_CASES, ids=[c.id for c in IN_PROCESS_CASES])
def test_bad_input_in_process(case, tmp_path, monkeypatch):
    run = IN_PROCESS[case.in_process]
    with pytest.raises(LabError) as caught:
        run(case, tmp_path, monkeypatch)
    error = caught.value
    assert error.hint, f"{type(error).__name__} without a hint: {error}"
    assert_clear(case, error.exit_code, f"ipvlan-lab: {error}")
