"""What the daemon counts as drift (``reconcile_drift_corrections_total``, ``drift_correction`` of
``action.done``) is ``notify.drift``'s rule, the one of its ``drift.corrected`` notifications: a resync pass
that only steers a send going on in the background corrected nothing, while one that starts again a campaign
stopped outside git did. The daemon runs in-process on a ``ManualClock`` against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from reconciler.daemon.clock import ManualClock
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.in_process import resync, watching
from tests.engine import crash
from tests.engine import sandbox_repo as repo

DRIFT_METRIC = b"reconcile_drift_corrections_total"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=11)) as running:
        yield running


def drift_count(metrics: bytes) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith(DRIFT_METRIC + b" "))
    return float(line.split()[1])


def done_actions(logs: list[dict]) -> list[tuple[str, bool]]:
    return [(e["verb"], e["drift_correction"]) for e in logs if e["event"] == "action.done"]


async def test_a_resync_that_only_steers_a_running_send_is_not_drift(sandbox: RunningSandbox, tmp_path: Path) -> None:
    SandboxControls.of(sandbox).reset()
    ops = crash.sms_repo(tmp_path / "sms", sandbox, backend="og", recipients=400, per_second=20)  # ~20 s of send
    clock = ManualClock()
    async with watching(ops, clock, state_url=f"sqlite:///{tmp_path / 'state.db'}", environ=crash.environment(),
                        risk_duplicate_sms=True) as service:
        with capture_logs() as logs:
            await resync(service, clock)
        assert ("send-sms", False) in done_actions(logs)  # the resync had an action: the send it steers
        assert all(not drift for _, drift in done_actions(logs))
        assert drift_count(service.metrics.render()) == 0


async def test_a_campaign_stopped_outside_git_is_counted_once_as_drift(sandbox: RunningSandbox,
                                                                      tmp_path: Path) -> None:
    SandboxControls.of(sandbox).reset()
    decl = repo.make_repo(tmp_path / "ops", sandbox)
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001"]))
    clock = ManualClock()
    async with watching(decl, clock, state_url=f"sqlite:///{tmp_path / 'state.db'}",
                        environ={**crash.environment(), **repo.SECRETS}) as service:
        state = SandboxControls.of(sandbox)["iot-campaigns"].state()
        campaign_id = next(c["id"] for c in state["campaigns"] if c["name"] == "rollout")
        iot = sandbox.url("iot-campaigns")
        token = httpx.post(f"{iot}/api/tokens", auth=("admin", "admin")).json()["accessToken"]
        httpx.put(f"{iot}/api/campaigns/{campaign_id}/stop", json={"campaignId": campaign_id},
                  headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        with capture_logs() as logs:
            await resync(service, clock)
        assert done_actions(logs) == [("start-campaign", True)]
        assert drift_count(service.metrics.render()) == 1
        with capture_logs() as quiet:
            await resync(service, clock)  # nothing left to correct
        assert done_actions(quiet) == [] and drift_count(service.metrics.render()) == 1
