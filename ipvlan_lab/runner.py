"""Running scenarios on the lab: clean state, steps, checks, verdicts.

For each scenario the runner

1. removes what earlier scenarios made (containers, Docker networks, VLAN and
   ipvlan links, extra addresses), so that every run starts clean;
2. runs the steps in order, each on its nodes in parallel;
3. probes every node's health (lab NIC up, Docker answering, the segment
   reachable), runs the checks, several at once per node, and probes again;
4. decides outcomes and verdicts once every observation is in, so that a
   negative result counts only beside a positive control that passed;
5. records what stands (for the topology picture) and cleans up again unless
   asked to keep it.

Every command is recorded with its node, exit status, output and timing;
after each scenario the run's folder gets ``results.json`` and the reports.
"""

from __future__ import annotations

import re
import shlex
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import console, nodes, parsing, report, verdict
from .config import DOCKER_HOSTS, SLOTS, template_context
from .connections import Session, now, parallel
from .errors import ConnectionFailed, LabError
from .lab import LOCK_WAIT, Lab
from .providers import PROVIDERS
from .results import (
    EXIT_LAB,
    FAIL,
    LAB_FAULT,
    PASS,
    SKIPPED,
    CheckResult,
    CommandRecord,
    Environment,
    NodeFacts,
    RunResult,
    ScenarioResult,
    StepResult,
    TopologyContainer,
    TopologyNetwork,
)
from .scenario import Check, Scenario, Step, render_check
from .state import lock

#: The documented procedures run first; the rest follow by name.
FIRST = ("novlan", "vlan")
#: Checks run at once on one node (each is mostly waiting on a container).
PER_NODE = 3
#: Seconds between the attempts of a check that did not match.
RETRY_PAUSE = 1.0
#: ping: one packet, and seconds to wait for its reply. A reachable target
#: answers within milliseconds; a lost first packet (ARP still resolving) is
#: what a check's retry is for.
PING_WAIT = 2


def context(lab: Lab) -> dict:
    """The template context of the lab, with what it knows of the nodes."""
    facts = {}
    try:
        facts = lab.state.nodes
    except LabError:
        pass
    return template_context(lab.config, facts)


def ordered(names: Iterable[str]) -> list[str]:
    """Scenario names, the documented procedures first."""
    names = list(names)
    return [n for n in FIRST if n in names] + sorted(n for n in names if n not in FIRST)


def folder_of(results: Path, run: RunResult) -> Path:
    """Where a run's files are."""
    return results / run.run_id


def run(
    lab: Lab, scenarios: list[Scenario], command: str, keep: bool, results: Path
) -> RunResult:
    """Run ``scenarios`` in order on the running lab and write the reports.

    One run at a time: a second waits for the lab's lock.
    """
    with lock(lab.dir, wait=LOCK_WAIT, what=f"invoke {command}", on_wait=console.say):
        lab.reload()
        lab.require_ready()
        return _run(lab, scenarios, command, keep, results)


def _run(
    lab: Lab, scenarios: list[Scenario], command: str, keep: bool, results: Path
) -> RunResult:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "-", command.lower()).strip("-")
    result = RunResult(
        run_id=f"{stamp}-{slug}",
        command=command,
        started=now(),
        duration=0.0,
        exit_code=EXIT_LAB,
        environment=environment(lab),
    )
    folder = folder_of(results, result)
    folder.mkdir(parents=True, exist_ok=True)
    clock = time.monotonic()
    sessions = lab.sessions()
    try:
        parallel(lambda slot: sessions[slot].open(), SLOTS)
        for index, loaded in enumerate(scenarios):
            # After the first scenario, the one before has already cleaned up,
            # unless a node failed it (its clean-up may have missed the node).
            previous = result.scenarios[-1] if result.scenarios else None
            fresh = index > 0 and not keep and previous.status != LAB_FAULT
            with console.phase(f"scenario {loaded.name}: {loaded.title}"):
                done = ScenarioRun(lab, sessions, loaded, keep=keep).run(
                    clean_first=not fresh
                )
            result.scenarios.append(done)
            _finish(result, clock, folder)
    except KeyboardInterrupt:
        result.message = "interrupted: the run is incomplete"
        _finish(result, clock, folder)
        raise
    except ConnectionFailed as exc:
        result.message = f"the lab failed: {exc.message}"
        _finish(result, clock, folder)
    return result


