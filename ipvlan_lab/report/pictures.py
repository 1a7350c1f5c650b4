"""The report's two pictures, drawn with matplotlib (Agg) as PNG bytes.

* The **reachability matrix** of a scenario: its ping checks laid out with
  the sources (containers or nodes) as rows and the targets as columns, each
  cell coloured by what was observed and marked with ``!`` and a thick
  border where that differs from what the document says.
* The **topology** of a scenario: the nodes on the lab segment with their
  lab NIC and address, the VLAN where a network rides on one, and the Docker
  networks and containers the scenario left standing.

The data behind the matrix (:func:`reachability`) is kept apart from its
drawing so that it can be tested without looking at pixels.
"""

from __future__ import annotations

import base64
import io
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..results import (
    LAB_FAULT,
    REFUTED,
    SKIPPED,
    CheckResult,
    Environment,
    RunResult,
    ScenarioResult,
    TopologyContainer,
    TopologyNetwork,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# NOTE: matplotlib is imported where a picture is drawn, not here: it takes
# over half a second, and every `invoke` command imports the report.

#: Check kinds whose source and target make a cell of the matrix.
PING_KINDS = frozenset({"ping"})

REACHABLE, UNREACHABLE, OTHER = "reachable", "unreachable", "other"

#: Cell states in the order the legend lists them, with their colours.
STATE_COLOURS = {
    REACHABLE: "#b7e4c7",
    UNREACHABLE: "#d3dce6",
    LAB_FAULT: "#e7c6ef",
    SKIPPED: "#f4f4f4",
    OTHER: "#fff3bf",
}
#: The mark of a cell whose observation differs from the document.
DIFFERS_COLOUR = "#c2410c"
INK = "#1f2933"
MUTED = "#52606d"

_DPI = 110


@dataclass
class Picture:
    """A picture of the report: its id, its file name and its PNG bytes."""

    id: str
    alt: str
    png: bytes

    @property
    def filename(self) -> str:
        """The PNG's file name beside ``report.md``."""
        return f"{self.id}.png"

    @property
    def data_uri(self) -> str:
        """The PNG as a ``data:`` URI, for a self-contained HTML file."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class ScenarioPictures:
    """The pictures of one scenario; either may be missing."""

    topology: Picture | None = None
    matrix: Picture | None = None

    def all(self) -> list[Picture]:
        """The pictures that exist, topology first."""
        return [p for p in (self.topology, self.matrix) if p is not None]


@dataclass
class Cell:
    """The ping checks from one source to one target."""

    checks: list[CheckResult] = field(default_factory=list)

    @property
    def check(self) -> CheckResult:
        """The check the cell shows: a refuting one first, then a lab fault."""

        def rank(check: CheckResult) -> int:
            if check.verdict == REFUTED:
                return 0
            return {LAB_FAULT: 1, "fail": 2, "pass": 3}.get(check.outcome, 4)

        return min(self.checks, key=rank)

    @property
    def state(self) -> str:
        """What the cell shows as observed (one of :data:`STATE_COLOURS`)."""
        return cell_state(self.check)

    @property
    def differs(self) -> bool:
        """Whether any of the cell's checks saw other than the document says."""
        return any(c.verdict == REFUTED for c in self.checks)


@dataclass
class Matrix:
    """A scenario's ping checks as a grid of sources by targets."""

    scenario: str
    title: str
    sources: list[str]
    targets: list[str]
    cells: dict[tuple[str, str], Cell]
    source_labels: dict[str, str]
    target_labels: dict[str, str]

    def cell(self, source: str, target: str) -> Cell | None:
        """The cell of *source* and *target*, or ``None`` when nothing ran."""
        return self.cells.get((source, target))


def cell_state(check: CheckResult) -> str:
    """What a ping check shows in the matrix.

    A lab fault or a skip wins over the observed value, which then means
    nothing; otherwise the observed ``reachable`` or ``unreachable``, and
    :data:`OTHER` for any other observation.
    """
    if check.outcome in (LAB_FAULT, SKIPPED):
        return check.outcome
    if check.observed in (REACHABLE, UNREACHABLE):
        return check.observed
    return OTHER


def slug(text: str) -> str:
    """*text* made safe for a file name and an HTML id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "scenario"


def _names(scenario: ScenarioResult, environment: Environment) -> dict[str, str]:
    """Known addresses, each mapped to the container or node that holds it."""
    names: dict[str, str] = {}
    for node in environment.nodes:
        names[node.address] = node.name
        if node.vlan_address:
            names[node.vlan_address] = f"{node.name} VLAN"
    for container in scenario.containers:
        if container.address:
            names[container.address] = container.name
    return names


def reachability(scenario: ScenarioResult, environment: Environment) -> Matrix | None:
    """The matrix of a scenario's ping checks, or ``None`` when it has none.

    Rows and columns keep the order in which the checks ran.
    """
    pings = [c for c in scenario.checks if c.kind in PING_KINDS and c.target]
    if not pings:
        return None

    cells: dict[tuple[str, str], Cell] = {}
    sources: list[str] = []
    targets: list[str] = []
    for check in pings:
        target = check.target or ""
        if check.source not in sources:
            sources.append(check.source)
        if target not in targets:
            targets.append(target)
        cells.setdefault((check.source, target), Cell()).checks.append(check)

    homes = {c.name: c.node for c in scenario.containers}
    nodes = {n.name for n in environment.nodes}
    source_labels = {}
    for source in sources:
        if source in homes:
            source_labels[source] = f"{source}\non {homes[source]}"
        elif source in nodes:
            source_labels[source] = f"{source}\n(the host)"
        else:
            source_labels[source] = source
    names = _names(scenario, environment)
    target_labels = {}
    for target in targets:
        if target in names:
            target_labels[target] = f"{target}\n{names[target]}"
        elif target in homes or target in nodes:
            target_labels[target] = f"{target}\n(by name)"
        else:
            target_labels[target] = target

    return Matrix(
        scenario=scenario.name,
        title=scenario.title or scenario.name,
        sources=sources,
        targets=targets,
        cells=cells,
        source_labels=source_labels,
        target_labels=target_labels,
    )


def _png(figure: Figure) -> bytes:
    """The figure as PNG bytes, with no time stamp or version inside."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(
        buffer,
        format="png",
        dpi=_DPI,
        bbox_inches="tight",
        pad_inches=0.15,
        facecolor="white",
        metadata={"Software": None},
    )
    return buffer.getvalue()


