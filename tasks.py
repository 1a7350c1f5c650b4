"""The lab's commands. Each task parses its arguments and calls the package.

invoke box [--force]            build the offline Debian box
invoke up [--provider NAME]     bring the lab up, or check it
invoke status [--json]          each node's state and facts
invoke ssh NODE                 a shell on a node
invoke scenario NAME [--keep]   run one scenario on the running lab
invoke scenario NAME --list     a scenario's steps and checks
invoke scenario --list          the scenarios and their titles
invoke verify [--name NAME]... [--destroy always|never|on-failure]
              [--provider NAME] every scenario, or each one named, from a
                                clean state; brings the lab up if it is down
invoke report [RUN]             re-render a run's report without the lab
invoke bench [--rounds N]       time the lab's ways of talking to the nodes
invoke down                     remove everything the lab made
invoke test [--unit] [-k EXPR]  the test suite (--unit: no VMs)
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys

from invoke import Exit, ParseError, Program, Task, task
from invoke.parser import Argument

from ipvlan_lab.errors import LabError, UsageError


def _door(fn):
    """Turn the lab's expected errors into one message and an exit code."""

    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        try:
            return fn(c, *args, **kwargs)
        except LabError as exc:
            raise Exit(f"ipvlan-lab: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit(
                "ipvlan-lab: interrupted; the next `invoke up` resumes and "
                "`invoke down` removes what was made",
                code=130,
            ) from None

    return wrapper


def _given(flag: str, value, hint: str):
    """The value of a flag whose value is optional to invoke's parser, so
    that a flag given alone gets the lab's error rather than invoke's."""
    if value is True:
        raise UsageError(f"{flag} needs a value", hint=hint)
    return value


def _count(flag: str, value, default: int) -> int:
    value = _given(flag, value, f"give a whole number, e.g. {flag} {default}")
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise UsageError(
            f"{flag} {value!r} is not a whole number of at least 1",
            hint=f"give a whole number, e.g. {flag} {default}",
        )
    return number


def _provider(value) -> str | None:
    from ipvlan_lab.providers import PROVIDERS

    return _given("--provider", value, "use one of: auto, " + ", ".join(PROVIDERS))


class _OptionalPositional(Argument):
    """A positional argument that may be left out.

    invoke requires every positional argument: its parser eats a token as a
    positional while the argument has no value, and errors when a context
    ends with one still empty. This argument has no value while tokens are
    being read, and an empty one when the parser checks at the end.
    """

    @property
    def value(self):
        if self._value is None and _parser_is_completing():
            return ""
        return Argument.value.fget(self)

    @value.setter
    def value(self, arg):
        self.set_value(arg, cast=True)


def _parser_is_completing() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "complete_context":
            return True
        frame = frame.f_back
    return False


class LabTask(Task):
    """A task whose positional argument may be left out, and whose repeatable
    flags, given with no value, reach the task as ``True`` in their list.

    invoke lets a repeatable flag go by with no value and says nothing, so
    `invoke verify --name` would run every scenario; here it is an error.
    """

    def get_arguments(self, ignore_unknown_help=None):
        args = super().get_arguments(ignore_unknown_help)
        for arg in args:
            if arg.positional:
                arg.__class__ = _OptionalPositional
            if arg.kind is list:
                arg.optional = True
                arg.raw_value = None
        return args


def _parse_errors_are_usage_errors(step):
    """invoke's parser refuses an unknown command or flag with exit code 1 and
    no advice. The lab says what was wrong, what to do, and exits 2, as for
    every other bad argument. invoke loads this file before it parses the
    commands (and before `--help NAME` is read), so wrapping those two steps
    here covers every command line."""

    @functools.wraps(step)
    def wrapper(self):
        try:
            return step(self)
        except ParseError as exc:
            unknown = re.fullmatch(r"No idea what '(.*)' is!", str(exc))
            if unknown:
                word = unknown.group(1)
                kind = "flag" if word.startswith("-") else "command"
                message = f"unknown {kind} {word!r}"
            else:
                message = str(exc)
            error = UsageError(
                message,
                hint="`invoke --list` lists the lab's commands; "
                "`invoke --help COMMAND` shows a command's flags",
            )
            raise Exit(f"ipvlan-lab: {error}", code=error.exit_code) from None

    wrapper.lab_wrapped = True
    return wrapper