def _finish(result: RunResult, clock: float, folder: Path) -> None:
    result.duration = round(time.monotonic() - clock, 3)
    outcomes = [c.outcome for _, c in result.checks()]
    outcomes += [
        FAIL if step.status == "failed" else PASS
        for scenario in result.scenarios
        for step in scenario.steps
    ]
    if result.message or any(s.status == LAB_FAULT for s in result.scenarios):
        outcomes.append(LAB_FAULT)
    result.exit_code = verdict.exit_code(outcomes)
    report.render_all(result, folder)


def environment(lab: Lab) -> Environment:
    """Provider, box and each node's facts, as the run's record keeps them."""
    provider = lab.state.data["lab"].get("provider", "")
    facts = []
    for slot, node in lab.config.nodes.items():
        known = lab.state.nodes.get(slot, {})
        facts.append(
            NodeFacts(
                name=slot,
                role=node.role,
                address=node.address,
                nic=known.get("nic"),
                mac=known.get("mac"),
                kernel=known.get("kernel"),
                docker=known.get("docker"),
                os=known.get("os"),
                vlan_address=node.vlan_address,
            )
        )
    return Environment(
        provider=provider,
        box=PROVIDERS[provider](lab.config).box()["name"] if provider else "",
        network_mode=lab.config.data["network"]["mode"],
        nodes=facts,
    )


@dataclass
class Observation:
    """What one attempt of a check saw."""

    observed: str
    #: Whether it matched the expectation; ``None`` when nothing could be
    #: observed (the command did not run or finish, its output was not the
    #: tool's): a lab fault, never a pass or a fail.
    matched: bool | None
    records: list[CommandRecord] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    message: str = ""