def _second_line(check: CheckResult) -> str:
    """The small words under a cell's state: how it stands against the document."""
    if check.verdict == REFUTED:
        says = check.claim.says if check.claim else ""
        return "\n".join(textwrap.wrap(f"document: {says}", 24)[:2])
    if check.outcome == LAB_FAULT:
        return "not settled"
    if check.outcome == SKIPPED:
        return "not run"
    if check.verdict is None:
        return "no claim"
    return "as documented"


_CENTRED = {"ha": "center", "va": "center"}
_STATE_TEXT = {"fontsize": 8.5, "color": INK, "weight": "bold", **_CENTRED}
_SMALL_TEXT = {"fontsize": 6.5, "color": MUTED, "linespacing": 1.1, **_CENTRED}
_BADGE = {"boxstyle": "circle,pad=0.2", "facecolor": DIFFERS_COLOUR, "lw": 0}
_BADGE_TEXT = {"fontsize": 9, "weight": "bold", "color": "white", **_CENTRED}


def _draw_cell(ax, x: int, y: int, cell: Cell | None) -> None:
    """One cell of the matrix, its top left corner at (*x*, *y*)."""
    from matplotlib.patches import Rectangle

    if cell is None:
        ax.add_patch(Rectangle((x, y), 1, 1, facecolor="white", edgecolor="#d9dee3"))
        return

    state, check = cell.state, cell.check
    face = STATE_COLOURS[state]
    ax.add_patch(Rectangle((x, y), 1, 1, facecolor=face, edgecolor="white", lw=2))
    if state == SKIPPED:
        hatched = Rectangle((x, y), 1, 1, fill=False, hatch="///", lw=0)
        hatched.set_edgecolor("#c8ced6")
        ax.add_patch(hatched)
    ax.text(x + 0.5, y + 0.36, state, **_STATE_TEXT)
    ax.text(x + 0.5, y + 0.7, _second_line(check), **_SMALL_TEXT)
    if len(cell.checks) > 1:
        ax.text(x + 0.2, y + 0.14, f"{len(cell.checks)} checks", **_SMALL_TEXT)
    if cell.differs:
        frame = Rectangle((x + 0.04, y + 0.06), 0.92, 0.88, fill=False, lw=2.6)
        frame.set_edgecolor(DIFFERS_COLOUR)
        ax.add_patch(frame)
        ax.text(x + 0.89, y + 0.22, "!", bbox=_BADGE, **_BADGE_TEXT)


