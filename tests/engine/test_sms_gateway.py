"""Sending an SMS campaign on the SMS gateway through the send ledger: batches with user_id, faults
without duplicates, stop cancels what is queued, delivery results polled into the ledger."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sms_gateway.adapter import ADAPTER
from reconciler.engine.sms import SmsCampaignRun, refresh_deliveries
from reconciler.model import (
    BackendLimits,
    BackendSpec,
    DesiredState,
    Recipient,
    RecipientSource,
    SmsCampaignSpec,
    SmsRunState,
)
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.sms_gateway.app import SmsGatewaySimulator
from reconciler.sandbox.testing import SandboxControl, running_simulator
from reconciler.sandbox.tls import generate_tls_files
from reconciler.secrets import Redactor
from reconciler.state.ledger import SendLedger, SendState
from tests.backends.support import gateway_spec
from tests.ledgers import writer_ledger

NOON = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
CLOCK = SimClock()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    tls = generate_tls_files(tmp_path_factory.mktemp("tls"))
    simulator = SmsGatewaySimulator(clock=CLOCK, seed=1, send_rate_per_port=2.0, delivery_delay_s=1.0)
    with running_simulator(simulator, clock=CLOCK, tls=tls) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(server: SandboxServer) -> None:
    SandboxControl.of(server).reset()


def campaign(count: int, **changes: object) -> SmsCampaignSpec:
    recipients = tuple(Recipient(f"49151{i:07d}", (f"zone {i}",)) for i in range(count))
    spec = SmsCampaignSpec(name="notice", backend="gw", text="Outage in #param#", delivery_reports=True,
                           recipients=RecipientSource(inline=recipients, count=count))
    return replace(spec, **changes)  # type: ignore[arg-type]


def ctx(tmp_path: Path) -> ConnectContext:
    return ConnectContext(root=tmp_path, environ={"GW_PASSWORD": "admin"}, redactor=Redactor())


def backend(url: str) -> BackendSpec:
    return gateway_spec(url, limits=BackendLimits(max_retries=6, timeout_seconds=1.0))


async def send(server: SandboxServer, tmp_path: Path, spec: SmsCampaignSpec, ports: tuple[int, ...] = (0, 1)
               ) -> SendLedger:
    ledger = writer_ledger(tmp_path / "state.db")
    sender = ADAPTER.sms_sender(backend(server.url), ctx(tmp_path))
    desired = DesiredState(campaigns={spec.name: spec}, root=str(tmp_path))
    await SmsCampaignRun(spec=spec, desired=desired, sender=sender, ledger=ledger, ports=ports,
                         now=lambda: NOON).run()
    await sender.aclose()
    return ledger


async def test_messages_go_in_batches_of_128_with_the_ledger_key_as_user_id(
    server: SandboxServer, tmp_path: Path
) -> None:
    ledger = await send(server, tmp_path, campaign(300))
    state = SandboxControl.of(server).state()
    rows = {r.recipient: r.key for r in ledger.rows("gw", "notice")}
    assert sorted(len([m for m in state["messages"] if m["task_id"] == t["task_id"]]) for t in state["tasks"]) \
        == [44, 128, 128]
    assert all(m["user_id"] == rows[m["number"]] for m in state["messages"])
    assert {m["port"] for m in state["messages"]} <= {0, 1}


async def test_faults_during_sends_leave_no_duplicate_and_every_message_accounted(
    server: SandboxServer, tmp_path: Path
) -> None:
    SandboxControl.of(server).faults(error_rate=0.2, drop_rate=0.1, timeout_rate=0.05, timeout_s=2, retry_after_s=0, seed=9)
    for _ in range(4):  # a few passes, as the daemon or repeated runs would do
        ledger = await send(server, tmp_path, campaign(1000))
    SandboxControl.of(server).faults(error_rate=0, drop_rate=0, timeout_rate=0)
    ledger = await send(server, tmp_path, campaign(1000))
    numbers = Counter(m["number"] for m in SandboxControl.of(server).state()["messages"])
    assert len(numbers) == 1000 and max(numbers.values()) == 1
    counts = ledger.counts("gw", "notice")
    assert set(counts) <= {"accepted", "sent", "delivered"}  # nothing dispatching, unknown or failed
    assert sum(counts.values()) == 1000


async def test_stopping_a_campaign_stops_its_queued_task(server: SandboxServer, tmp_path: Path) -> None:
    await send(server, tmp_path, campaign(200))
    await send(server, tmp_path, campaign(200, state=SmsRunState.STOPPED))
    statuses = Counter(m["status"] for m in SandboxControl.of(server).state()["messages"])
    assert statuses["FAILED"] > 0  # queued messages of the stopped task never go out
    assert statuses.get("SENDING", 0) == 0


async def test_delivery_results_are_polled_into_the_ledger(server: SandboxServer, tmp_path: Path) -> None:
    ledger = await send(server, tmp_path, campaign(4))
    SandboxControl.of(server).advance(60)
    sender = ADAPTER.sms_sender(backend(server.url), ctx(tmp_path))
    desired = DesiredState(backends={"gw": backend(server.url)}, campaigns={"notice": campaign(4)},
                           root=str(tmp_path))
    moved = await refresh_deliveries(desired, ledger, lambda name: sender)
    await sender.aclose()
    assert moved == 4
    assert ledger.counts("gw", "notice") == {SendState.DELIVERED.value: 4}