class ScenarioRun:
    """One scenario on the lab."""

    def __init__(
        self, lab: Lab, sessions: dict[str, Session], loaded: Scenario, keep: bool
    ):
        self.lab = lab
        self.sessions = sessions
        self.scenario = loaded
        self.keep = keep
        self.context = context(lab)
        self.facts = lab.state.nodes
        self.unhealthy: dict[str, str] = {}
        self._limits = {slot: threading.Semaphore(PER_NODE) for slot in SLOTS}

    # The whole scenario --------------------------------------------------

    def run(self, clean_first: bool = True) -> ScenarioResult:
        """Clean, run the steps and checks, decide, record, clean.

        A node that fails (unreachable, NIC down, Docker not answering) does
        not end the scenario: what involves it becomes a lab fault, the rest
        runs.
        """
        started, clock = now(), time.monotonic()
        result = ScenarioResult(
            name=self.scenario.name,
            title=self.scenario.title,
            file=self.scenario.file,
            started=started,
            duration=0.0,
            status="ok",
        )
        self.probe()
        result.cleanup = self.clean(reset=clean_first, verify=True)
        try:
            for step in self.scenario.steps:
                result.steps.append(self.step(step))
                if result.steps[-1].status == "failed":
                    break
            stopped = self._stopped(result.steps)
            if stopped:
                observed = {c.id: (c, None, now(), 0.0) for c in self.scenario.checks}
            else:
                self.probe()
                observed = self.checks()
                self.probe()
            result.checks = self.decide(observed, stopped=stopped)
            result.containers, result.networks = self.topology()
        finally:
            if not self.keep:
                result.cleanup += self.clean()
            result.duration = round(time.monotonic() - clock, 3)
        if any(s.status == "failed" for s in result.steps) or any(
            c.outcome == FAIL for c in result.checks
        ):
            result.status = "failed"
        if self.unhealthy:
            result.status = LAB_FAULT
            result.message = "; ".join(self.unhealthy.values())
        return result

    def _stopped(self, steps: list[StepResult]) -> str | None:
        """Why the checks cannot run: a step failed, so what they look at was
        never made. ``None`` when every step ran."""
        if steps and steps[-1].status == "failed":
            left = len(self.scenario.steps) - len(steps)
            return f"not run: step {steps[-1].id} failed" + (
                f" and the {left} after it did not run" if left else ""
            )
        return None

    def run_on(self, slot: str, command: str, timeout: float) -> CommandRecord:
        """Run a command on a node; a node that cannot be reached is marked
        unhealthy and the record says why."""
        if slot in self.unhealthy:
            return _not_run(slot, command, self.unhealthy[slot])
        try:
            return self.sessions[slot].run(command, timeout=timeout)
        except ConnectionFailed as exc:
            self._fault(slot, f"{slot} cannot be reached over SSH ({exc.message})")
            return _not_run(slot, command, self.unhealthy[slot])

    def _fault(self, slot: str, problem: str) -> None:
        if slot not in self.unhealthy:
            console.warn(f"lab fault: {problem}")
            self.unhealthy[slot] = problem

    # Clean state ---------------------------------------------------------

    def clean(self, reset: bool = True, verify: bool = False) -> list[CommandRecord]:
        """Remove what scenarios made on every reachable node.

        With ``verify``, then look: a node that still holds something of a
        scenario's is cleaned (again) and looked at once more, and if it
        still does, it is a lab fault: the scenario would not start clean.
        """

        def clean_node(slot: str) -> list[CommandRecord]:
            records = self._reset(slot) if reset else []
            if not verify or slot in self.unhealthy:
                return records
            left, record = self._leftovers(slot)
            records.append(record)
            if left and not reset:
                records += self._reset(slot)
                left, record = self._leftovers(slot)
                records.append(record)
            if left and slot not in self.unhealthy:
                self._fault(
                    slot, f"{slot} still holds {', '.join(left)} after the clean-up"
                )
            return records

        found = parallel(clean_node, SLOTS)
        return [r for slot in SLOTS for r in found[slot]]

    def _leftovers(self, slot: str) -> tuple[list[str], CommandRecord]:
        found, record = nodes.left_on(
            lambda command, timeout: self.run_on(slot, command, timeout),
            self.lab.config.nodes[slot],
            self.facts[slot]["nic"],
            self.facts[slot].get("baseline", {}),
            self._kept_addresses(slot),
        )
        # A node lost meanwhile is already a lab fault, not an unclean one.
        return ([] if slot in self.unhealthy else found), record

    def _reset(self, slot: str) -> list[CommandRecord]:
        """Run the clean-up commands on one node."""
        records = []
        for extra in self.scenario.cleanup:
            if slot in extra.nodes:
                records.append(self.run_on(slot, extra.command(self.context, slot), 60))
        return records + nodes.reset(
            lambda command, timeout: self.run_on(slot, command, timeout),
            self.lab.config.nodes[slot],
            self.facts[slot]["nic"],
            self.facts[slot].get("baseline", {}),
            self._kept_addresses(slot),
        )

    def _kept_addresses(self, slot: str) -> list[str]:
        """The CIDRs a node's lab NIC keeps between scenarios: the lab's and
        whatever it held when the lab came up."""
        return nodes.kept_addresses(self.lab.config, slot, self.facts[slot])

    # Steps ---------------------------------------------------------------

    def step(self, step: Step) -> StepResult:
        """Run one step on its nodes, in parallel."""
        started, clock = now(), time.monotonic()
        commands = {slot: step.command(self.context, slot) for slot in step.nodes}
        expect_error = step.error_text(self.context, step.nodes[0])

        def one(slot: str) -> CommandRecord:
            return self.run_on(slot, commands[slot], step.timeout)

        records = parallel(one, step.nodes)
        status, message = "ok", ""
        for slot in step.nodes:
            record = records[slot]
            if slot in self.unhealthy:
                status, message = LAB_FAULT, self.unhealthy[slot]
                continue
            output = record.stdout + record.stderr
            if expect_error is not None:
                if record.exit_status == 0:
                    status, message = (
                        "failed",
                        f"{slot}: succeeded, but the step "
                        f"expects it to fail with {expect_error!r}",
                    )
                elif expect_error not in output:
                    status, message = (
                        "failed",
                        f"{slot}: failed, but without "
                        f"{expect_error!r}: {output.strip()[-300:]}",
                    )
            elif record.exit_status != 0:
                status = "failed"
                message = f"{slot}: exit {record.exit_status}: {output.strip()[-300:]}"
        duration = round(time.monotonic() - clock, 3)
        shown = commands[step.nodes[0]]
        console.line(",".join(step.nodes), shown, status, duration, message)
        return StepResult(
            id=step.id,
            title=step.title,
            nodes=list(step.nodes),
            command=shown,
            status=status,
            message=message,
            howto=step.howto,
            note=step.note_text(self.context, step.nodes[0]),
            expect_error=expect_error,
            records=[records[s] for s in step.nodes],
            started=started,
            duration=duration,
        )

    # Health --------------------------------------------------------------

    def probe(self) -> None:
        """Mark nodes whose lab NIC is down, whose Docker does not answer, or
        that cannot reach the LAN node over the segment."""
        lan = self.lab.config.nodes["lan"].address

        def probe_node(slot: str) -> str | None:
            nic = self.facts[slot]["nic"]
            parts = [f"cat /sys/class/net/{nic}/operstate"]
            if slot in DOCKER_HOSTS:
                parts.append(
                    "docker version --format '{{.Server.Version}}' "
                    ">/dev/null 2>&1 && echo docker-ok || echo docker-down"
                )
                parts.append(
                    f"ping -c 2 -i 0.3 -W 1 -w 2 {lan} >/dev/null "
                    "&& echo segment-ok || echo segment-down"
                )
            if slot in self.unhealthy:
                return None
            record = self.run_on(slot, "; ".join(parts), 30)
            if slot in self.unhealthy:
                return None
            words = record.stdout.split()
            if not words or words[0] != "up":
                return f"{slot}'s lab NIC {nic} is {words[0] if words else 'missing'}"
            if "docker-down" in words:
                return f"dockerd on {slot} does not answer"
            if "segment-down" in words:
                return f"{slot} cannot reach the LAN node {lan} over the lab segment"
            return None

        for slot, problem in parallel(probe_node, SLOTS).items():
            if problem:
                self._fault(slot, problem)

    # Checks --------------------------------------------------------------

    def checks(self) -> dict[str, tuple[Check, Observation | None, str, float]]:
        """Run every check; their observations by id (``None``: skipped)."""
        found: dict[str, tuple[Check, Observation | None, str, float]] = {}
        lock = threading.Lock()

        def one(check: Check) -> None:
            started, clock = now(), time.monotonic()
            versions = self.versions(check.node)
            if not check.applies(versions) or check.expectation(versions) is None:
                observation = None
            elif any(n in self.unhealthy for n in check.nodes):
                down = [n for n in check.nodes if n in self.unhealthy]
                observation = Observation(
                    "not run", None, message=self.unhealthy[down[0]]
                )
            elif check.kind in ALONE:
                observation = self.observe(check, versions)
            else:
                with self._limits[check.node]:
                    observation = self.observe(check, versions)
            duration = round(time.monotonic() - clock, 3)
            with lock:
                found[check.id] = (check, observation, started, duration)
            if observation is None:
                status = SKIPPED
            elif observation.matched is None:
                status = LAB_FAULT
            else:
                status = "ok" if observation.matched else "fail"
            what = check.title + (f" -> {observation.observed}" if observation else "")
            console.line(
                check.source,
                what,
                status,
                duration,
                observation.message if observation else "",
            )

        together = [c for c in self.scenario.checks if c.kind not in ALONE]
        with ThreadPoolExecutor(max_workers=PER_NODE * len(SLOTS)) as pool:
            for future in [pool.submit(one, c) for c in together]:
                future.result()
        # A capture sees every packet on its interface: it runs once the other
        # checks are done, one at a time, so that it sees only its own.
        for check in self.scenario.checks:
            if check.kind in ALONE:
                one(check)
        return found

    def versions(self, slot: str) -> dict[str, str]:
        """The Docker and kernel versions a check's conditions compare with."""
        facts = self.facts.get(slot, {})
        docker = facts.get("docker") or self.facts.get("host1", {}).get("docker")
        return {"docker": docker or "", "kernel": facts.get("kernel") or ""}

    def observe(self, check: Check, versions: dict[str, str]) -> Observation:
        """Run one check, retrying a mismatch up to ``check.retries`` times."""
        rendered = render_check(check, self.context)
        expectation = rendered.expectation(versions)
        records: list[CommandRecord] = []
        attempts = 1 + max(0, check.retries)
        for attempt in range(attempts):
            try:
                observation = OBSERVERS[check.kind](self, rendered, expectation.value)
            except ConnectionFailed as exc:
                self._fault(
                    check.node,
                    f"{check.node} cannot be reached over SSH ({exc.message})",
                )
                observation = Observation("not run", None, message=exc.message)
                break
            except LabError as exc:
                # Output the check cannot read: nothing was observed.
                observation = Observation("error", None, message=exc.message)
            except Exception as exc:  # noqa: BLE001 - recorded, never hidden
                # The Docker SDK and paramiko raise their own kinds; the check
                # records what went wrong instead of ending the run.
                observation = Observation(
                    "error", None, message=f"{type(exc).__name__}: {exc}"
                )
            records += observation.records
            if observation.matched or expectation.negative:
                break
            if attempt + 1 < attempts:
                time.sleep(RETRY_PAUSE)
        observation.records = records
        observation.evidence["attempts"] = attempt + 1
        if expectation.when:
            observation.evidence["condition"] = expectation.when
        return observation

    # Decisions -----------------------------------------------------------

    def decide(self, found: dict, stopped: str | None = None) -> list[CheckResult]:
        """Outcomes and verdicts, once every observation is in. ``stopped``
        says why no check ran, when a step failed: each is skipped."""
        outcomes: dict[str, str] = {}
        results: list[CheckResult] = []
        # Positive controls first: a negative check's outcome depends on them.
        order = sorted(self.scenario.checks, key=lambda c: c.negative)
        for check in order:
            _, observation, started, duration = found[check.id]
            versions = self.versions(check.node)
            expectation = (
                check.expectation(versions)
                if check.applies(versions) and not stopped
                else None
            )
            healthy = not any(n in self.unhealthy for n in check.nodes)
            if observation is None:
                outcome = SKIPPED
            else:
                control = outcomes.get(check.control) if check.control else None
                outcome = verdict.outcome_of(
                    check,
                    observation.matched,
                    control,
                    healthy,
                    expectation=expectation,
                )
            outcomes[check.id] = outcome
            observed = observation.observed if observation else "skipped"
            evidence = dict(observation.evidence) if observation else {}
            reason = check.reason
            if stopped:
                reason = stopped
            elif observation is None:
                reason = (
                    f"skipped: {check.when or 'no expectation'} applies not here "
                    f"(docker {versions['docker']}, kernel {versions['kernel']})"
                )
            message = observation.message if observation else ""
            if not healthy:
                message = "; ".join(
                    self.unhealthy[n] for n in check.nodes if n in self.unhealthy
                )
            elif outcome == LAB_FAULT and check.control:
                message = f"its positive control {check.control} did not pass"
            if check.control:
                control_check = next(
                    (c for c in self.scenario.checks if c.id == check.control), None
                )
                evidence["control"] = {
                    "id": check.control,
                    "title": control_check.title if control_check else "",
                    "outcome": outcomes.get(check.control),
                }
            results.append(
                CheckResult(
                    id=check.id,
                    kind=check.kind,
                    title=check.title,
                    source=check.source,
                    target=render_check(check, self.context).target,
                    expected=expectation.describe() if expectation else "skipped",
                    observed=observed,
                    outcome=outcome,
                    verdict=verdict.verdict_of(check, outcome, observed),
                    claim=check.claim,
                    reason=reason,
                    condition=expectation.when if expectation else check.when,
                    control=check.control,
                    message=message,
                    evidence=evidence,
                    records=observation.records if observation else [],
                    attempts=evidence.get("attempts", 0),
                    started=started,
                    duration=duration,
                )
            )
        index = {c.id: i for i, c in enumerate(self.scenario.checks)}
        results.sort(key=lambda r: index[r.id])
        return results

    # Topology ------------------------------------------------------------

    def topology(self) -> tuple[list[TopologyContainer], list[TopologyNetwork]]:
        """The containers and Docker networks standing now, via the SDK."""
        containers: list[TopologyContainer] = []
        networks: list[TopologyNetwork] = []
        for slot in DOCKER_HOSTS:
            if slot in self.unhealthy:
                continue
            try:
                found = self._standing(slot)
            except Exception as exc:  # noqa: BLE001 - the picture is optional
                console.warn(f"cannot read what stands on {slot}: {exc}")
                continue
            containers += found[0]
            networks += found[1]
        return containers, networks

    def _standing(
        self, slot: str
    ) -> tuple[list[TopologyContainer], list[TopologyNetwork]]:
        """What stands on one Docker host, read with the SDK."""
        containers: list[TopologyContainer] = []
        networks: list[TopologyNetwork] = []
        client = self.sessions[slot].docker(self.lab.dir)
        for net in client.networks.list():
            attrs = net.attrs
            if attrs.get("Name") in ("bridge", "host", "none"):
                continue
            options = attrs.get("Options") or {}
            ipam = (attrs.get("IPAM") or {}).get("Config") or []
            networks.append(
                TopologyNetwork(
                    name=attrs["Name"],
                    node=slot,
                    driver=attrs.get("Driver", ""),
                    parent=options.get("parent"),
                    subnets=[c.get("Subnet", "") for c in ipam],
                    mode=options.get("ipvlan_mode") or options.get("macvlan_mode"),
                )
            )
        for container in client.containers.list(all=True):
            nets = container.attrs["NetworkSettings"]["Networks"] or {}
            for net_name, net in nets.items():
                containers.append(
                    TopologyContainer(
                        name=container.name,
                        node=slot,
                        network=net_name,
                        address=net.get("IPAddress") or None,
                        mac=net.get("MacAddress") or None,
                    )
                )
        return containers, networks


