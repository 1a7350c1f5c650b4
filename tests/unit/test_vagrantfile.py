"""The Vagrantfile parses for every provider and network mode (no VM made)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not shutil.which("vagrant"), reason="no vagrant")


def validate(tmp_path, provider: str, config: str) -> subprocess.CompletedProcess:
    path = tmp_path / "lab.yaml"
    path.write_text(config)
    env = dict(
        os.environ,
        IPVLAN_LAB_CONFIG=str(path),
        IPVLAN_LAB_PROVIDER=provider,
        IPVLAN_LAB_PYTHON=sys.executable,
        VAGRANT_DEFAULT_PROVIDER="virtualbox"
        if provider == "virtualbox"
        else "libvirt",
        VAGRANT_CHECKPOINT_DISABLE="1",
    )
    return subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("provider", ["virtualbox", "libvirt-kvm", "libvirt-qemu"])
@pytest.mark.parametrize(
    "config",
    ["{}\n", "network: {mode: bridged, adapter: enp3s0}\n"],
    ids=["isolated", "bridged"],
)
def test_vagrantfile_validates(tmp_path, provider, config):
    result = validate(tmp_path, provider, config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validated successfully" in result.stdout


def test_a_bad_configuration_stops_vagrant_with_the_labs_message(tmp_path):
    result = validate(tmp_path, "libvirt-qemu", "vlan: {id: 5000}\n")
    assert result.returncode != 0
    assert "vlan.id is 5000; expected a whole number from 1 to 4094" in result.stderr
