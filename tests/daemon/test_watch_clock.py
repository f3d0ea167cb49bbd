"""The daemon in-process on a clock moved by hand, against the real sandbox and a real SQLite store: drift is
corrected by the pass the resync interval triggers (not a moment before), and a send the backend stops
taking is retried when its backoff ends (not a moment before) instead of being started again in a loop.
No test waits out an interval: the clock jumps it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.daemon.clock import ManualClock
from reconciler.model import Kind, ResourceKey
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.in_process import RESYNC_S, settled, until, watching
from tests.engine import crash
from tests.engine import sandbox_repo as repo


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=9)) as running:
        yield running


def iot_campaign(sandbox: RunningSandbox, name: str) -> dict:
    return next(c for c in SandboxControls.of(sandbox)["iot-campaigns"].state()["campaigns"] if c["name"] == name)


async def test_drift_is_corrected_by_the_resync_pass_and_not_before(sandbox: RunningSandbox, tmp_path: Path) -> None:
    SandboxControls.of(sandbox).reset()
    decl = repo.make_repo(tmp_path / "ops", sandbox)
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001"]))
    clock = ManualClock()
    async with watching(decl, clock, state_url=f"sqlite:///{tmp_path / 'state.db'}",
                        environ={**os.environ, **repo.SECRETS}) as service:
        assert iot_campaign(sandbox, "rollout")["status"] == "STARTED"
        campaign_id = iot_campaign(sandbox, "rollout")["id"]
        iot = sandbox.url("iot-campaigns")
        token = httpx.post(f"{iot}/api/tokens", auth=("admin", "admin")).json()["accessToken"]
        httpx.put(f"{iot}/api/campaigns/{campaign_id}/stop", json={"campaignId": campaign_id},
                  headers={"Authorization": f"Bearer {token}"}).raise_for_status()  # someone stops it by hand
        passes = service.passes
        await clock.advance(RESYNC_S - 1)
        assert await settled(service) == passes and iot_campaign(sandbox, "rollout")["status"] == "STOPPED"
        await clock.advance(1)
        await until(lambda: service.passes > passes)
        assert iot_campaign(sandbox, "rollout")["status"] == "STARTED"
        assert b"reconcile_drift_corrections_total 1.0" in service.metrics.render()  # the resync pass corrected it


async def test_a_refused_send_is_retried_when_its_backoff_ends_not_in_a_loop(sandbox: RunningSandbox,
                                                                               tmp_path: Path) -> None:
    SandboxControls.of(sandbox).reset()
    ogangi = SandboxControls.of(sandbox)["ogangi"]
    ogangi.faults(error_rate=1.0, error_status=503, retry_after_s=0)  # every send refused before it is taken
    ops = crash.sms_repo(tmp_path / "sms", sandbox, backend="og", recipients=5)
    clock = ManualClock()
    notice = ResourceKey(Kind.CAMPAIGN, "notice")
    try:
        async with watching(ops, clock, state_url=f"sqlite:///{tmp_path / 'state.db'}", environ=crash.environment(),
                            risk_duplicate_sms=True) as service:
            # the failed send, reported by the next pass, backs off: a retry is due in the first backoff step
            await until(lambda: clock.next_due() == pytest.approx(service.health.base_delay))
            assert service.health.failures[notice] == 1
            passes = service.passes
            assert await settled(service, 1.0) == passes  # not started again and again meanwhile
            ogangi.clear_faults()
            await clock.advance(service.health.base_delay - 0.1)
            assert await settled(service) == passes and crash.delivered_numbers(sandbox, "ogangi", "to") == {}
            await clock.advance(0.1)
            await until(lambda: len(crash.delivered_numbers(sandbox, "ogangi", "to")) == 5)
            assert max(crash.delivered_numbers(sandbox, "ogangi", "to").values()) == 1
    finally:
        ogangi.clear_faults()