# Observers: one function per check kind -----------------------------------


def _not_run(slot: str, command: str, why: str) -> CommandRecord:
    return CommandRecord(
        node=slot,
        command=command,
        exit_status=None,
        stderr=f"not run: {why}",
        started=now(),
    )


def _exec(container: str | None, command: str) -> str:
    if container:
        return f"docker exec {shlex.quote(container)} {command}"
    return command


def observe_ping(sr: ScenarioRun, check: Check, expected: str) -> Observation:
    """ping from a container or a node; reachable when any reply came."""
    target = check.params["to"]
    ping = f"ping -c 1 -W {PING_WAIT} {shlex.quote(target)}"
    record = sr.run_on(check.node, _exec(check.container, ping), check.timeout)
    if record.exit_status is None:
        return Observation("not finished", None, [record], message=_unfinished(record))
    parsed = parsing.parse_ping(record.stdout + record.stderr)
    observed = parsed.observed
    observation = Observation(observed, observed == expected, [record])
    observation.evidence["ping"] = (record.stdout + record.stderr).strip()
    if parsed.problem:
        observation.message = parsed.problem
    if observed == "unreachable":
        neigh = sr.run_on(check.node, _exec(check.container, "ip neigh show"), 20)
        observation.records.append(neigh)
        observation.evidence["neighbours"] = neigh.stdout.strip()
    return observation