if not getattr(Program.parse_tasks, "lab_wrapped", False):
    Program.parse_tasks = _parse_errors_are_usage_errors(Program.parse_tasks)
    Program.parse_cleanup = _parse_errors_are_usage_errors(Program.parse_cleanup)


@task(help={"force": "rebuild the box even if Vagrant already has it"})
@_door
def box(c, force=False):
    """Build the offline Debian 12 box from Debian's packages and add it."""
    from ipvlan_lab import verbs

    verbs.box(force=force)


@task(
    optional=["provider"],
    help={"provider": "auto, virtualbox, libvirt-kvm, libvirt-qemu or existing"},
)
@_door
def up(c, provider=None):
    """Bring the lab up: two Docker hosts and a LAN node; check a running one."""
    from ipvlan_lab import verbs

    verbs.up(_provider(provider))


@task
@_door
def down(c):
    """Remove every VM, network, daemon and file the lab made."""
    from ipvlan_lab import verbs

    code = verbs.down()
    if code:
        raise Exit(code=code)


@task(name="status", help={"json": "print JSON instead of a table"})
@_door
def status_(c, json=False):
    """Each node's state, provider, addresses, lab NIC, kernel and Docker."""
    from ipvlan_lab import verbs

    verbs.status(as_json=json)


@task(klass=LabTask, positional=["node"], help={"node": "host1, host2 or lan"})
@_door
def ssh(c, node=None):
    """Open a shell on a node."""
    from ipvlan_lab import verbs

    if not node:
        raise UsageError(
            "which node? `invoke ssh NODE`", hint="use one of: host1, host2, lan"
        )
    command = verbs.ssh_command(node)
    os.execvp(command[0], command)


@task(
    klass=LabTask,
    positional=["name"],
    help={
        "name": "the scenario to run (see --list)",
        "list": "list the scenarios, or a scenario's steps and checks",
        "keep": "leave the scenario's containers and networks standing",
    },
)
@_door
def scenario(c, name=None, list=False, keep=False):
    """Run one scenario on the running lab, step by step, live."""
    from ipvlan_lab import verbs

    if list:
        verbs.list_scenarios(name)
        return
    if not name:
        raise UsageError(
            "which scenario? `invoke scenario NAME`",
            hint="`invoke scenario --list` lists them",
        )
    code = verbs.run_scenario(name, keep=keep)
    if code:
        raise Exit(code=code)


@task(
    klass=LabTask,
    iterable=["name"],
    optional=["destroy", "provider"],
    help={
        "name": "a scenario to verify (repeatable); all of them by default",
        "destroy": "always, never or on-failure: take the lab down afterwards? "
        "(default: always if verify brought it up, never otherwise)",
        "provider": "the provider to bring the lab up with, if it is not up",
    },
)
@_door
def verify(c, name=None, destroy=None, provider=None):
    """Run every scenario from a clean state and check every claim."""
    from ipvlan_lab import verbs

    if True in (name or []):
        raise UsageError(
            "--name needs a value", hint="`invoke scenario --list` lists the scenarios"
        )
    code = verbs.verify(
        name or [],
        destroy=_given("--destroy", destroy, "use one of: always, never, on-failure"),
        provider=_provider(provider),
    )
    if code:
        raise Exit(code=code)


@task(
    klass=LabTask,
    positional=["run"],
    help={"run": "a run folder or id (default: the latest)"},
)
@_door
def report(c, run=None):
    """Re-render a run's report from its results.json, without the lab."""
    from ipvlan_lab import verbs

    verbs.rerender_report(run)


@task(optional=["rounds"], help={"rounds": "rounds of each measurement (default 5)"})
@_door
def bench(c, rounds=None):
    """Measure the lab's ways of talking to the nodes, on the running lab."""
    from ipvlan_lab import verbs

    verbs.bench(_count("--rounds", rounds, default=5))


@task(help={"unit": "only the unit tests (no VMs)", "k": "pytest -k expression"})
def test(c, unit=False, k=None):
    """Run the test suite: unit tests, then the real-VM tests on one lab."""
    args = [sys.executable, "-m", "pytest"]
    if unit:
        args.append("tests/unit")
    if k:
        args += ["-k", k]
    c.run(" ".join(json.dumps(a) for a in args), pty=False, in_stream=False)