def _legend(ax) -> None:
    """The colours and the mark, under the matrix."""
    from matplotlib.patches import Patch

    handles = []
    for state in (REACHABLE, UNREACHABLE, LAB_FAULT, SKIPPED):
        hatch = "///" if state == SKIPPED else None
        colour = STATE_COLOURS[state]
        handles.append(
            Patch(facecolor=colour, edgecolor="#9aa5b1", hatch=hatch, label=state)
        )
    mark = Patch(facecolor="white", edgecolor=DIFFERS_COLOUR, linewidth=2)
    mark.set_label("! differs from the document")
    handles.append(mark)
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0, -0.02),
        ncol=3,
        fontsize=7.5,
        frameon=False,
        handlelength=1.4,
        columnspacing=1.4,
    )


def draw_matrix(matrix: Matrix) -> bytes:
    """The reachability matrix as a PNG."""
    from matplotlib.figure import Figure

    cols, rows = len(matrix.targets), len(matrix.sources)
    figure = Figure(figsize=(1.6 + cols * 1.3, 1.9 + rows * 0.72))
    ax = figure.add_subplot()
    for i, source in enumerate(matrix.sources):
        for j, target in enumerate(matrix.targets):
            _draw_cell(ax, j, i, matrix.cell(source, target))

    # Targets across the top, sources down the left, like a table.
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.xaxis.tick_top()
    ax.set_xticks([j + 0.5 for j in range(cols)])
    ax.set_xticklabels([matrix.target_labels[t] for t in matrix.targets], fontsize=8)
    ax.set_yticks([i + 0.5 for i in range(rows)])
    ax.set_yticklabels([matrix.source_labels[s] for s in matrix.sources], fontsize=8)
    ax.tick_params(length=0, colors=INK)
    for spine in ax.spines.values():
        spine.set_visible(False)
    title = f"Reachability: {matrix.title}"
    ax.set_title(title, fontsize=10, loc="left", pad=36, color=INK, weight="bold")
    axes = "rows: where the ping ran    columns: what it pinged"
    ax.set_xlabel(axes, fontsize=7.5, color=MUTED, labelpad=40)
    _legend(ax)
    return _png(figure)


# Topology sizes, in inches: the figure is drawn at one data unit per inch.
_CONTAINER_W, _CONTAINER_H, _GAP = 1.6, 0.78, 0.14
_NODE_W, _NODE_H = 2.5, 1.0
_NET_LABEL_H = 0.62
_NET_GAP = 0.32
_VLAN_STEP = 0.55
_NODE_Y = 0.75

_LEFT = {"ha": "left", "va": "center", "zorder": 3}
_NODE_TEXT = {"fontsize": 10, "weight": "bold", "color": INK, **_LEFT}
_NODE_LINES = {"fontsize": 8, "color": INK, "linespacing": 1.5, **_LEFT}
_NET_TEXT = {"fontsize": 8, "weight": "bold", "color": INK, **_LEFT}
_NET_LINE = {"fontsize": 7, "color": MUTED, **_LEFT}
_BOX_NAME = {"fontsize": 8.5, "weight": "bold", "color": INK, **_CENTRED}
_BOX_LINES = {"fontsize": 7, "color": MUTED, "linespacing": 1.35, **_CENTRED}
_WIRE_TEXT = {"fontsize": 7.5, "color": MUTED, "va": "center"}
_VLAN_WIRE = {"color": DIFFERS_COLOUR, "linestyle": (0, (4, 2)), "zorder": 1}
_VLAN_TEXT = {"fontsize": 7.5, "color": DIFFERS_COLOUR, "va": "center"}

_NODE_COLOURS = ("#e4ebf5", "#486581")
_NET_COLOURS = ("#f7f9fc", "#829ab1")
_CONTAINER_COLOURS = ("#fff8e6", "#b88a1c")


def vlan_of(parent: str | None) -> str | None:
    """The VLAN id of a parent named like ``eth1.100``, else ``None``."""
    match = re.fullmatch(r"[^.]+\.(\d+)", parent or "")
    return match.group(1) if match else None


@dataclass
class _Column:
    """What stands on one node: its networks, each with its containers."""

    node: str
    groups: list[tuple[TopologyNetwork, list[TopologyContainer]]]

    @property
    def width(self) -> float:
        """The column's width: its widest box and a margin."""
        return max([_NODE_W] + [_net_width(cs) for _, cs in self.groups]) + 0.5

    @property
    def height(self) -> float:
        """The height of the networks stacked above the node."""
        return sum(_net_height(cs) + _NET_GAP for _, cs in self.groups)

    @property
    def vlans(self) -> dict[str, str]:
        """The VLANs this node's networks ride on, each with its parent."""
        found = {}
        for net, _ in self.groups:
            vlan = vlan_of(net.parent)
            if vlan and vlan not in found:
                found[vlan] = net.parent or ""
        return found