def observe_resolve(sr: ScenarioRun, check: Check, expected: str) -> Observation:
    """nslookup from a container against Docker's embedded DNS server."""
    name = check.params["name"]
    server = check.params.get("server") or "127.0.0.11"
    command = f"nslookup {shlex.quote(name)} {shlex.quote(server)}"
    record = sr.run_on(check.node, _exec(check.container, command), check.timeout)
    parsed = parsing.parse_nslookup(record.stdout + record.stderr)
    observed = parsed.observed
    matched: bool | None = observed == expected
    wanted = check.params.get("address")
    if matched and wanted and wanted not in parsed.addresses:
        matched = False
    unanswered = observed == "no-answer" and expected != "no-answer"
    if record.exit_status is None or unanswered:
        # nslookup did not finish, or no server answered where an answer was
        # expected: nothing was learnt about the name.
        matched = None
    observation = Observation(observed, matched, [record])
    observation.evidence["answer"] = (record.stdout + record.stderr).strip()
    if parsed.addresses:
        observation.message = ", ".join(parsed.addresses)
    return observation


def observe_command(sr: ScenarioRun, check: Check, expected: dict) -> Observation:
    """A command's exit status and output."""
    record = sr.run_on(check.node, check.params["run"], check.timeout)
    if record.exit_status is None:
        return Observation("not finished", None, [record], message=_unfinished(record))
    problems = command_mismatches(record, expected)
    observed = f"exit {record.exit_status}"
    return Observation(observed, not problems, [record], message="; ".join(problems))


