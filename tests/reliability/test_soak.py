"""Soak: a real ``reconcile watch`` over the whole fleet (IoT, YateOTA, SMS gateway, Ogangi) while faults
are switched on and off every few seconds (503/429, timeouts, dropped connections, garbled replies) and
the declarations are edited every couple of seconds (run states, windows, new recipients, a broken file
that is fixed again).

Pass means: resident memory of the daemon (``VmRSS`` from ``/proc/PID/status``) grows less than 10%
from the first minute to the last (the 30-second version compares its first and last thirds against a
looser 25%: half a minute in, new code paths still allocate for the first time); passes keep coming (no
stretch without one longer than a bound); SIGTERM stops it with exit 0; after a restart and one pass no
send-ledger row is left ``dispatching`` and nothing was sent twice. Fast: 30 s; slow: 10 minutes.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from reconciler.sandbox.fleet_repo import (
    GATEWAY_RECIPIENTS,
    OGANGI_RECIPIENTS,
    YATE_FIXTURE_CAMPAIGNS,
    YATE_FIXTURES_FILE,
    iot_campaign_file,
    iot_campaign_yaml,
    shifted_windows,
)
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.daemon_process import DaemonProcess
from tests.reliability import fleet as fl
from tests.reliability.figures import record

SHAPE = fl.spec(iot_campaigns=3, gateways_per_campaign=10, yate_fixtures=True, sms_recipients=20,
                      ogangi_recipients=5, timeout_seconds=0.5, max_retries=2, concurrency=8)
RESYNC_S = 2.0
EDIT_EVERY_S = 2.0
FAULTS_EVERY_S = 5.0


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    options = SandboxOptions(port_base=0, gateway_count=100, seed=10, yateota={"failure_rate": 0.0},
                             sms_gateway={"send_rate_per_port": 1000.0})
    with running_sandbox(options) as running:
        yield running


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def set_fault_phase(sandbox: RunningSandbox, phase: int) -> None:
    """Odd phases: hostile faults (503 and 429 in turn); even phases: none."""
    controls = SandboxControls.of(sandbox)
    if phase % 2 == 0:
        controls.clear_faults()
        return
    for offset, name in enumerate(fl.SIMULATORS):
        controls[name].faults(error_rate=0.2, error_status=503 if phase % 4 == 1 else 429, retry_after_s=1,
                              timeout_rate=0.05, timeout_s=1.0, drop_rate=0.05, malformed_rate=0.03,
                              seed=phase * 10 + offset)


class Editor:
    """Edits the declarations in a cycle; each step changes something a pass must act on."""

    def __init__(self, fleet: fl.Fleet) -> None:
        self.fleet = fleet
        self.step = 0
        self.added = 0

    def edit(self) -> None:
        fleet, step = self.fleet, self.step
        self.step += 1
        kind = step % 6
        if kind == 0:
            state = "stopped" if (step // 6) % 2 == 0 else "running"
            (fleet.decl / iot_campaign_file(0)).write_text(iot_campaign_yaml(fleet.spec, 0, state=state),
                                                          encoding="utf-8")
        elif kind == 1:
            moved = replace(fleet.spec, windows=shifted_windows(step % 5))
            (fleet.decl / iot_campaign_file(1)).write_text(iot_campaign_yaml(moved, 1), encoding="utf-8")
        elif kind == 2:
            with (fleet.root / GATEWAY_RECIPIENTS).open("a", encoding="utf-8") as rows:
                rows.writelines(f"49171{self.added + i:07d},new\n" for i in range(5))
            self.added += 5
        elif kind == 3:
            with (fleet.root / OGANGI_RECIPIENTS).open("a", encoding="utf-8") as rows:
                rows.write(f"58415{self.added:07d},new\n")
            self.added += 1
        elif kind == 4:
            broken = "apiVersion: reconciler/v1\nkind: Campaign\nmetadata: {name: [\n"
            (fleet.decl / "zz-broken.yaml").write_text(broken, encoding="utf-8")
        else:
            (fleet.decl / "zz-broken.yaml").unlink(missing_ok=True)
            sim = YATE_FIXTURE_CAMPAIGNS.replace("state: running",
                                                 "state: paused" if (step // 6) % 2 else "state: running")
            (fleet.decl / YATE_FIXTURES_FILE).write_text(sim, encoding="utf-8")


@dataclass
class SoakLog:
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, KiB)
    passes: list[tuple[float, int]] = field(default_factory=list)
    edits: int = 0
    fault_phases: int = 0

    def growth(self, window: float) -> tuple[float, float, float]:
        """(median RSS of the first ``window`` seconds, of the last ``window`` seconds, relative growth)."""
        end = self.rss[-1][0]
        first = statistics.median(k for t, k in self.rss if t <= self.rss[0][0] + window)
        last = statistics.median(k for t, k in self.rss if t >= end - window)
        return first, last, (last - first) / first

    def timeline(self, step: float) -> list[int]:
        """Median RSS (KiB) of each ``step``-second slice of the run, to tell a leak from a warm-up."""
        slices: dict[int, list[int]] = {}
        for t, kib in self.rss:
            slices.setdefault(int(t // step), []).append(kib)
        return [int(statistics.median(values)) for _, values in sorted(slices.items())]

    def longest_without_a_pass(self) -> float:
        longest, since, seen = 0.0, self.passes[0][0], self.passes[0][1]
        for t, count in self.passes:
            if count > seen:
                longest, since, seen = max(longest, t - since), t, count
        return max(longest, self.passes[-1][0] - since)


def soak(daemon: DaemonProcess, sandbox: RunningSandbox, editor: Editor, seconds: float) -> SoakLog:
    log = SoakLog()
    start = time.monotonic()
    next_edit = next_fault = 0.0
    while (now := time.monotonic() - start) < seconds:
        if now >= next_fault:
            set_fault_phase(sandbox, log.fault_phases)
            log.fault_phases += 1
            next_fault += FAULTS_EVERY_S
        if now >= next_edit:
            editor.edit()
            log.edits += 1
            next_edit += EDIT_EVERY_S
        log.rss.append((now, rss_kib(daemon.process.pid)))
        try:
            log.passes.append((now, daemon.status()["passes"]))
        except Exception:  # noqa: BLE001 (a slow /status under load is not a failure of the soak)
            pass
        assert daemon.process.poll() is None, daemon.logs()[-3000:]
        time.sleep(0.5)
    SandboxControls.of(sandbox).clear_faults()
    return log


def dispatching_rows(fleet: fl.Fleet) -> int:
    with sqlite3.connect(fleet.state_dir / "state.db") as db:
        return db.execute("SELECT COUNT(*) FROM send_ledger WHERE state = 'dispatching'").fetchone()[0]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("seconds", "window", "max_growth"), [
    pytest.param(30.0, 10.0, 0.25, id="30-seconds"),  # still warming up (new code paths allocate): a loose bound
    pytest.param(600.0, 60.0, 0.10, id="10-minutes", marks=pytest.mark.slow),
])
def test_daemon_soak_under_faults_and_edits(sandbox: RunningSandbox, tmp_path: Path, seconds: float,
                                           window: float, max_growth: float) -> None:
    """Memory stays flat, passes keep coming, SIGTERM exits 0, the ledger is consistent after a restart."""
    fleet = fl.write_fleet(tmp_path / "ops", sandbox, SHAPE)
    daemon = DaemonProcess(fleet.root, str(fleet.decl), "--state", fleet.state_url, "--resync", str(RESYNC_S),
                           "--debounce-ms", "100", "--shutdown-grace", "10", env=fl.SANDBOX_SECRETS)
    try:
        daemon.wait_ready(timeout=60)
        log = soak(daemon, sandbox, Editor(fleet), seconds)
        stopped = time.monotonic()
        code = daemon.terminate(timeout=60)
        stop_seconds = time.monotonic() - stopped
    finally:
        daemon.stop()
    (fleet.decl / "zz-broken.yaml").unlink(missing_ok=True)
    after = fl.run_reconcile(fleet)
    first, last, growth = log.growth(window)
    gap = log.longest_without_a_pass()
    found = fl.duplicates(sandbox)
    record("soak.memory_growth", f"{growth:+.1%}", first_kib=first, last_kib=last, seconds=seconds,
           passes=log.passes[-1][1], edits=log.edits, fault_phases=log.fault_phases,
           longest_without_a_pass=round(gap, 1), sigterm_seconds=round(stop_seconds, 1), duplicates=found.total,
           timeline_kib=log.timeline(window))
    assert code == 0, daemon.logs()[-3000:]
    assert growth < max_growth, (first, last)
    assert log.passes[-1][1] > log.passes[0][1] + seconds / (4 * RESYNC_S)
    assert gap < max(30.0, seconds / 10)
    assert after.returncode == 0, after.stdout[-2000:] + after.stderr[-2000:]
    assert dispatching_rows(fleet) == 0
    assert found.total == 0, found
