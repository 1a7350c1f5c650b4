"""What each ``invoke`` task does, at the user's edge: one function a task.

These functions print (through :mod:`ipvlan_lab.console`) and return an exit
code where the command has one; everything below them is quiet library code.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from rich.table import Table

from . import box as boxes
from . import console, report, runner, scenario
from .config import PROJECT
from .errors import LabError, UsageError
from .lab import Lab
from .results import EXIT_LAB, EXIT_OK, RunResult

RESULTS = PROJECT / "results"
SCENARIOS = PROJECT / "scenarios"
DESTROY = ("always", "never", "on-failure")


def box(force: bool = False) -> None:
    """Build the offline box (skipped when Vagrant has it, unless forced)."""
    lab = Lab()
    name = lab.config.data["boxes"]["libvirt"]["name"]
    with console.phase(f"box {name}"):
        built = boxes.build_box(
            name, force=force, workdir=lab.dir / "box", log=console.say
        )
    if built.skipped:
        console.say(f"{name} is already in Vagrant (`invoke box --force` rebuilds)")


def up(provider: str | None = None) -> None:
    """Bring the lab up, or check the running one."""
    lab = Lab()
    start = time.monotonic()
    try:
        lab.up(provider)
    finally:
        lab.close()
    console.say(
        f"the lab is up ({time.monotonic() - start:.0f} s); `invoke status` shows it"
    )


def down() -> int:
    """Remove the lab; 1 if anything of it is left behind."""
    left = Lab().down()
    if left:
        for item in left:
            console.warn(f"still present: {item}")
        return 1
    console.say("nothing of the lab is left")
    return 0


def status(as_json: bool = False) -> None:
    """Print each node's state and facts."""
    rows = Lab().status()
    if as_json:
        console.out.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table(
        "node",
        "VM",
        "state",
        "provider",
        "address",
        "lab NIC",
        "MAC",
        "kernel",
        "Docker",
        "ssh",
    )
    for r in rows:
        table.add_row(
            r.slot,
            r.name,
            r.state,
            r.provider or "-",
            r.address,
            r.nic or "-",
            r.mac or "-",
            r.kernel or "-",
            r.docker or "-",
            r.ssh or "-",
        )
    console.out.print(table)


def ssh_command(node: str) -> list[str]:
    """The command that opens a shell on ``node``."""
    return Lab().ssh_command(node)


def bench(rounds: int = 5) -> None:
    """Measure what the lab's ways of talking to the nodes cost."""
    from . import bench as benchmark

    lab = Lab()
    try:
        with console.phase("benchmark on the running lab"):
            figures = benchmark.run(lab, rounds)
    finally:
        lab.close()
    table = Table("what", "rounds", "median s", "min s", "max s")
    for f in figures:
        table.add_row(
            f.name, str(f.rounds), f"{f.median:.3f}", f"{f.low:.3f}", f"{f.high:.3f}"
        )
    console.out.print(table)
    console.say(f"saved in {benchmark.write(figures, RESULTS)}")


def list_scenarios(name: str | None) -> None:
    """List the scenarios, or one scenario's steps and checks."""
    if not name:
        for found, title in scenario.list_scenarios(SCENARIOS):
            console.out.print(f"{found:<16} {title}")
        return
    lab = Lab()
    loaded = scenario.load_scenario(
        scenario.find_scenario(SCENARIOS, name), runner.context(lab)
    )
    console.out.print(f"[bold]{loaded.name}[/bold]: {loaded.title}")
    for step in loaded.steps:
        console.out.print(
            f"  step  {step.id:<22} on {','.join(step.nodes):<12} {step.run}"
        )
    for check in loaded.checks:
        console.out.print(f"  check {check.id:<22} {check.kind:<16} {check.title}")


def _load(lab: Lab, names: list[str]) -> list:
    """Every scenario named (all by default), validated before anything runs."""
    context = runner.context(lab)
    if not names:
        names = runner.ordered(name for name, _ in scenario.list_scenarios(SCENARIOS))
    return [
        scenario.load_scenario(scenario.find_scenario(SCENARIOS, n), context)
        for n in names
    ]


def run_scenario(name: str, keep: bool = False) -> int:
    """Run one scenario on the running lab; its exit code."""
    lab = Lab()
    loaded = _load(lab, [name])
    lab.require_ready()
    try:
        run = runner.run(
            lab, loaded, command=f"scenario {name}", keep=keep, results=RESULTS
        )
    finally:
        lab.close()
    _summary(run)
    return run.exit_code


def verify(
    names: list[str], destroy: str | None = None, provider: str | None = None
) -> int:
    """Run the scenarios from a clean state and check every claim."""
    if destroy is not None and destroy not in DESTROY:
        raise UsageError(
            f"--destroy {destroy!r} is not a choice",
            hint="use one of: " + ", ".join(DESTROY),
        )
    lab = Lab()
    loaded = _load(lab, names)
    brought = not lab.state.data["lab"].get("ready")
    # Bad input (an unusable provider, a clashing subnet) stops here, before
    # anything is made and before the lab could be taken down.
    choice = lab.preflight(provider) if brought else None
    policy = destroy or ("always" if brought else "never")
    code = EXIT_LAB
    try:
        if brought:
            lab.up(provider, choice)
        run = runner.run(lab, loaded, command="verify", keep=False, results=RESULTS)
        code = run.exit_code
        _summary(run)
    finally:
        lab.close()
        if policy == "always" or (policy == "on-failure" and code != EXIT_OK):
            console.say(f"taking the lab down (--destroy {policy})")
            lab.down()
    return code


def rerender_report(run: str | None) -> None:
    """Re-render a run's report from its ``results.json``."""
    folder = _run_folder(run)
    written = report.rerender(folder)
    for kind, path in written.items():
        console.say(f"{kind}: {path}")


def _run_folder(run: str | None) -> Path:
    if run:
        for candidate in (Path(run), RESULTS / run):
            if (candidate / "results.json").exists():
                return candidate
        raise LabError(
            f"no run {run!r} (no results.json there or under {RESULTS})",
            hint="name a folder under results/, or leave RUN out for the latest",
        )
    runs = sorted(p.parent for p in RESULTS.glob("*/results.json"))
    if not runs:
        raise LabError(
            "no run has been recorded yet",
            hint="run `invoke verify` or `invoke scenario NAME` first",
        )
    return runs[-1]


def _summary(run: RunResult) -> None:
    from .verdict import ledger

    rows = ledger([c for _, c in run.checks()])
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    outcomes: dict[str, int] = {}
    for _, check in run.checks():
        outcomes[check.outcome] = outcomes.get(check.outcome, 0) + 1
    console.err.print(
        "[bold]claims:[/bold] "
        + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        + "   [bold]checks:[/bold] "
        + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
    )
    console.err.print(
        f"[bold]report:[/bold] {runner.folder_of(RESULTS, run)}/report.html "
        f"(exit {run.exit_code})"
    )