def _net_width(containers: list[TopologyContainer]) -> float:
    return max(len(containers) * (_CONTAINER_W + _GAP) + _GAP, 2.4)


def _net_height(containers: list[TopologyContainer]) -> float:
    return _NET_LABEL_H + (_CONTAINER_H + _GAP if containers else 0.05)


def _columns(scenario: ScenarioResult, environment: Environment) -> list[_Column]:
    """One column per node, in the environment's order, then any other node."""
    order = [n.name for n in environment.nodes]
    for item in [*scenario.networks, *scenario.containers]:
        if item.node not in order:
            order.append(item.node)

    columns = []
    for node in order:
        networks = [n for n in scenario.networks if n.node == node]
        known = {n.name for n in networks}
        for container in scenario.containers:
            # A container on a network the run did not record still shows.
            if container.node == node and container.network not in known:
                known.add(container.network)
                networks.append(TopologyNetwork(container.network, node, "?", None, []))
        on_node = [c for c in scenario.containers if c.node == node]
        groups = [(n, [c for c in on_node if c.network == n.name]) for n in networks]
        columns.append(_Column(node, groups))
    return columns


def _box(ax, x: float, y: float, w: float, h: float, colours, dashed=False) -> None:
    from matplotlib.patches import FancyBboxPatch

    face, edge = colours
    style = "round,pad=0,rounding_size=0.08"
    patch = FancyBboxPatch((x, y), w, h, boxstyle=style, zorder=2, linewidth=1.2)
    patch.set_facecolor(face)
    patch.set_edgecolor(edge)
    patch.set_linestyle("--" if dashed else "-")
    ax.add_patch(patch)


def _net_words(net: TopologyNetwork) -> tuple[str, str]:
    """A network's name line and its detail line."""
    kind = " ".join(w for w in (net.driver, net.mode) if w and w != "?")
    head = f"{net.name}  ({kind})" if kind else net.name
    parts = [f"parent {net.parent}"] if net.parent else []
    parts.extend(net.subnets)
    return head, "  ·  ".join(parts) or "nothing recorded about this network"


def _draw_node(ax, col: _Column, centre: float, facts, vlan_y) -> None:
    """A node's box and its wires down to the segment and its VLANs."""
    nic = facts.nic if facts and facts.nic else "lab NIC"
    ax.plot([centre, centre], [0, _NODE_Y], color=INK, lw=1.4, zorder=1)
    ax.text(centre + 0.07, _NODE_Y / 2, nic, ha="left", **_WIRE_TEXT)
    for k, (vlan, parent) in enumerate(col.vlans.items()):
        x = centre - 0.45 - 0.3 * k
        ax.plot([x, x], [vlan_y[vlan], _NODE_Y], lw=1.4, **_VLAN_WIRE)
        ax.text(x - 0.07, _NODE_Y / 2, parent, ha="right", **_VLAN_TEXT)

    left = centre - _NODE_W / 2
    _box(ax, left, _NODE_Y, _NODE_W, _NODE_H, _NODE_COLOURS)
    role = f"  ({facts.role})" if facts and facts.role else ""
    lines = [f"{nic}  {facts.address}" if facts else "not in the environment"]
    if facts and facts.vlan_address and col.vlans:
        lines.append(f"{next(iter(col.vlans.values()))}  {facts.vlan_address}")
    top = _NODE_Y + _NODE_H
    ax.text(left + 0.14, top - 0.24, col.node + role, **_NODE_TEXT)
    ax.text(left + 0.14, top - 0.62, "\n".join(lines), **_NODE_LINES)


