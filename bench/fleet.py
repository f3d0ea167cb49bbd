"""The standard fleet of ``measures.md`` for the benchmarks: its sizes on the command line, and its
repository (written by ``reconciler.sandbox.fleet_repo``, which the reliability tests use as well).

Every performance figure is measured against the same declared world, so that figures from different
scripts (and different days) compare. The fleet (parameters adjustable, see ``FleetSpec``):

- IoT campaign manager: 20 campaigns x 100 gateways (``gw-00001`` .., distinct per campaign), 3 packages
  (two for every gateway, one as a per-gateway override for 10% of the gateways), a download and an
  activation window for every gateway;
- YateOTA: 10 campaigns x 1,000 participants, 5% failed, under ``retryFailed``;
- SMS gateway: one campaign, 10,000 recipients on 8 ports; Ogangi: one campaign, 2,000 recipients.
  Neither declares quiet hours or an active period, so both send whatever the time of day;
- every backend ``limits: {concurrency: 16}``, secrets as ``{env: ...}`` (``FLEET_ENV``).

Backends point at a sandbox on ``port_base + 1..4`` (YateOTA, IoT, Ogangi, SMS gateway, as
``reconcile sandbox`` orders them); ``fleet_sandbox.py`` starts the simulators that hold this fleet.

    .venv/bin/python bench/fleet.py --out DIR [--port-base N] [--iot-campaigns 20] [--quick | --large] ...
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

from reconciler.sandbox import fleet_repo
from reconciler.sandbox.fleet_repo import FIRST_YATE_CAMPAIGN, Endpoints, FleetSpec, gateway_ids

__all__ = ["BENCH_DIR", "FIRST_YATE_CAMPAIGN", "FLEET_ENV", "LARGE", "PROJECT_DIR", "PYTHON", "QUICK", "WINDOWS", "FleetSpec",
           "add_spec_arguments", "gateway_ids", "reconcile_env", "spec_arguments", "spec_from", "wait_until",
           "write_fleet", "write_sms_repo"]

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
PYTHON = sys.executable
FLEET_ENV = fleet_repo.SANDBOX_SECRETS
WINDOWS = {"download": fleet_repo.WINDOWS[0], "activation": fleet_repo.WINDOWS[1]}
#: the ``FleetSpec`` fields a benchmark takes on its command line (``--iot-campaigns 20`` ...)
CLI_FIELDS = ("iot_campaigns", "gateways_per_campaign", "override_share", "yate_campaigns", "participants",
              "failed_share", "sms_recipients", "sms_ports", "ogangi_recipients", "concurrency", "ogangi_in_flight")

QUICK = FleetSpec(iot_campaigns=4, gateways_per_campaign=20, yate_campaigns=2, participants=200,
                  sms_recipients=500, ogangi_recipients=50)
#: the large fleet of issue 19 (``growth.py``'s 100k size): 50 IoT campaigns x 2,000 gateways under recurring
#: windows, 10% overrides; 20 YateOTA campaigns x 5,000 participants; 1,000,000 SMS-gateway recipients
LARGE = FleetSpec(iot_campaigns=50, gateways_per_campaign=2_000, recurring_windows=True, yate_campaigns=20,
                  participants=5_000, sms_recipients=1_000_000, ogangi_recipients=0)


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--name`` option per size of the fleet (``CLI_FIELDS``, dashes for underscores)."""
    for item in fields(FleetSpec):
        if item.name in CLI_FIELDS:
            parser.add_argument(f"--{item.name.replace('_', '-')}", type=type(item.default), default=None,
                                help=f"default {item.default}")


def spec_from(args: argparse.Namespace, *, quick: bool = False) -> FleetSpec:
    chosen = {name: getattr(args, name) for name in CLI_FIELDS if getattr(args, name, None) is not None}
    return replace(QUICK if quick else FleetSpec(), **chosen)


# --- the repository ------------------------------------------------------------------------------


def write_fleet(spec: FleetSpec, out: Path, *, port_base: int) -> Path:
    """Write the fleet's repository under ``out`` (created), its Backends on ``port_base + 1..4``; returns
    its ``campaigns.d``."""
    return fleet_repo.write_fleet(spec, out, Endpoints.on_ports(port_base)).decl


def write_sms_repo(out: Path, *, recipients: int, ports: int, port_base: int) -> Path:
    """A repository with only the SMS gateway and one campaign of ``recipients`` (the 1M-recipient case)."""
    spec = FleetSpec(iot_campaigns=0, yate_campaigns=0, ogangi_recipients=0, sms_recipients=recipients,
                     sms_ports=ports)
    return write_fleet(spec, out, port_base=port_base)


def spec_arguments(spec: FleetSpec) -> list[str]:
    """The command-line options that reproduce ``spec``'s sizes."""
    return [arg for name in CLI_FIELDS for arg in (f"--{name.replace('_', '-')}", str(getattr(spec, name)))]


def reconcile_env() -> dict[str, str]:
    """The environment a reconciler run of the fleet needs: its secrets, quiet logs, and bytecode caching
    (an installed tool starts from compiled modules; ``PYTHONDONTWRITEBYTECODE``, set on some machines,
    would charge every run with compiling the reconciler again)."""
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**inherited, **FLEET_ENV, "RECONCILE_LOG_LEVEL": "warning", "NO_COLOR": "1"}


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.01) -> bool:
    """Poll ``check()`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="write the repository here")
    parser.add_argument("--port-base", type=int, default=18700)
    parser.add_argument("--quick", action="store_true", help="a small fleet")
    parser.add_argument("--large", action="store_true", help="the large fleet (LARGE: 100,000 gateways)")
    add_spec_arguments(parser)
    args = parser.parse_args()
    spec = replace(LARGE, **{n: getattr(args, n) for n in CLI_FIELDS if getattr(args, n) is not None}) \
        if args.large else spec_from(args, quick=args.quick)
    print(write_fleet(spec, args.out, port_base=args.port_base))


if __name__ == "__main__":
    main()