def _unfinished(record: CommandRecord) -> str:
    return (record.stderr.strip().splitlines() or ["did not finish"])[-1]


def command_mismatches(record: CommandRecord, expected: dict) -> list[str]:
    """What of ``expected`` (exit, stdout, stderr, output) the record misses."""
    problems = []
    want = expected.get("exit")
    status = record.exit_status
    if want is not None:
        if want == "nonzero":
            if status == 0 or status is None:
                problems.append(f"exit {status}, expected a non-zero exit")
        elif status != int(want):
            problems.append(f"exit {status}, expected {want}")
    texts = {
        "stdout": record.stdout,
        "stderr": record.stderr,
        "output": record.stdout + record.stderr,
    }
    for key, text in texts.items():
        if key in expected and str(expected[key]) not in text:
            problems.append(f"{key} lacks {expected[key]!r}")
    return problems


def observe_docker_network(
    sr: ScenarioRun, check: Check, expected: dict
) -> Observation:
    """A Docker network's driver, mode, parent, subnet and gateway (SDK)."""
    import docker.errors

    client = sr.sessions[check.node].docker(sr.lab.dir)
    name = check.params["network"]
    try:
        attrs = client.networks.get(name).attrs
    except docker.errors.NotFound:
        return Observation("absent", False, message=f"no network {name}")
    network = parsing.network_of(attrs)
    seen = {
        "driver": network.driver,
        "mode": network.mode,
        "parent": network.parent,
        "subnet": network.subnets,
        "gateway": network.gateways,
    }
    problems = []
    for key, want in expected.items():
        have = seen[key]
        ok = str(want) in have if isinstance(have, list) else str(want) == str(have)
        if not ok:
            problems.append(f"{key} is {have}, expected {want}")
    observed = ", ".join(f"{k}={seen[k]}" for k in expected)
    return Observation(
        observed, not problems, evidence={"network": seen}, message="; ".join(problems)
    )


