"""Sending an SMS campaign on Ogangi through the send ledger: exactly once, lost replies never resent
blindly, rate, quiet hours, pause and text changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.backends.ogangi.adapter import ADAPTER
from reconciler.backends.ogangi.sms import OgangiSmsSender
from reconciler.backends.protocol import ConnectContext
from reconciler.engine.sms import SmsCampaignRun
from reconciler.model import (
    BackendLimits,
    BackendSpec,
    DesiredState,
    QuietHours,
    Recipient,
    RecipientSource,
    ScheduleSpec,
    SmsCampaignSpec,
    SmsRunState,
    UnknownOutcomePolicy,
)
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.ogangi.app import OgangiSimulator
from reconciler.sandbox.testing import SandboxControl, running_simulator
from reconciler.secrets import Redactor
from reconciler.errors import PermanentBackendError
from reconciler.state.ledger import SendLedger, SendState
from tests.backends.support import ogangi_spec
from tests.ledgers import writer_ledger

NOON = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with running_simulator(OgangiSimulator(clock=SimClock(), seed=1), clock=SimClock()) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(server: SandboxServer) -> None:
    SandboxControl.of(server).reset()


def spec_for(url: str) -> BackendSpec:
    return ogangi_spec(url, limits=BackendLimits(max_retries=2))


def campaign(count: int, **changes: object) -> SmsCampaignSpec:
    recipients = tuple(Recipient(f"58412{i:07d}", (f"zone {i}",)) for i in range(count))
    spec = SmsCampaignSpec(name="notice", backend="og", text="Outage in #param# tonight", sender="12345",
                           recipients=RecipientSource(inline=recipients, count=count))
    return replace(spec, **changes)  # type: ignore[arg-type]


def sender_for(server: SandboxServer, tmp_path: Path) -> OgangiSmsSender:
    ctx = ConnectContext(root=tmp_path, environ={"OG_KEY": "sandbox-private"}, redactor=Redactor())
    return ADAPTER.sms_sender(spec_for(server.url), ctx)


async def send(server: SandboxServer, tmp_path: Path, spec: SmsCampaignSpec, *, now: datetime = NOON,
               schedules: dict[str, ScheduleSpec] | None = None, sleep: object = None,
               risk_duplicates: bool = True) -> tuple[SendLedger, object]:
    ledger = writer_ledger(tmp_path / "state.db")
    desired = DesiredState(campaigns={spec.name: spec}, schedules=schedules or {}, root=str(tmp_path))
    sender = sender_for(server, tmp_path)
    kwargs = {"sleep": sleep} if sleep else {}
    report = await SmsCampaignRun(spec=spec, desired=desired, sender=sender, ledger=ledger, ports=(),
                                  now=lambda: now, risk_duplicates=risk_duplicates,
                                  **kwargs).run()  # type: ignore[arg-type]
    await sender.aclose()
    return ledger, report


def sent_messages(server: SandboxServer) -> list[dict]:
    return list(SandboxControl.of(server).state()["messages"])


async def test_every_recipient_gets_one_message_with_its_parameter(server: SandboxServer, tmp_path: Path) -> None:
    ledger, _ = await send(server, tmp_path, campaign(5))
    messages = sent_messages(server)
    assert sorted(m["to"] for m in messages) == [f"58412{i:07d}" for i in range(5)]
    assert {m["text"] for m in messages} == {f"Outage in zone {i} tonight" for i in range(5)}
    assert ledger.counts("og", "notice") == {"accepted": 5}


async def test_a_first_store_refuses_to_send_what_it_cannot_know_was_not_sent(server: SandboxServer,
                                                                              tmp_path: Path) -> None:
    """Ogangi cannot be asked what it sent: a store's first writer (another checkout, a lost state file)
    sends nothing without the operator's explicit yes, and says why."""
    with pytest.raises(PermanentBackendError, match="no record of earlier sends.*--risk-duplicate-sms"):
        await send(server, tmp_path, campaign(5), risk_duplicates=False)
    assert sent_messages(server) == []


async def test_a_second_run_sends_nothing(server: SandboxServer, tmp_path: Path) -> None:
    await send(server, tmp_path, campaign(5))
    await send(server, tmp_path, campaign(5))
    assert len(sent_messages(server)) == 5


