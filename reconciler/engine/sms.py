"""Sending one SMS campaign through the send ledger, exactly once.

Order of work in a pass (each step durable before the next):
1. resolve ``dispatching`` rows left by a crash or a lost reply: ask the backend by key where it can be
   asked (found -> accepted/failed, absent -> forgotten so the recipient is sent again); where it cannot,
   they become ``unknown`` and are resent only with ``onUnknownOutcome: resend``. Rows an earlier writer
   left wait until its requests are provably over (``WriterLease.recover_after``);
1b. a store with no row of the campaign may not know what another store sent: keys are derived from the
   campaign and the recipient, so each group is first asked about where the backend can be asked, and
   where it cannot, a new store sends only with the operator's explicit yes (``risk_duplicates``);
2. if the campaign is active and inside its sending window, stream the recipients (never loaded whole),
   skip those the ledger knows, commit a group as ``dispatching`` (with the fates of the group before),
   send it at the campaign's rate;
3. delivery results are read at the end of the next pass (``refresh_deliveries``), or pushed to the
   daemon; asking right after sending would mostly read "still queued".
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from datetime import datetime
from itertools import islice
from pathlib import Path

import structlog

from reconciler.backends.http import RequestRateLimiter
from reconciler.backends.protocol import OutgoingSms, SmsFate, SmsReceipt, SmsSender
from reconciler.load.recipients import iter_recipients
from reconciler.model import DesiredState, Recipient, SmsCampaignSpec, SmsRunState, UnknownOutcomePolicy
from reconciler.planner.timing import sending_hold
from reconciler.errors import PermanentBackendError
from reconciler.state.lease import WriterLease
from reconciler.state.ledger import DeliveryLedger, LedgerRow, NewSend, SendLedger, SendState, Settlement

log = structlog.get_logger("reconciler.engine.sms")
FATE_TO_STATE = {SmsFate.ACCEPTED: SendState.ACCEPTED, SmsFate.SENT: SendState.SENT,
                 SmsFate.DELIVERED: SendState.DELIVERED,
                 SmsFate.UNDELIVERED: SendState.UNDELIVERED, SmsFate.FAILED: SendState.FAILED,
                 SmsFate.UNKNOWN: SendState.UNKNOWN}
RESEND_ROUNDS = 3
#: how a report's ``held`` begins when the backend stopped taking messages (a failure for now, not a hold)
REFUSED = "backend refused"
QUERY_CHUNK = 128  # keys per sender.query call (the sender splits further to the API's limit)
POLL_PAGE = 4096  # ledger rows asked about at a time: memory stays bounded whatever the campaign's size


class Steering(Protocol):
    """Where a send reads its campaign's declaration (and the rest of the declared state) from."""

    def current(self, campaign: str) -> tuple[SmsCampaignSpec, DesiredState]: ...


@dataclass(frozen=True)
class FixedSteering:
    """One apply: the declaration the plan was made from, for the whole send."""

    spec: SmsCampaignSpec
    desired: DesiredState

    def current(self, campaign: str) -> tuple[SmsCampaignSpec, DesiredState]:
        return self.spec, self.desired


@dataclass
class SmsRunReport:
    sent: int = 0
    accepted: int = 0
    failed: int = 0
    unknown: int = 0
    recovered: int = 0
    held: str = ""  # why sending stopped early (quiet hours, paused, backend refusing)
    errors: list[str] = field(default_factory=list)


def content_hash(text: str, recipient: Recipient) -> str:
    """What was (or will be) sent to one recipient, so a text change is visible per row."""
    return hashlib.sha256("\x1f".join((text, recipient.number, *recipient.params)).encode()).hexdigest()[:16]


def recipients_of(spec: SmsCampaignSpec, root: Path) -> Iterator[Recipient]:
    if spec.recipients.file is not None:
        path = Path(spec.recipients.file)
        yield from (r for _, r in iter_recipients(path if path.is_absolute() else root / path))
    else:
        yield from spec.recipients.inline


