"""Crash recovery of the OTA loop: a real ``reconcile`` process applying an IoT fleet (campaigns, gateways,
per-gateway package overrides, download and activation windows, packages) is killed with SIGKILL at
seeded random moments and restarted. Before each restart the declared fleet changes (one more campaign
with a new package appears; in the long version every window also moves a day), so every run has creates,
uploads and schedule writes in flight when the kill lands.

After a final run: no campaign created twice, no gateway added twice, no package uploaded twice, every
gateway where it is declared with its windows, and ``--dry-run --detailed-exitcode`` exits 0. Fast: 3
kills; slow: 20 kills. (SMS crash tests, fast and slow, live in ``tests/engine/test_crash_recovery.py``.)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest

from reconciler.sandbox.fleet_repo import gateway_id, package_names
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.engine.crash import CrashRun
from tests.engine.sandbox_repo import write_requests
from tests.reliability import fleet as fl
from tests.reliability.figures import record

GROWTH_GATEWAYS = 20
LATENCY_MS = 40  # every run must outlast its kill: ~2,000 schedule writes at 16 in flight take 5 s


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=2000, seed=7)) as running:
        yield running


@dataclass
class KillLog(CrashRun):
    mid_apply: int = 0  # kills after which the backend had changed (the process was writing)



def generation_yaml(fleet: fl.Fleet, generation: int) -> str:
    """The campaign added at ``generation``: its own package and gateways, the fleet's current windows."""
    name = f"gen-{generation:03d}"
    start = fleet.spec.gateways + (generation - 1) * GROWTH_GATEWAYS
    members = ", ".join(gateway_id(start + i) for i in range(GROWTH_GATEWAYS))
    (download, activation) = fleet.windows
    return f"""\
apiVersion: reconciler/v1
kind: Package
metadata: {{name: {name}-fw}}
spec: {{backend: iot, file: ../packages/{name}.bin, description: "Generation {generation}"}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: {name}}}
spec: {{backend: iot, description: "Generation {generation}", packages: [{name}-fw, {package_names(fleet.spec)[0]}], state: running}}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: {name}-fleet}}
spec: {{campaign: {name}, gateways: [{members}]}}
---
apiVersion: reconciler/v1
kind: Schedule
metadata: {{name: {name}-nights}}
spec:
  campaign: {name}
  download: {{begin: "{download[0]}", end: "{download[1]}"}}
  activation: {{begin: "{activation[0]}", end: "{activation[1]}"}}
"""


def grow(fleet: fl.Fleet, generation: int, *, reschedule: bool) -> fl.Fleet:
    """Declare one more campaign (new gateways, a new package) and, with ``reschedule``, move every window a
    day: the next run has work in flight whenever the kill lands."""
    if reschedule:
        fleet = fl.rewrite_windows(fleet, generation)
    name = f"gen-{generation:03d}"
    (fleet.root / "packages" / f"{name}.bin").write_bytes(f"generation {generation}\n".encode() * 300)
    start = fleet.spec.gateways + (generation - 1) * GROWTH_GATEWAYS
    fleet = replace(fleet, campaign_names=(*fleet.campaign_names, name),
                    gateways={**fleet.gateways, name: tuple(gateway_id(start + i) for i in range(GROWTH_GATEWAYS))})
    for earlier in range(1, generation + 1):
        (fleet.decl / f"gen-{earlier:03d}.yaml").write_text(generation_yaml(fleet, earlier), encoding="utf-8")
    return fleet


def kill_and_restart(fleet: fl.Fleet, sandbox: RunningSandbox, *, kills: int, seed: int, low: float, high: float,
                     reschedule: bool) -> tuple[fl.Fleet, KillLog]:
    rng = random.Random(seed)
    log = KillLog()
    generation = 0
    while log.kills < kills and generation < 2 * kills:  # a run that finished before its kill does not count
        generation += 1
        if generation > 1:
            fleet = grow(fleet, generation - 1, reschedule=reschedule)
        before = write_requests(sandbox)
        if log.attempt(fl.reconcile_command(fleet), cwd=fleet.root, env=fl.environment(),
                       delay=rng.uniform(low, high), started=lambda: write_requests(sandbox) > before):
            log.mid_apply += write_requests(sandbox) > before
    return fleet, log


def epoch_ms(text: str) -> str:
    return str(int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000))


def misplaced_gateways(fleet: fl.Fleet, sandbox: RunningSandbox) -> list[str]:
    """Declared gateways missing from their campaign, undeclared ones in it, or without their windows."""
    (download, activation) = fleet.windows
    wanted = {"download": {"begin": epoch_ms(download[0]), "end": epoch_ms(download[1])},
              "activation": {"begin": epoch_ms(activation[0]), "end": epoch_ms(activation[1])}}
    campaigns = fl.iot_campaigns(sandbox)
    problems = []
    for name, declared in fleet.gateways.items():
        seen = {g["gatewayId"]: g for g in campaigns[name]["gateways"]}
        if set(seen) != set(declared):
            problems.append(f"{name}: gateways differ ({len(set(seen) ^ set(declared))} ids)")
        problems += [f"{name}/{g}: windows {seen[g]['schedules']}" for g in declared
                     if g in seen and seen[g]["schedules"] != wanted]
    return problems


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("kills", "seed", "reschedule"), [
    pytest.param(3, 21, True, id="3-kills-rescheduling"),
    pytest.param(20, 5, True, id="20-kills-rescheduling", marks=pytest.mark.slow),
])
def test_ota_fleet_survives_sigkill_without_duplicates(
    sandbox: RunningSandbox, tmp_path: Path, kills: int, seed: int, reschedule: bool, long_run_store_url: str
) -> None:
    """Killed at random moments mid-apply and restarted, the fleet converges with nothing created twice."""
    fleet = fl.write_fleet(tmp_path / "ops", sandbox, fl.spec(iot_campaigns=10, gateways_per_campaign=50),
                           store=long_run_store_url)
    SandboxControls.of(sandbox)["iot-campaigns"].faults(latency_ms=LATENCY_MS)
    fleet, log = kill_and_restart(fleet, sandbox, kills=kills, seed=seed, low=0.0, high=1.8, reschedule=reschedule)
    final = fl.run_reconcile(fleet)
    check = fl.run_reconcile(fleet, "--dry-run", "--detailed-exitcode")
    found = fl.duplicates(sandbox)
    campaigns = fl.iot_campaigns(sandbox)
    record("ota_crash.kills_survived", log.kills, mid_apply=log.mid_apply, finished_early=log.finished_early,
           delays=log.delays)
    record("ota_crash.duplicates", found.total, detail=str(found))
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert found.total == 0, found
    assert sorted(campaigns) == sorted(fleet.campaign_names)
    assert {c["status"] for c in campaigns.values()} == {"STARTED"}
    assert misplaced_gateways(fleet, sandbox) == []
    assert log.kills == kills
    assert log.mid_apply >= min(log.kills, 1)