async def test_a_lost_reply_is_unknown_and_never_resent_by_default(server: SandboxServer, tmp_path: Path) -> None:
    SandboxControl.of(server).faults(drop_rate=1)
    ledger, report = await send(server, tmp_path, campaign(1))
    SandboxControl.of(server).faults(drop_rate=0)
    await send(server, tmp_path, campaign(1))
    assert len(sent_messages(server)) == 1
    assert ledger.counts("og", "notice") == {"unknown": 1}


async def test_unknown_outcomes_are_resent_when_the_campaign_says_so(server: SandboxServer, tmp_path: Path) -> None:
    SandboxControl.of(server).faults(drop_rate=1)
    await send(server, tmp_path, campaign(1))
    SandboxControl.of(server).faults(drop_rate=0)
    ledger, _ = await send(server, tmp_path, campaign(1, on_unknown_outcome=UnknownOutcomePolicy.RESEND))
    assert len(sent_messages(server)) == 2
    assert ledger.counts("og", "notice") == {"accepted": 1}


async def test_refused_requests_are_not_recorded_so_they_are_sent_later(server: SandboxServer, tmp_path: Path) -> None:
    SandboxControl.of(server).faults(error_rate=1, retry_after_s=0)
    ledger, report = await send(server, tmp_path, campaign(3))
    assert sent_messages(server) == [] and ledger.counts("og", "notice") == {}
    assert "refused" in report.held
    SandboxControl.of(server).faults(error_rate=0)
    await send(server, tmp_path, campaign(3))
    assert len(sent_messages(server)) == 3


async def test_nothing_is_sent_in_quiet_hours(server: SandboxServer, tmp_path: Path) -> None:
    quiet = {"q": ScheduleSpec(name="q", campaign="notice",
                               quiet_hours=QuietHours("21:00", "08:00", "America/Caracas"))}
    _, report = await send(server, tmp_path, campaign(3), schedules=quiet,
                           now=datetime(2026, 12, 5, 3, 0, tzinfo=UTC))  # 23:00 in Caracas
    assert sent_messages(server) == []
    assert "quiet hours" in report.held


async def test_a_paused_campaign_sends_nothing(server: SandboxServer, tmp_path: Path) -> None:
    _, report = await send(server, tmp_path, campaign(3, state=SmsRunState.PAUSED))
    assert sent_messages(server) == [] and "paused" in report.held


async def test_a_changed_text_applies_only_to_recipients_not_yet_sent(server: SandboxServer, tmp_path: Path) -> None:
    await send(server, tmp_path, campaign(2))
    await send(server, tmp_path, campaign(4, text="Update for #param#"))
    texts = [m["text"] for m in sent_messages(server)]
    assert texts[:2] == ["Outage in zone 0 tonight", "Outage in zone 1 tonight"]
    assert texts[2:] == ["Update for zone 2", "Update for zone 3"]


async def test_the_rate_spaces_messages(server: SandboxServer, tmp_path: Path) -> None:
    starts: list[float] = []

    async def record(delay: float) -> None:
        starts.append(time.monotonic() + delay)  # when the limiter lets the next message go

    await send(server, tmp_path, campaign(5, rate_per_second=2.0), sleep=record)
    assert len(sent_messages(server)) == 5
    # 5 messages at 2/s: each after the first is held until 0.5 s after the one before (the fake sleep
    # passes no time, so the real time the requests take does not change the spacing the limiter keeps)
    assert len(starts) == 4
    assert [b - a for a, b in zip(starts, starts[1:])] == pytest.approx([0.5] * 3, abs=1e-3)


async def test_a_crash_between_commit_and_reply_leaves_the_row_unknown(server: SandboxServer, tmp_path: Path) -> None:
    ledger = writer_ledger(tmp_path / "state.db")
    from reconciler.state.ledger import NewSend

    ledger.begin_dispatch("og", "notice", [NewSend("584120000000", "h")])  # what a crash leaves behind
    ledger, report = await send(server, tmp_path, campaign(2))
    assert [m["to"] for m in sent_messages(server)] == ["584120000001"]
    states = {r.recipient: r.state for r in ledger.rows("og", "notice")}
    assert states == {"584120000000": SendState.UNKNOWN, "584120000001": SendState.ACCEPTED}