def _draw_networks(ax, col: _Column, centre: float) -> None:
    """A node's networks stacked above it, their containers inside them."""
    y = _NODE_Y + _NODE_H + _NET_GAP
    if col.groups:
        ax.plot([centre, centre], [y - _NET_GAP, y], color=_NODE_COLOURS[1], lw=1.2)
    for net, containers in col.groups:
        width, height = _net_width(containers), _net_height(containers)
        left = centre - width / 2
        _box(ax, left, y, width, height, _NET_COLOURS, dashed=net.driver == "?")
        head, tail = _net_words(net)
        ax.text(left + 0.12, y + height - 0.2, head, **_NET_TEXT)
        ax.text(left + 0.12, y + height - 0.44, tail, **_NET_LINE)
        for k, container in enumerate(containers):
            x = left + _GAP + k * (_CONTAINER_W + _GAP)
            _box(ax, x, y + _GAP, _CONTAINER_W, _CONTAINER_H, _CONTAINER_COLOURS)
            mid = x + _CONTAINER_W / 2
            details = [container.address or "no address", container.mac or ""]
            ax.text(mid, y + _GAP + 0.58, container.name, **_BOX_NAME)
            ax.text(mid, y + _GAP + 0.27, "\n".join(details).strip(), **_BOX_LINES)
        y += height + _NET_GAP


def draw_topology(scenario: ScenarioResult, environment: Environment) -> bytes:
    """The topology of what a scenario left standing, as a PNG."""
    from matplotlib.figure import Figure

    columns = _columns(scenario, environment)
    facts = {n.name: n for n in environment.nodes}
    vlans = sorted({v for col in columns for v in col.vlans}, key=int)

    width = sum(col.width for col in columns) + 0.3
    bottom = -0.45 - _VLAN_STEP * len(vlans)
    top = _NODE_Y + _NODE_H + max((c.height for c in columns), default=0) + 0.55
    figure = Figure(figsize=(width, top - bottom))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(bottom, top)
    ax.axis("off")
    title = f"Topology: {scenario.title or scenario.name}"
    ax.text(0.15, top - 0.28, title, fontsize=10, weight="bold", color=INK)

    # The lab segment and, under it, each VLAN that rides on it.
    ax.plot([0.1, width - 0.1], [0, 0], color=INK, lw=3, zorder=1)
    mode = f" ({environment.network_mode})" if environment.network_mode else ""
    ax.text(0.15, -0.2, f"lab segment{mode}", ha="left", **_WIRE_TEXT)
    vlan_y = {}
    for k, vlan in enumerate(vlans):
        y = vlan_y[vlan] = -_VLAN_STEP * (k + 1)
        ax.plot([0.1, width - 0.1], [y, y], lw=2, **_VLAN_WIRE)
        words = f"VLAN {vlan}: 802.1Q tags on the same segment"
        ax.text(0.15, y - 0.2, words, ha="left", **_VLAN_TEXT)

    x = 0.15
    for col in columns:
        centre = x + col.width / 2
        _draw_node(ax, col, centre, facts.get(col.node), vlan_y)
        _draw_networks(ax, col, centre)
        x += col.width
    return _png(figure)


def scenario_pictures(scenario: ScenarioResult, run: RunResult) -> ScenarioPictures:
    """The topology and the reachability matrix of one scenario.

    The topology is drawn when the scenario left networks or containers; the
    matrix when it has ping checks.
    """
    pictures = ScenarioPictures()
    name = slug(scenario.name)
    title = scenario.title or scenario.name
    if scenario.networks or scenario.containers:
        standing = [
            f"{c.name} {c.address or 'with no address'} on {c.node}"
            for c in scenario.containers
        ] or [f"network {n.name} on {n.node}" for n in scenario.networks]
        pictures.topology = Picture(
            id=f"topology-{name}",
            alt=f"Topology of {title}: {', '.join(standing)}",
            png=draw_topology(scenario, run.environment),
        )
    matrix = reachability(scenario, run.environment)
    if matrix is not None:
        differs = sum(1 for cell in matrix.cells.values() if cell.differs)
        pictures.matrix = Picture(
            id=f"matrix-{name}",
            alt=f"Reachability of {title}: {len(matrix.sources)} sources by "
            f"{len(matrix.targets)} targets, {differs} differing from the document",
            png=draw_matrix(matrix),
        )
    return pictures


def run_pictures(run: RunResult) -> dict[str, ScenarioPictures]:
    """Every scenario's pictures, by scenario name."""
    return {s.name: scenario_pictures(s, run) for s in run.scenarios}


def write_pictures(
    pictures: dict[str, ScenarioPictures], folder: str | os.PathLike[str]
) -> dict[str, Path]:
    """Write every picture as a PNG file into *folder*, by picture id."""
    written = {}
    Path(folder).mkdir(parents=True, exist_ok=True)
    for scenario in pictures.values():
        for picture in scenario.all():
            path = Path(folder) / picture.filename
            path.write_bytes(picture.png)
            written[picture.id] = path
    return written
