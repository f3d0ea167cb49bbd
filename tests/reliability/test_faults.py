"""Faults: the whole fleet (IoT campaigns, YateOTA, SMS gateway, Ogangi) against a sandbox answering 20%
of requests with 503 or 429 with ``Retry-After`` (a simulator has one error status at a time: two answer
429, two 503, and they swap between runs), timing out 5% (the sandbox holds the reply for 1 s, twice the
Backend's ``timeoutSeconds``), dropping 5% of connections mid-reply and garbling 3% of replies.

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
from reconciler.sandbox.testing import SandboxControls
from tests.reliability import fleet as fl
from tests.ledgers import rows_by_state
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
    """20% errors, 5% timeouts, 5% dropped connections, 3% garbled replies. A simulator has one error status
    at a time: half of them answer 429 (``Retry-After: 1``), the others 503 (``Retry-After: 0``), and the
    halves swap on every run."""
    controls = SandboxControls.of(sandbox)
    for offset, name in enumerate(fl.SIMULATORS):
        status, retry_after = (429, 1) if (offset + run) % 2 == 0 else (503, 0)
        controls[name].faults(error_rate=0.20, error_status=status, retry_after_s=retry_after, timeout_rate=0.05,
                              timeout_s=1.0, drop_rate=0.05, malformed_rate=0.03, latency_ms=2,
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


def check_output(result: subprocess.CompletedProcess[str], log: Convergence) -> None:
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
        check_output(result, log)
        if result.returncode == 0:
            break
    SandboxControls.of(sandbox).clear_faults()
    return log


def ledger_states(fleet: fl.Fleet) -> dict[str, int]:
    """Send-ledger rows by backend and state, e.g. ``{"og/unknown": 2, "gw/accepted": 60}``."""
    return rows_by_state(fleet.state_url)


FAST = fl.spec(iot_campaigns=2, gateways_per_campaign=8, yate_fixtures=True, sms_recipients=60,
                     ogangi_recipients=8, timeout_seconds=0.5, concurrency=8)
SLOW = fl.spec(iot_campaigns=10, gateways_per_campaign=30, yate_fixtures=True, sms_recipients=1000,
                     ogangi_recipients=150, timeout_seconds=0.5, concurrency=8)


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("shape", "seeds"), [
    pytest.param(FAST, (1,), id="small-fleet-1-seed"),
    pytest.param(SLOW, (2, 3, 4, 5, 6), id="fleet-5-seeds", marks=pytest.mark.slow),
])
def test_fleet_converges_under_faults_without_duplicates(
    sandbox: RunningSandbox, tmp_path: Path, shape: fl.FleetSpec, seeds: tuple[int, ...], long_run_store_url: str
) -> None:
    """Under 503/429, timeouts, drops and garbled replies the fleet converges, reports every failure with
    its resource, and creates or sends nothing twice (every seed runs; the problems of all are shown)."""
    problems: dict[int, list[str]] = {}
    for seed in seeds:
        SandboxControls.of(sandbox).reset()
        # one store per seed: the first seed gets the fixture's (SQLite or PostgreSQL), later ones SQLite files
        fleet = fl.write_fleet(tmp_path / f"ops-{seed}", sandbox, shape, store=long_run_store_url if seed == seeds[0] else None)
        log = converge_under_faults(fleet, sandbox, seed=seed)
        check = fl.run_reconcile(fleet, "--dry-run", "--detailed-exitcode")
        found = fl.duplicates(sandbox)
        sent = (len(fl.sent_numbers(sandbox, "sms-gateway")), len(fl.sent_numbers(sandbox, "ogangi")))
        campaigns = sorted(fl.iot_campaigns(sandbox))
        record("faults.runs_to_converge", len(log.runs), seed=seed, exit_codes=log.runs,
               failures_reported=log.failures_seen, crashes=len(log.crashes))
        record("faults.duplicates", found.total, seed=seed, sms_sent=sent, ledger=ledger_states(fleet))
        problems[seed] = [problem for problem, present in (
            (f"crashed: {log.crashes[:1]}", bool(log.crashes)),
            (f"failures without a resource: {log.unreported[:2]}", bool(log.unreported)),
            (f"not converged in {MAX_RUNS} runs: {log.runs}", not log.converged),
            (f"dry run after the faults exits {check.returncode}: {check.stdout[-1500:]}", check.returncode != 0),
            (f"duplicates: {found}", found.total != 0),
            (f"gateway sent {sent[0]} of {shape.sms_recipients}", sent[0] != shape.sms_recipients),
            (f"IoT campaigns {campaigns}", campaigns != sorted(fleet.gateways)),
        ) if present]
    assert problems == {seed: [] for seed in seeds}


def test_garbled_replies_to_delivery_queries_are_reported_not_a_crash(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """After a send, every reply of the SMS gateway garbled: the next run asks what became of the sent
    messages and gets nothing readable. That is a failure to report (the backend, the campaign), not an
    internal error that throws away the run's report; a dry run and ``status`` survive it as well."""
    shape = fl.spec(iot_campaigns=1, gateways_per_campaign=2, sms_recipients=20, max_retries=1)
    fleet = fl.write_fleet(tmp_path / "ops", sandbox, shape)
    assert fl.run_reconcile(fleet).returncode == 0
    SandboxControls.of(sandbox)["sms-gateway"].faults(malformed_rate=1.0)
    runs = {"apply": fl.run_reconcile(fleet), "status": fl.run_reconcile(fleet, "status"),
            "dry-run": fl.run_reconcile(fleet, "--dry-run")}
    SandboxControls.of(sandbox).clear_faults()
    outputs = {name: result.stdout + result.stderr for name, result in runs.items()}
    assert {name: "internal error" in text or "Traceback" in text for name, text in outputs.items()} == \
        {name: False for name in outputs}, outputs["apply"][-2000:]
    assert "gw" in outputs["apply"] and "Campaign/fw-000" in outputs["apply"]
