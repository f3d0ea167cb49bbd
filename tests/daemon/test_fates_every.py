"""``reconcile watch --fates-every``: the daemon asks the SMS gateway what became of messages still queued at
most that often, not in every resync pass (for campaigns whose queued messages cost more requests than the
rest of a pass); without it, every pass asks. In-process daemon on a clock moved by hand, the real sandbox
(a gateway slow enough that the messages stay queued) and a real SQLite store; counted at the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.daemon.clock import ManualClock
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.in_process import RESYNC_S, resync, settled, until, watching
from tests.engine import crash

ASKED = "POST /api/query_sms_result"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    # 8 ports at 0.1 message/s: what the campaign hands over stays queued while the test runs
    options = SandboxOptions(port_base=0, gateway_count=10, seed=5, sms_gateway={"send_rate_per_port": 0.1})
    with running_sandbox(options) as running:
        yield running


@pytest.mark.parametrize("fates_every", [0.0, 3 * RESYNC_S])
async def test_queued_messages_are_asked_about_at_most_every_fates_every_seconds(
        sandbox: RunningSandbox, tmp_path: Path, fates_every: float) -> None:
    gateway = SandboxControls.of(sandbox)["sms-gateway"]
    ops = crash.sms_repo(tmp_path / "sms", sandbox, backend="gw", recipients=40)
    clock = ManualClock()
    async with watching(ops, clock, state_url=f"sqlite:///{tmp_path / 'state.db'}", environ=crash.environment(),
                        fates_every=fates_every) as service:
        assert service.store is not None
        ledger = service.store.ledger
        await until(lambda: ledger.counts("gw", "notice").get("accepted") == 40)  # handed over, still queued
        while service.passes != await settled(service, 0.5):
            pass  # the pass the end of the send triggers has finished too: passes from here are the resyncs
        asked = [gateway.requests(ASKED)]
        for _ in range(3):  # resync passes at 600, 1,200 and 1,800 s
            await resync(service, clock)
            asked.append(gateway.requests(ASKED))
    steps = [after - before for before, after in zip(asked, asked[1:], strict=False)]
    if fates_every == 0:
        assert all(step >= 2 for step in steps), steps  # every pass asks about the 40 (32 per request)
    else:
        assert steps[:2] == [0, 0] and steps[2] >= 2, steps  # not before 1,800 s after the first pass asked