def chunked(items: Iterable[Recipient], size: int) -> Iterator[list[Recipient]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class SmsCampaignRun:
    """One campaign on one backend for one pass."""

    def __init__(self, *, spec: SmsCampaignSpec, desired: DesiredState, sender: SmsSender, ledger: SendLedger,
                 ports: tuple[int, ...], now: Callable[[], datetime],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, lease: WriterLease | None = None,
                 risk_duplicates: bool = False, steering: Steering | None = None,
                 on_sent: Callable[[int], None] | None = None) -> None:
        self.lease = lease
        self.on_sent = on_sent  # told how many messages each batch handed over (progress display)
        self.risk_duplicates = risk_duplicates
        self._sleep = sleep
        self.probe = False  # ask the backend about each group before sending it (a store new to the campaign)
        self.name = spec.name
        #: where the campaign's current declaration comes from: fixed for one apply; the daemon's latest pass
        #: for a background send, read before every batch (the brake)
        self.steering: Steering = steering or FixedSteering(spec, desired)
        self.sender = sender
        self.ledger = ledger
        self.ports = ports
        self.now = now
        self._rates: dict[float | None, RequestRateLimiter] = {}
        self.report = SmsRunReport()
        self._fates: list[Settlement] = []  # replies not yet written: they ride with the next group's commit
        self._unsent: list[int] = []
        self.steered = ""  # why the last group stopped early on a new declaration ('' when it did not)

    @property
    def spec(self) -> SmsCampaignSpec:
        return self.steering.current(self.name)[0]

    @property
    def desired(self) -> DesiredState:
        return self.steering.current(self.name)[1]

    def _limiter(self, rate: float | None) -> RequestRateLimiter:
        if rate not in self._rates:
            self._rates[rate] = RequestRateLimiter(rate, sleep=self._sleep)
        return self._rates[rate]

    def batch_size(self) -> int:
        """Messages per request: the backend's most, but no more than about a second of them at the
        campaign's rate (a slow campaign goes out smoothly, and a brake or a new text waits one batch)."""
        rate = self.spec.rate_per_second
        most = self.sender.max_batch
        return most if not rate else max(1, min(most, int(rate)))

    @property
    def backend(self) -> str:
        return self.spec.backend

    async def run(self) -> SmsRunReport:
        await self.resolve_dispatching()
        if self.spec.state is SmsRunState.ACTIVE and not self.ledger.counts(self.backend, self.spec.name):
            self._no_history()
        while self.spec.state is SmsRunState.ACTIVE:
            self.steered = ""
            for _ in range(RESEND_ROUNDS):  # lost replies resolved as "never arrived" are sent again
                await self.send_pending()
                if self.report.held or self.steered or not self.ledger.rows(
                        self.backend, self.spec.name, [SendState.DISPATCHING]):
                    break
                await self.resolve_dispatching()
            if not self.steered or self.report.held:
                break  # done, or held (quiet hours, backend refusing); a new text goes round again
            log.info("sms.steered", campaign=self.name, why=self.steered)
        if self.spec.state is not SmsRunState.ACTIVE:
            self.report.held = f"campaign is {self.spec.state.value}"
            if self.spec.state is SmsRunState.STOPPED or self.steered:
                await self.stop_queued()  # the brake: nothing more leaves the gateway either
        return self.report

    def _no_history(self) -> None:
        """This store has no row of the campaign: another store may have sent it (a new checkout, a lost
        state file). Ask first where the backend can be asked; elsewhere refuse unless told to risk it."""
        if self.sender.can_query:
            self.probe = True
            return
        established = self.lease is not None and (self.lease.token or 0) > 1
        if not established and not self.risk_duplicates:
            raise PermanentBackendError(
                f"this state store has no record of earlier sends of campaign {self.spec.name} and backend "
                f"{self.backend} cannot be asked what it already sent: if it was sent from another store (a "
                "new checkout, a lost state file) every recipient would get it again. Point --state at the "
                "store that sent it, or run again with --risk-duplicate-sms", backend=self.backend,
                operation="send-sms")

    async def resolve_dispatching(self) -> None:
        rows = self.ledger.rows(self.backend, self.spec.name, [SendState.DISPATCHING])
        if not rows:
            return
        await self._wait_for_earlier_writer(rows)
        if not self.sender.can_query:
            self.ledger.settle((r.key, SendState.UNKNOWN, "", "no reply before a crash or timeout") for r in rows)
            self.report.unknown += len(rows)
            return
        known = {receipt.key: receipt for receipt in await query_all(self.sender, [r.key for r in rows])}
        self.ledger.settle((self._settlement(known[r.key]) for r in rows if r.key in known),
                           forget=[r.key for r in rows if r.key not in known])
        self.report.recovered += len(rows)
        log.info("sms.recovered", campaign=self.spec.name, found=len(known), resend=len(rows) - len(known))

    async def _wait_for_earlier_writer(self, rows: list[LedgerRow]) -> None:
        """Rows of an earlier lease token may still be in flight from a writer that was cut off: wait
        until its lease has run out plus the longest request (``recover_after``)."""
        lease = self.lease
        if lease is None or all(r.token == lease.token for r in rows):
            return
        wait = lease.recover_after - lease.clock()
        if wait > 0:
            log.info("sms.recovery_wait", campaign=self.spec.name, seconds=round(wait, 1),
                     note="an earlier writer's requests may still be in flight")
            await self._sleep(wait)

    async def send_pending(self) -> None:
        try:
            await self._send_groups()
        finally:
            self.ledger.settle(self._fates, forget=self._unsent)
            self._fates, self._unsent = [], []

    async def _send_groups(self) -> None:
        spec, desired = self.steering.current(self.name)
        root = Path(desired.root)
        group = self.batch_size() * self.sender.in_flight
        for chunk in chunked(recipients_of(spec, root), max(group, 64)):
            if self._steered_away(spec):
                return
            held, _ = sending_hold(self.desired, self.name, self.now())
            if held:
                self.report.held = held
                return
            fresh = self._fresh(chunk)
            for start in range(0, len(fresh), group):
                if self._steered_away(spec) or not await self._dispatch(spec, fresh[start:start + group]):
                    return

    def _steered_away(self, sent_as: SmsCampaignSpec) -> bool:
        """The declaration changed since this group was planned in a way that concerns recipients not yet
        handed over: paused or stopped, a new text, or a new rate (re-paced)."""
        now = self.spec
        if now.state is not SmsRunState.ACTIVE:
            self.steered = f"declared {now.state.value}"
        elif now.text != sent_as.text:
            self.steered = "new text"
        elif now.rate_per_second != sent_as.rate_per_second:
            self.steered = "new rate"
        else:
            return False
        return True

    def _fresh(self, chunk: list[Recipient]) -> list[Recipient]:
        """Recipients without a ledger row (unknown ones only when the campaign says to resend them)."""
        known = self.ledger.known(self.backend, self.spec.name, [r.number for r in chunk])
        if self.spec.on_unknown_outcome is UnknownOutcomePolicy.RESEND and known:
            unknown = {r.recipient for r in self.ledger.rows(self.backend, self.spec.name, [SendState.UNKNOWN])
                       if r.recipient in known}
            self.ledger.forget_unknown(self.backend, self.spec.name, unknown)
            known -= unknown
        seen: set[str] = set()
        fresh = []
        for recipient in chunk:
            if recipient.number not in known and recipient.number not in seen:
                seen.add(recipient.number)
                fresh.append(recipient)
        return fresh

    async def _dispatch(self, spec: SmsCampaignSpec, recipients: list[Recipient]) -> bool:
        """Commit, send, settle one group (as declared in ``spec``); False when the backend refuses
        everything or the declaration changed (stop for now)."""
        sends = [NewSend(r.number, content_hash(spec.text, r)) for r in recipients]
        rows, collided = self.ledger.begin_dispatch(self.backend, self.spec.name, sends, settle=self._fates,
                                                    forget=self._unsent)
        self._fates, self._unsent = [], []
        if collided:
            self.report.failed += len(collided)
            self.report.errors.append(f"{len(collided)} recipient(s) not sent: their ledger key collides with "
                                      "another recipient's (62-bit hash)")
            log.error("sms.key_collision", campaign=self.spec.name, count=len(collided))
        if self.probe and rows:
            rows = await self._already_sent_elsewhere(rows)
        params = {r.number: r.params for r in recipients}
        messages = [OutgoingSms(row.key, row.recipient, params[row.recipient]) for row in rows]
        size = self.batch_size()
        batches = [messages[i:i + size] for i in range(0, len(messages), size)]
        if len(batches) == 1:  # one message in flight (Ogangi): no task to spawn
            receipts = await self._send(spec, batches[0])
        else:
            receipts = [r for batch in await asyncio.gather(*(self._send(spec, b) for b in batches)) for r in batch]
        self._settle(receipts)
        if self.steered:
            return False
        return any(r.fate is not SmsFate.NOT_SENT for r in receipts) or not receipts

    async def _already_sent_elsewhere(self, rows: list[LedgerRow]) -> list[LedgerRow]:
        """Rows the backend already knows by their derived key (sent from another store): settled from
        what it says, not sent again. The others are returned, to send."""
        found = {r.key: r for r in await query_all(self.sender, [row.key for row in rows])}
        if found:
            self._fates += [self._settlement(r) for r in found.values()]
            self.report.recovered += len(found)
            log.warning("sms.sent_before", campaign=self.spec.name, count=len(found),
                        note="the backend already had these messages (sent from another state store)")
        return [row for row in rows if row.key not in found]

    async def _send(self, spec: SmsCampaignSpec, batch: list[OutgoingSms]) -> list[SmsReceipt]:
        rate = self._limiter(spec.rate_per_second)
        for _ in batch:
            await rate.acquire()
        if self._steered_away(spec):  # committed, not handed over: forgotten, sent later as now declared
            self._unsent += [message.key for message in batch]
            return []
        return await self.sender.send(spec.text, batch, sender=spec.sender, carrier=spec.carrier, ports=self.ports,
                                      encoding=spec.encoding, reports=spec.delivery_reports)

    def _settle(self, receipts: list[SmsReceipt]) -> None:
        """Note what the replies said; it is written with the next group's commit (or when sending ends)."""
        self._fates += [self._settlement(r) for r in receipts if r.fate not in (SmsFate.NOT_SENT, SmsFate.UNKNOWN)]
        not_sent = [r for r in receipts if r.fate is SmsFate.NOT_SENT]
        self._unsent += [r.key for r in not_sent]
        if not_sent:
            self.report.held = f"{REFUSED} to take messages: {not_sent[0].reason}"
        unknown = [r for r in receipts if r.fate is SmsFate.UNKNOWN]
        if unknown and not self.sender.can_query:
            self._fates += [(r.key, SendState.UNKNOWN, "", r.reason) for r in unknown]
        self.report.sent += len(receipts) - len(not_sent)
        if self.on_sent is not None and len(receipts) > len(not_sent):
            self.on_sent(len(receipts) - len(not_sent))
        self.report.accepted += sum(1 for r in receipts if r.fate is SmsFate.ACCEPTED)
        self.report.failed += sum(1 for r in receipts if r.fate is SmsFate.FAILED)
        self.report.unknown += len(unknown)

    def _settlement(self, receipt: SmsReceipt) -> tuple[int, SendState, str, str]:
        return receipt.key, FATE_TO_STATE.get(receipt.fate, SendState.UNKNOWN), receipt.remote_id, receipt.reason

    async def stop_queued(self) -> None:
        await stop_and_release(self.ledger, self.sender, self.backend, self.name)


async def stop_and_release(ledger: SendLedger, sender: SmsSender, backend: str, campaign: str,
                           tasks: Sequence[str] | None = None) -> int:
    """Stop the backend's tasks that still queue messages of the campaign (all of them, or ``tasks``), then
    forget the rows whose message the stop abandoned: the backend reports them failed, so they never left,
    and a campaign resumed later sends them (none is lost, none is sent twice). Returns how many."""
    tasks = tuple(tasks) if tasks is not None else ledger.remote_ids(backend, campaign, [SendState.ACCEPTED])
    if not tasks:
        return 0
    await sender.stop_tasks(tasks)
    if not sender.can_query:
        return 0
    queued = [r for r in ledger.rows(backend, campaign, [SendState.ACCEPTED]) if r.remote_id in tasks]
    found = await query_all(sender, [r.key for r in queued])
    abandoned = [r.key for r in found if r.fate is SmsFate.FAILED]
    moved = [(r.key, FATE_TO_STATE[r.fate], "", r.reason) for r in found
             if r.fate is not SmsFate.FAILED and r.fate in FATE_TO_STATE]
    ledger.settle(moved)
    if abandoned:  # settle() keeps forget() to dispatching rows: move them back first, in one transaction
        ledger.release(abandoned)
    log.info("sms.stopped_queued", campaign=campaign, tasks=len(tasks), released=len(abandoned))
    return len(abandoned)


async def poll_campaign(ledger: DeliveryLedger, sender: SmsSender, backend: str, campaign: str, *,
                        reports: bool, up_to: int | None = None) -> int:
    """Move rows on from what the backend says: queued -> sent -> delivered/failed. Sent rows are asked
    about again only when delivery reports were requested (otherwise nothing more will come). Only rows
    with keys up to ``up_to`` are asked about (all when None)."""
    states = [SendState.ACCEPTED, SendState.SENT] if reports else [SendState.ACCEPTED]
    moved = 0
    for page in ledger.pages(backend, campaign, states, size=POLL_PAGE, up_to=up_to):
        rows = {r.key: r for r in page}
        found = await query_all(sender, list(rows))
        changed = [r for r in found if r.key in rows and FATE_TO_STATE.get(r.fate) not in (None, rows[r.key].state)]
        ledger.settle((r.key, FATE_TO_STATE[r.fate], "", r.reason) for r in changed)
        moved += len(changed)
    return moved


async def query_all(sender: SmsSender, keys: Sequence[int]) -> list[SmsReceipt]:
    """What the backend says about ``keys``, asked ``QUERY_CHUNK`` keys per call, the calls at once (the
    backend's concurrency limit spaces them)."""
    replies = await asyncio.gather(*(sender.query(keys[start:start + QUERY_CHUNK])
                                     for start in range(0, len(keys), QUERY_CHUNK)))
    return [receipt for reply in replies for receipt in reply]


async def refresh_deliveries(desired: DesiredState, ledger: DeliveryLedger,
                             senders: Callable[[str], SmsSender | None], *, up_to: int | None = None) -> int:
    """Ask backends that can be asked what became of messages still queued or awaiting a delivery
    report, for declared campaigns and for campaigns removed from git alike (at the end of a pass, and
    for ``reconcile status``), for rows with keys up to ``up_to`` (all when None: a pass passes the
    last key from before it sent anything, since what it just sent is still queued). Returns how many
    ledger rows moved on."""
    moved = 0
    for backend, name in ledger.campaigns():
        if backend not in desired.backends:
            continue
        spec = desired.campaigns.get(name)
        reports = isinstance(spec, SmsCampaignSpec) and spec.backend == backend and spec.delivery_reports
        states = [SendState.ACCEPTED, SendState.SENT] if reports else [SendState.ACCEPTED]
        counts = ledger.counts(backend, name)
        if not any(counts.get(state.value) for state in states):
            continue
        sender = senders(backend)
        if sender is not None and sender.can_query:
            moved += await poll_campaign(ledger, sender, backend, name, reports=reports, up_to=up_to)
    return moved