def observe_docker_container(
    sr: ScenarioRun, check: Check, expected: dict
) -> Observation:
    """A container's address (SDK) and the MAC of its eth0 (read inside it)."""
    import docker.errors

    client = sr.sessions[check.node].docker(sr.lab.dir)
    name = check.params["container"]
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        return Observation("absent", False, message=f"no container {name}")
    found = parsing.container_of(container.attrs)
    addresses = [address for address, _ in found.networks.values() if address]
    seen: dict[str, Any] = {"address": addresses[0] if addresses else None}
    if "mac" in expected:
        code, output = container.exec_run("cat /sys/class/net/eth0/address")
        seen["mac"] = output.decode().strip() if code == 0 else None
        seen["docker_mac"] = [mac for _, mac in found.networks.values()]
    problems = [
        f"{key} is {seen.get(key)}, expected {want}"
        for key, want in expected.items()
        if str(seen.get(key) or "").lower() != str(want).lower()
    ]
    observed = ", ".join(f"{k}={seen.get(k)}" for k in expected)
    return Observation(
        observed,
        not problems,
        evidence={"container": seen},
        message="; ".join(problems),
    )


def observe_neighbours(sr: ScenarioRun, check: Check, expected: dict) -> Observation:
    """A node's neighbour table on an interface (its lab NIC unless the check
    names another, e.g. a VLAN link), after optional trigger pings."""
    records = []
    nic = check.params.get("interface") or sr.facts[check.node]["nic"]
    triggers = check.params.get("trigger") or []
    if triggers:
        pings = "; ".join(
            f"ping -c 1 -W 1 {shlex.quote(t)} >/dev/null" for t in triggers
        )
        records.append(sr.run_on(check.node, pings + "; true", check.timeout))
    record = sr.run_on(
        check.node, f"ip -j neigh show dev {shlex.quote(nic)}", check.timeout
    )
    records.append(record)
    table = parsing.parse_neighbours(record.stdout)
    problems = []
    same = expected.get("same_mac") or []
    if same:
        macs = {address: table.get(address) for address in same}
        distinct = {m for m in macs.values() if m}
        if None in macs.values():
            problems.append(
                "no entry for " + ", ".join(a for a, m in macs.items() if m is None)
            )
        if len(distinct) > 1:
            problems.append(f"{len(distinct)} different MACs: {macs}")
        if "mac" in expected and distinct and distinct != {expected["mac"].lower()}:
            problems.append(
                f"the MAC is {sorted(distinct)}, expected {expected['mac']}"
            )
    for address, mac in (expected.get("entries") or {}).items():
        if (table.get(address) or "").lower() != str(mac).lower():
            problems.append(f"{address} is at {table.get(address)}, expected {mac}")
    observed = ", ".join(
        f"{a}={table.get(a)}" for a in (same or list(expected.get("entries") or {}))
    )
    return Observation(
        observed, not problems, records, {"neighbours": table}, "; ".join(problems)
    )


