"""What the planner needs to know about each SMS campaign, read from the ledger and the recipients file
before planning (so the planner itself stays pure)."""

from __future__ import annotations

from pathlib import Path

from reconciler.engine.sms import chunked, recipients_of
from reconciler.model import DesiredState, SmsCampaignSpec
from reconciler.planner.plan import SmsOutlook
from reconciler.state.ledger import SendLedger, SendState

CHUNK = 1000


def sms_outlook(spec: SmsCampaignSpec, desired: DesiredState, ledger: SendLedger | None) -> SmsOutlook:
    if ledger is None:
        return SmsOutlook(recipients=spec.recipients.count, to_send=spec.recipients.count)
    to_send = total = 0
    for chunk in chunked(recipients_of(spec, Path(desired.root)), CHUNK):
        numbers = list(dict.fromkeys(r.number for r in chunk))
        total += len(numbers)
        to_send += len(numbers) - len(ledger.known(spec.backend, spec.name, numbers))
    counts = ledger.counts(spec.backend, spec.name)
    tasks = tuple(sorted({r.remote_id for r in ledger.rows(spec.backend, spec.name, [SendState.ACCEPTED])
                          if r.remote_id}))
    return SmsOutlook(recipients=total, to_send=to_send, counts=counts, open_tasks=tasks)


def sms_outlooks(desired: DesiredState, ledger: SendLedger | None) -> dict[str, SmsOutlook]:
    return {spec.name: sms_outlook(spec, desired, ledger)
            for spec in desired.campaigns.values() if isinstance(spec, SmsCampaignSpec)}
