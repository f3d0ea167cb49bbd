"""The declared fleet of the reliability tests: ``reconciler.sandbox.fleet_repo`` (the builder the
benchmarks use too) writes it into a real git repository in a temp dir, pointing at a running sandbox;
this module runs the real ``reconcile`` on it and reads the sandbox back for the assertions every test in
this package makes (nothing created twice, nothing sent twice).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reconciler.sandbox import fleet_repo
from reconciler.sandbox.fleet_repo import SANDBOX_SECRETS, SIMULATORS, Endpoints, FleetSpec, Window
from reconciler.sandbox.run import RunningSandbox
from reconciler.sandbox.testing import SandboxControls

__all__ = ["SANDBOX_SECRETS", "SIMULATORS", "Duplicates", "Fleet", "FleetSpec", "duplicates", "environment", "iot_campaigns",
           "reconcile_command", "rewrite_windows", "run_reconcile", "sent_numbers", "spec", "write_fleet"]

#: the tests' default: an IoT fleet of 10 campaigns x 50 gateways, nothing else (tests add what they need)
RELIABILITY_FLEET = FleetSpec(iot_campaigns=10, gateways_per_campaign=50, yate_campaigns=0, sms_recipients=0,
                              ogangi_recipients=0)


def spec(**sizes: Any) -> FleetSpec:
    """``RELIABILITY_FLEET`` with some sizes changed (``iot_campaigns=2, sms_recipients=60`` ...)."""
    return replace(RELIABILITY_FLEET, **sizes)


@dataclass(frozen=True)
class Fleet:
    root: Path  # the repository (git work tree)
    decl: Path  # the folder of YAML files
    spec: FleetSpec
    campaign_names: tuple[str, ...]
    gateways: dict[str, tuple[str, ...]] = field(default_factory=dict)  # IoT campaign -> declared gateways
    store: str | None = None  # the state store's URL; None: SQLite under .reconciler/

    @property
    def windows(self) -> tuple[Window, Window]:
        """(download, activation) of every IoT campaign, as now declared."""
        return self.spec.windows

    @property
    def state_url(self) -> str:
        return self.store or f"sqlite:///{self.root}/.reconciler/state.db"

    @property
    def state_dir(self) -> Path:
        return self.root / ".reconciler"


def write_fleet(root: Path, sandbox: RunningSandbox, spec: FleetSpec, *, store: str | None = None) -> Fleet:
    """A git repository at ``root`` declaring ``spec`` against ``sandbox`` (the SMS gateway trusted by its CA)."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    endpoints = Endpoints({name: sandbox.url(name) for name in SIMULATORS}, gateway_ca_file=sandbox.tls.ca_file)
    repo = fleet_repo.write_fleet(spec, root, endpoints)
    return Fleet(repo.root, repo.decl, repo.spec, repo.campaign_names, dict(repo.gateways), store=store)


def rewrite_windows(fleet: Fleet, days: int) -> Fleet:
    """Move the windows of every declared IoT campaign ``days`` days later (every gateway is rescheduled)."""
    return replace(fleet, spec=fleet_repo.rewrite_windows(fleet.decl, fleet.spec, days))


# --- running the real command ---------------------------------------------------------------------


def environment(secrets: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **SANDBOX_SECRETS, **(secrets or {}), "NO_COLOR": "1"}


def reconcile_command(fleet: Fleet, *args: str) -> list[str]:
    # a new store and Ogangi, which cannot be asked what it sent: the operator's yes, as after a fresh sandbox
    return [sys.executable, "-m", "reconciler", *args, str(fleet.decl), "--state", fleet.state_url,
            "--risk-duplicate-sms"]


def run_reconcile(fleet: Fleet, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(reconcile_command(fleet, *args), cwd=fleet.root, env=environment(), capture_output=True,
                          text=True, timeout=timeout)


# --- the sandbox, read back -----------------------------------------------------------------------


@dataclass(frozen=True)
class Duplicates:
    """Everything the sandbox holds more than once, each with its count; empty when all is well."""

    campaigns: dict[str, int]  # IoT campaign names
    gateways: dict[str, int]  # gateway ids present in more than one campaign (or twice in one)
    packages: dict[str, int]  # package (program) names
    sms_gateway: dict[str, int]  # numbers sent to more than once by the SMS gateway
    ogangi: dict[str, int]  # numbers sent to more than once through Ogangi

    @property
    def total(self) -> int:
        return sum(n - 1 for part in (self.campaigns, self.gateways, self.packages, self.sms_gateway, self.ogangi)
                   for n in part.values())


def _over_one(counter: Counter[str]) -> dict[str, int]:
    return {key: n for key, n in sorted(counter.items()) if n > 1}


def duplicates(sandbox: RunningSandbox) -> Duplicates:
    iot = SandboxControls.of(sandbox)["iot-campaigns"].state()
    gateways: Counter[str] = Counter(g["gatewayId"] for c in iot["campaigns"] for g in c["gateways"])
    return Duplicates(
        campaigns=_over_one(Counter(c["name"] for c in iot["campaigns"])),
        gateways=_over_one(gateways),
        packages=_over_one(Counter(p["name"] for p in iot["packages"])),
        sms_gateway=_over_one(sent_numbers(sandbox, "sms-gateway")),
        ogangi=_over_one(sent_numbers(sandbox, "ogangi")),
    )


def sent_numbers(sandbox: RunningSandbox, name: str) -> Counter[str]:
    key = "number" if name == "sms-gateway" else "to"
    messages = SandboxControls.of(sandbox)[name].state()["messages"]
    return Counter(str(m[key]).strip().lstrip("+") for m in messages)


def iot_campaigns(sandbox: RunningSandbox) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in SandboxControls.of(sandbox)["iot-campaigns"].state()["campaigns"]}
