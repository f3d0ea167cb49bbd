"""Faults: the whole fleet (IoT campaigns, YateOTA, SMS gateway, Ogangi) against a sandbox answering 20%
of requests with 503 or 429 (with ``Retry-After``; the status alternates between runs, a simulator has one
error status at a time), timing out 5% (the sandbox holds the reply for 1 s, twice the Backend's
``timeoutSeconds``), dropping 5% of connections mid-reply and garbling some replies.

Pass means: repeated runs of the real ``reconcile`` converge within a bounded number of runs; every
failure a run prints names its resource (``Campaign/...``, ``Package/...``) or, when a whole backend could
not be read, that backend; no run crashes; nothing is created twice and no SMS is sent twice; once the
faults stop, a dry run has nothing to do.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from tests.reliability import fleet as fl
from tests.reliability.figures import record

MAX_RUNS = 8
REPORT_LINE = re.compile(r"^(FAILED|UNKNOWN|SKIPPED)\s+(?P<resource>\S+) ")
RESOURCE = re.compile(r"^(Campaign|Package|GatewayAssignment|Schedule|Backend)/[a-z0-9][-a-z0-9]*$")
UNREADABLE = re.compile(r"backend (?P<backend>[a-z0-9-]+) could not be read")


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    options = SandboxOptions(port_base=0, gateway_count=500, seed=4, yateota={"failure_rate": 0.0},
                             sms_gateway={"send_rate_per_port": 1000.0})
    with running_sandbox(options) as running:
        yield running


def hostile_faults(sandbox: RunningSandbox, *, run: int, seed: int) -> None:
    """20% errors (503 on even runs, 429 on odd ones, Retry-After 1 s), 5% timeouts, 5% drops, 3% garbled."""
    for offset, name in enumerate(fl.SIMULATORS):
        fl.set_faults(sandbox, name, error_rate=0.20, error_status=503 if run % 2 == 0 else 429, retry_after_s=1,
                      timeout_rate=0.05, timeout_s=1.0, drop_rate=0.05, malformed_rate=0.03, latency_ms=2,
                      seed=seed * 100 + run * 10 + offset)


@dataclass
class Convergence:
    runs: list[int] = field(default_factory=list)  # exit code of each run
    unreported: list[str] = field(default_factory=list)  # failure lines that name no resource
    crashes: list[str] = field(default_factory=list)
    failures_seen: int = 0

    @property
    def converged(self) -> bool:
        return bool(self.runs) and self.runs[-1] == 0


def check_output(result: subprocess.CompletedProcess[str], fleet: fl.Fleet, log: Convergence) -> None:
    """Every failure names its resource; a failed run without a report names the unreadable backend."""
    output = result.stdout + result.stderr
    if "Traceback" in output or "internal error" in output:
        log.crashes.append(output[-2000:])
    reported = 0
    for line in output.splitlines():
        match = REPORT_LINE.match(line)
        if match:
            reported += 1
            if not RESOURCE.match(match["resource"]):
                log.unreported.append(line)
    unreadable = {m["backend"] for m in UNREADABLE.finditer(output)}
    log.failures_seen += reported + len(unreadable)
    if result.returncode != 0 and not reported and not unreadable:
        log.unreported.append(output[-1500:])
    if unreadable - {"iot", "yate", "gw", "og"}:
        log.unreported.append(f"unknown backends named: {unreadable}")


def converge_under_faults(fleet: fl.Fleet, sandbox: RunningSandbox, *, seed: int) -> Convergence:
    log = Convergence()
    for run in range(MAX_RUNS):
        hostile_faults(sandbox, run=run, seed=seed)
        result = fl.run_reconcile(fleet, timeout=300)
        log.runs.append(result.returncode)
        check_output(result, fleet, log)
        if result.returncode == 0:
            break
    fl.clear_faults(sandbox)
    return log


FAST = fl.FleetShape(campaigns=2, gateways_per_campaign=8, yateota=True, sms_gateway_recipients=60,
                     ogangi_recipients=8, timeout_seconds=0.5, concurrency=8)
SLOW = fl.FleetShape(campaigns=10, gateways_per_campaign=30, yateota=True, sms_gateway_recipients=1000,
                     ogangi_recipients=150, timeout_seconds=0.5, concurrency=8)


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("shape", "seeds"), [
    pytest.param(FAST, (1,), id="small-fleet-1-seed"),
    pytest.param(SLOW, (2, 3, 4, 5, 6), id="fleet-5-seeds", marks=pytest.mark.slow),
])
def test_fleet_converges_under_faults_without_duplicates(
    sandbox: RunningSandbox, tmp_path: Path, shape: fl.FleetShape, seeds: tuple[int, ...]
) -> None:
    """Under 503/429, timeouts, drops and garbled replies the fleet converges, reports every failure with
    its resource, and creates or sends nothing twice."""
    for seed in seeds:
        fl.reset(sandbox)
        fleet = fl.write_fleet(tmp_path / f"ops-{seed}", sandbox, shape)
        log = converge_under_faults(fleet, sandbox, seed=seed)
        check = fl.run_reconcile(fleet, "--dry-run", "--detailed-exitcode")
        found = fl.duplicates(sandbox)
        sent = (len(fl.sent_numbers(sandbox, "sms-gateway")), len(fl.sent_numbers(sandbox, "ogangi")))
        record("faults.runs_to_converge", len(log.runs), seed=seed, exit_codes=log.runs,
               failures_reported=log.failures_seen)
        record("faults.duplicates", found.total, seed=seed, sms_sent=sent)
        assert log.crashes == []
        assert log.unreported == []
        assert log.converged, log.runs
        assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
        assert found.total == 0, found
        assert sent[0] == shape.sms_gateway_recipients
        assert sorted(fl.iot_campaigns(sandbox)) == sorted(n for n in fleet.campaign_names if n.startswith("ota-"))
