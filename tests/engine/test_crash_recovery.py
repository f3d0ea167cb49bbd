"""Crash recovery of SMS sends: a real process killed with SIGKILL at random (seeded) moments, then
restarted. Every recipient must be on the gateway exactly once; on Ogangi, no duplicate and at most
one ``unknown`` per kill. The campaigns are rate-limited so that the send outlasts every kill. The long
versions (5,000 recipients, 20 kills, on each backend) are marked slow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.ledgers import rows_by_state
from tests.engine import crash
from tests.reliability.figures import record


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    options = SandboxOptions(port_base=0, gateway_count=10, seed=3,
                             sms_gateway={"send_rate_per_port": 1000.0}, ogangi={})
    with running_sandbox(options) as running:
        yield running


def ledger_counts(state: str, backend: str) -> dict[str, int]:
    return {key.split("/", 1)[1]: n for key, n in rows_by_state(state).items() if key.startswith(backend + "/")}


@pytest.mark.parametrize(("recipients", "kills", "per_second"), [
    pytest.param(3000, 4, 500, id="3000-recipients-4-kills"),
    pytest.param(5000, 20, 150, id="5000-recipients-20-kills", marks=pytest.mark.slow),
])
def test_gateway_sends_every_recipient_exactly_once_across_kills(
    sandbox: RunningSandbox, tmp_path: Path, recipients: int, kills: int, per_second: float, long_run_store_url: str
) -> None:
    SandboxControls.of(sandbox)["sms-gateway"].faults(latency_ms=150)
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=recipients, per_second=per_second)
    run = crash.kill_and_restart(repo, kills=kills, seed=11, low=0.9, high=3.0, state=long_run_store_url)
    on_gateway = crash.delivered_numbers(sandbox, "sms-gateway", "number")
    record("sms_crash.sms_gateway.kills_survived", run.kills, finished_early=run.finished_early, delays=run.delays)
    assert run.kills == kills, "the send ended before every kill landed: slow it down"
    assert len(on_gateway) == recipients
    assert max(on_gateway.values()) == 1
    assert ledger_counts(long_run_store_url, "gw").get("dispatching", 0) == 0


@pytest.mark.parametrize(("recipients", "kills", "per_second"), [
    pytest.param(500, 4, 60, id="500-recipients-4-kills"),
    pytest.param(5000, 20, 100, id="5000-recipients-20-kills", marks=pytest.mark.slow),
])
def test_ogangi_never_duplicates_and_unknowns_stay_within_the_kills(
    sandbox: RunningSandbox, tmp_path: Path, recipients: int, kills: int, per_second: float, long_run_store_url: str
) -> None:
    SandboxControls.of(sandbox)["ogangi"].faults(latency_ms=5)
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="og", recipients=recipients, per_second=per_second)
    run = crash.kill_and_restart(repo, kills=kills, seed=5, low=0.9, high=2.5, state=long_run_store_url)
    on_ogangi = crash.delivered_numbers(sandbox, "ogangi", "to")
    counts = ledger_counts(long_run_store_url, "og")
    record("sms_crash.ogangi.kills_survived", run.kills, unknown=counts.get("unknown", 0), delays=run.delays)
    assert run.kills == kills, "the send ended before every kill landed: slow it down"
    assert max(on_ogangi.values()) == 1
    assert counts.get("unknown", 0) <= run.kills
    assert counts.get("accepted", 0) + counts.get("unknown", 0) == recipients
    assert len(on_ogangi) >= counts.get("accepted", 0)

