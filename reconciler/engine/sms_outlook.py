"""What the planner needs to know about each SMS campaign, read from the ledger and the recipients file
before planning (so the planner itself stays pure)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from reconciler.engine.sms import chunked, recipients_of
from reconciler.model import DesiredState, SmsCampaignSpec
from reconciler.planner.plan import SmsOutlook
from reconciler.state.ledger import DeliveryLedger, SendState

CHUNK = 1000


def sms_outlook(spec: SmsCampaignSpec, desired: DesiredState, ledger: DeliveryLedger | None, *,
                history_unknown: bool = False) -> SmsOutlook:
    """``history_unknown``: the store is new (or absent) and the backend cannot be asked what it sent."""
    counts = ledger.counts(spec.backend, spec.name) if ledger is not None else {}
    if not counts:  # nothing sent yet: every recipient the loader counted (distinct, checked) is to send
        return SmsOutlook(recipients=spec.recipients.count, to_send=spec.recipients.count, backend=spec.backend,
                          history_unknown=history_unknown)
    assert ledger is not None
    to_send = total = 0
    for chunk in chunked(recipients_of(spec, Path(desired.root)), CHUNK):
        numbers = list(dict.fromkeys(r.number for r in chunk))
        total += len(numbers)
        to_send += len(numbers) - len(ledger.known(spec.backend, spec.name, numbers))
    return SmsOutlook(recipients=total, to_send=to_send, counts=counts,
                      open_tasks=open_tasks(ledger, spec.backend, spec.name), backend=spec.backend)


def open_tasks(ledger: DeliveryLedger, backend: str, campaign: str) -> tuple[str, ...]:
    """Backend tasks that still hold queued messages of the campaign."""
    return ledger.remote_ids(backend, campaign, [SendState.ACCEPTED])


def sms_outlooks(desired: DesiredState, ledger: DeliveryLedger | None, *, established: bool = False,
                 cannot_ask: Collection[str] = ()) -> dict[str, SmsOutlook]:
    """Declared SMS campaigns, plus campaigns only the ledger knows (removed from git) on declared backends.
    ``established``: the store has had a writer before this one (a store's first writer cannot tell a new
    campaign from one another store sent); ``cannot_ask``: backends that cannot be asked what they sent."""
    outlooks = {spec.name: sms_outlook(spec, desired, ledger,
                                       history_unknown=not established and spec.backend in cannot_ask)
                for spec in desired.campaigns.values() if isinstance(spec, SmsCampaignSpec)}
    if ledger is None:
        return outlooks
    for backend, name in ledger.campaigns():
        if name not in desired.campaigns and backend in desired.backends:
            outlooks[name] = SmsOutlook(counts=ledger.counts(backend, name), backend=backend, declared=False,
                                        open_tasks=open_tasks(ledger, backend, name))
    return outlooks
