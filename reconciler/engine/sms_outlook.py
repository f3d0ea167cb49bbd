"""What the planner needs to know about each SMS campaign, read from the ledger and the recipients file
before planning (so the planner itself stays pure)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.engine.sms import chunked, recipients_of
from reconciler.load.recipients import file_digest
from reconciler.model import DesiredState, SmsCampaignSpec
from reconciler.planner.plan import SmsOutlook
from reconciler.state.ledger import DeliveryLedger, SendState

CHUNK = 1000


@dataclass
class OutlookMemo:
    """Who is left to send, per campaign, kept by a daemon between its passes.

    Counting it reads every recipient and asks the ledger about each: 1.2 s of CPU per 100,000 recipients, at
    a million more than the rest of a resync pass that asks the backends nothing new. The count can only
    change with the recipients or with the campaign's ledger rows, so it is kept under both: the file's
    content digest (or the inline list itself) and the ledger's ``recipients_mark`` (row count and newest row:
    any row added or dropped changes it). One entry per campaign.

    A count is only kept when nothing changed the campaign's rows while it was taken: not while a send of
    this process runs for the campaign (``busy``, the daemon's background sends), and the mark is read
    before and after. (Rows added and dropped again within one count would leave the same mark over a count
    that saw them.)"""

    busy: Callable[[str], bool] = lambda campaign: False
    found: dict[tuple[str, str], tuple[Hashable, tuple[int, int]]] = field(default_factory=dict)

    def count(self, spec: SmsCampaignSpec, desired: DesiredState, ledger: DeliveryLedger) -> tuple[int, int]:
        """``_left_to_send``, or what it gave before under the same inputs."""
        where = (spec.backend, spec.name)
        inputs = _inputs(spec, desired, ledger)
        remembered = self.found.get(where)
        if inputs is not None and remembered is not None and remembered[0] == inputs:
            return remembered[1]
        quiet = not self.busy(spec.name)
        counted = _left_to_send(spec, desired, ledger)
        if inputs is not None and quiet and not self.busy(spec.name) and _inputs(spec, desired, ledger) == inputs:
            self.found[where] = (inputs, counted)
        else:
            self.found.pop(where, None)
        return counted


def sms_outlook(spec: SmsCampaignSpec, desired: DesiredState, ledger: DeliveryLedger | None, *,
                history_unknown: bool = False, memo: OutlookMemo | None = None) -> SmsOutlook:
    """``history_unknown``: the store is new (or absent) and the backend cannot be asked what it sent;
    ``memo``: what earlier passes of this process counted (a daemon's; none counts afresh)."""
    counts = ledger.counts(spec.backend, spec.name) if ledger is not None else {}
    if not counts:  # nothing sent yet: every recipient the loader counted (distinct, checked) is to send
        return SmsOutlook(recipients=spec.recipients.count, to_send=spec.recipients.count, backend=spec.backend,
                          history_unknown=history_unknown)
    assert ledger is not None
    total, to_send = memo.count(spec, desired, ledger) if memo is not None else _left_to_send(spec, desired, ledger)
    return SmsOutlook(recipients=total, to_send=to_send, counts=counts,
                      open_tasks=open_tasks(ledger, spec.backend, spec.name), backend=spec.backend)


def _left_to_send(spec: SmsCampaignSpec, desired: DesiredState, ledger: DeliveryLedger) -> tuple[int, int]:
    """(distinct recipients, those without a ledger row), read from the recipients and the ledger."""
    to_send = total = 0
    for chunk in chunked(recipients_of(spec, Path(desired.root)), CHUNK):
        numbers = list(dict.fromkeys(r.number for r in chunk))
        total += len(numbers)
        to_send += len(numbers) - len(ledger.known(spec.backend, spec.name, numbers))
    return total, to_send


def _inputs(spec: SmsCampaignSpec, desired: DesiredState, ledger: DeliveryLedger) -> Hashable | None:
    """Everything the count depends on, or None when the recipients file cannot be read (counted afresh,
    which reports the problem)."""
    mark = ledger.recipients_mark(spec.backend, spec.name)
    if spec.recipients.file is None:
        return (spec.recipients.inline, mark)
    path = Path(desired.root) / spec.recipients.file
    digest = file_digest(path)
    return None if digest is None else (str(path.resolve()), digest, mark)


def open_tasks(ledger: DeliveryLedger, backend: str, campaign: str) -> tuple[str, ...]:
    """Backend tasks that still hold queued messages of the campaign."""
    return ledger.remote_ids(backend, campaign, [SendState.ACCEPTED])


def sms_outlooks(desired: DesiredState, ledger: DeliveryLedger | None, *, established: bool = False,
                 cannot_ask: Collection[str] = (), memo: OutlookMemo | None = None) -> dict[str, SmsOutlook]:
    """Declared SMS campaigns, plus campaigns only the ledger knows (removed from git) on declared backends.
    ``established``: the store has had a writer before this one (a store's first writer cannot tell a new
    campaign from one another store sent); ``cannot_ask``: backends that cannot be asked what they sent."""
    outlooks = {spec.name: sms_outlook(spec, desired, ledger,
                                       history_unknown=not established and spec.backend in cannot_ask, memo=memo)
                for spec in desired.campaigns.values() if isinstance(spec, SmsCampaignSpec)}
    if ledger is None:
        return outlooks
    for backend, name in ledger.campaigns():
        if name not in desired.campaigns and backend in desired.backends:
            outlooks[name] = SmsOutlook(counts=ledger.counts(backend, name), backend=backend, declared=False,
                                        open_tasks=open_tasks(ledger, backend, name))
    return outlooks
