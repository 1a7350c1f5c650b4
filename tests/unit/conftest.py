"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ipvlan_lab import templates

SCENARIO_DATA = Path(__file__).parent / "data" / "scenarios"


@pytest.fixture
def context() -> dict:
    """A template context like the lab's, from data/scenarios/context.yaml."""
    data = yaml.safe_load((SCENARIO_DATA / "context.yaml").read_text())
    data["lab"]["ip"] = templates.Hosts(data["lab"]["subnet"])
    data["vlan"]["ip"] = templates.Hosts(data["vlan"]["subnet"])
    data["vlan"]["host_ip"] = templates.Hosts(data["vlan"]["host_subnet"])
    return data
