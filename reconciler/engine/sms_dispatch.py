"""Performs ``send-sms`` actions: finds the campaign, its ports and its backend's sender, and runs it
through the send ledger (``reconciler.engine.sms``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from reconciler.actions import Action
from reconciler.backends.protocol import SmsSender
from reconciler.engine.sms import REFUSED, SmsCampaignRun, SmsRunReport
from reconciler.errors import TemporaryBackendError
from reconciler.model import DesiredState, SmsCampaignSpec
from reconciler.state.lease import WriterLease
from reconciler.state.ledger import SendLedger


def raise_if_refused(report: SmsRunReport, backend: str) -> None:
    """A send the backend stopped taking (503, 429, a refused login) failed for now: the daemon backs off
    before starting it again, instead of starting it again at once in a loop."""
    if report.held.startswith(REFUSED):
        raise TemporaryBackendError(f"{report.sent} sent, then {report.held}", backend=backend, operation="send-sms")


class SmsDispatcher:
    def __init__(self, *, desired: DesiredState, senders: Mapping[str, SmsSender], ledger: SendLedger,
                 now: Callable[[], datetime], lease: WriterLease | None = None,
                 risk_duplicates: bool = False, on_sent: Callable[[int], None] | None = None) -> None:
        self.desired = desired
        self.on_sent = on_sent
        self.lease = lease
        self.risk_duplicates = risk_duplicates
        self.senders = senders
        self.ledger = ledger
        self.now = now

    def ports_of(self, campaign: str) -> tuple[int, ...]:
        return tuple(sorted({p for a in self.desired.assignments_of(campaign) for p in a.ports}))

    async def __call__(self, action: Action) -> Mapping[str, Any]:
        spec = self.desired.campaigns[action.params["campaign"]]
        assert isinstance(spec, SmsCampaignSpec)
        run = SmsCampaignRun(spec=spec, desired=self.desired, sender=self.senders[spec.backend],
                             ledger=self.ledger, ports=self.ports_of(spec.name), now=self.now, lease=self.lease,
                             risk_duplicates=self.risk_duplicates, on_sent=self.on_sent)
        report = await run.run()
        raise_if_refused(report, spec.backend)
        return {"sent": report.sent, "accepted": report.accepted, "failed": report.failed,
                "unknown": report.unknown, "recovered": report.recovered, "held": report.held}