def observe_capture(sr: ScenarioRun, check: Check, expected: dict) -> Observation:
    """tcpdump on a node while something else happens on the lab."""
    interface = check.params["interface"]
    filt = check.params.get("filter") or ""
    seconds = max(6, int(check.timeout) - 4)
    capture = (
        f"sudo -n timeout {seconds} tcpdump -l -nn -e -c 4 -i "
        f"{shlex.quote(interface)} {shlex.quote(filt) if filt else ''}"
    )
    holder: dict[str, CommandRecord] = {}

    def listen() -> None:
        holder["capture"] = sr.run_on(check.node, capture, check.timeout)

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(2.5)  # tcpdump needs a moment to open the interface
    records = []
    during = check.params.get("during")
    if during:
        if during.get("ping"):
            action = f"ping -c 3 -W 1 {shlex.quote(during['ping'])}"
        else:
            action = during["run"]
        command = _exec(during.get("container"), action)
        records.append(sr.run_on(during["node"], command, check.timeout))
    listener.join()
    record = holder["capture"]
    records.insert(0, record)
    captured = parsing.parse_capture(record.stdout + record.stderr)
    lines = captured.packets
    # tcpdump ends by itself after 4 packets (exit 0) or at the time limit
    # (124); anything else, or no "listening on", means it never captured.
    if record.exit_status not in (0, 124) or "listening on" not in record.stderr:
        said = (record.stderr.strip().splitlines() or ["no output"])[-1]
        return Observation(
            "no capture", None, records, message=f"tcpdump did not capture: {said}"
        )
    if during and records[-1].exit_status is None:
        return Observation(
            "no capture",
            None,
            records,
            message="what the capture waits for did not run: "
            + _unfinished(records[-1]),
        )
    problems = []
    if "contains" in expected and not captured.contains(str(expected["contains"])):
        problems.append(f"no captured packet shows {expected['contains']!r}")
    if expected.get("absent") and lines:
        problems.append(f"{len(lines)} packets captured, expected none")
    observed = f"{len(lines)} packets"
    return Observation(
        observed,
        not problems,
        records,
        {"capture": record.stdout.strip()},
        "; ".join(problems),
    )


#: Kinds whose checks run alone, after the others.
ALONE = ("capture",)

OBSERVERS = {
    "ping": observe_ping,
    "resolve": observe_resolve,
    "command": observe_command,
    "docker-network": observe_docker_network,
    "docker-container": observe_docker_container,
    "neighbours": observe_neighbours,
    "capture": observe_capture,
}
