"""``python -m ipvlan_lab vagrant-settings``: what the Vagrantfile reads.

The Vagrantfile holds the machines' definition; their values come from here,
so that ``lab.yaml`` is validated in one place. The provider is the one the
lab chose (``IPVLAN_LAB_PROVIDER``, set when the lab calls Vagrant), or, when
Vagrant is run by hand, the one :func:`~ipvlan_lab.providers.choose` picks.
"""

from __future__ import annotations

import json
import os
import sys

from . import config as lab_config
from .errors import LabError
from .providers import PROVIDERS, choose

PROVIDER_ENV = "IPVLAN_LAB_PROVIDER"


def vagrant_settings() -> dict:
    """The configuration plus the provider's own values, as one mapping."""
    config = lab_config.load()
    chosen = os.environ.get(PROVIDER_ENV)
    if chosen in PROVIDERS:
        # The lab checked this provider before calling Vagrant.
        provider = PROVIDERS[chosen](config)
    else:
        provider = choose(config).provider
    return {**config.data, **provider.vagrant_settings()}


def main(argv: list[str]) -> int:
    """Print the Vagrantfile's settings as JSON; errors go to stderr."""
    if argv != ["vagrant-settings"]:
        print("usage: python -m ipvlan_lab vagrant-settings", file=sys.stderr)
        return 2
    try:
        print(json.dumps(vagrant_settings()))
    except LabError as exc:
        print(f"ipvlan-lab: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
