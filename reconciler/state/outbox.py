"""The notification outbox: events waiting to be POSTed, kept in the state store so none is lost.

One row per (Notification, event id). A pass adds its events in one fenced transaction, after what it did
was recorded; a deliverer (the daemon's, or the end of an apply) takes the rows that are due, POSTs them
and marks each ``delivered`` in another fenced transaction once the receiver said 2xx, ``failed`` when it
refused for good, or moves its next attempt later. So:

- a crash never loses an event: its row stays ``pending`` until a 2xx is recorded;
- an event is never sent twice for one occurrence: the row's id is unique per Notification, and a row is
  sent again only if the process died (or lost its lease) between the receiver's 2xx and the record of
  it; the repeat carries the same id (``X-Reconciler-Delivery``), so the receiver can drop it;
- a condition (``subject``: a failing action, a halted rollout) is added once while it holds: a row of
  the same Notification and subject that is still ``condition_open`` stops a new one; ``enqueue``'s
  ``cleared`` closes it, so the next time the condition starts is a new event.

Bounds: at most ``MAX_PENDING`` rows wait at once (more are dropped and counted); the table keeps at most
``MAX_ROWS`` rows (the oldest finished ones go first), enough to remember an occurrence for months.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler.state.database import Database, Transaction

MAX_PENDING = 10_000
MAX_ROWS = 50_000
MAX_ERROR = 500  # characters of the last error kept on a row
_COLUMNS = "seq, notification, event_id, event, payload, attempts, created_at"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # refused for good, expired, or its Notification was removed from git


@dataclass(frozen=True)
class NewDelivery:
    """An event for one Notification; ``payload`` is the event as JSON text (no secret, no number)."""

    notification: str
    event_id: str
    event: str
    payload: str
    subject: str = ""  # set for a condition: added once while it holds


@dataclass(frozen=True)
class PendingDelivery:
    """A row that is due: what the deliverer needs to send it."""

    seq: int
    notification: str
    event_id: str
    event: str
    payload: str
    attempts: int
    created_at: float


@dataclass(frozen=True)
class Enqueued:
    added: int = 0
    dropped: int = 0  # over ``MAX_PENDING``


class Outbox:
    """The outbox on one store's database; writes are fenced by the writer lease (``Database.write``)."""

    def __init__(self, db: Database, *, max_pending: int = MAX_PENDING, max_rows: int = MAX_ROWS) -> None:
        self.db = db
        self.max_pending = max_pending
        self.max_rows = max_rows

    def enqueue(self, deliveries: Sequence[NewDelivery], *, cleared: Collection[str] = (), now: float) -> Enqueued:
        """Close the ``cleared`` conditions, then add each delivery not already there (by id, or by an open
        condition of the same subject), in one transaction."""
        if not deliveries and not cleared:
            return Enqueued()
        added = dropped = 0
        with self.db.write() as tx:
            tx.many("UPDATE notify_outbox SET condition_open=0 WHERE subject=? AND condition_open=1",
                    [(subject,) for subject in sorted(cleared)])
            waiting = _count(tx, "SELECT COUNT(*) FROM notify_outbox WHERE state=?", (DeliveryState.PENDING.value,))
            open_now = set(tx.rows("SELECT notification, subject FROM notify_outbox WHERE condition_open=1"))
            for delivery in deliveries:
                if delivery.subject and (delivery.notification, delivery.subject) in open_now:
                    continue  # the condition was told when it started and still holds
                if waiting >= self.max_pending:
                    dropped += 1
                    continue
                inserted = tx.one(
                    "INSERT INTO notify_outbox (notification, event_id, event, subject, condition_open, payload, state, "
                    "attempts, next_at, created_at, updated_at, token) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?) "
                    "ON CONFLICT (notification, event_id) DO NOTHING RETURNING seq",
                    (delivery.notification, delivery.event_id, delivery.event, delivery.subject,
                     int(bool(delivery.subject)), delivery.payload, DeliveryState.PENDING.value, now, now, now,
                     self.db.token or 0))
                if inserted is not None:  # else: the same occurrence, already queued by an earlier pass
                    added += 1
                    waiting += 1
                    if delivery.subject:
                        open_now.add((delivery.notification, delivery.subject))
            if added:
                self._trim(tx)
        return Enqueued(added, dropped)

    def _trim(self, tx: Transaction) -> None:
        extra = _count(tx, "SELECT COUNT(*) FROM notify_outbox", ()) - self.max_rows
        if extra > 0:
            tx.run("DELETE FROM notify_outbox WHERE seq IN (SELECT seq FROM notify_outbox WHERE state<>? AND "
                   "condition_open=0 ORDER BY seq LIMIT ?)", (DeliveryState.PENDING.value, extra))

    def due(self, *, now: float, limit: int = 50) -> list[PendingDelivery]:
        """Pending rows whose next attempt is due, oldest first."""
        with self.db.read() as tx:
            rows = tx.rows(f"SELECT {_COLUMNS} FROM notify_outbox WHERE state=? AND next_at<=? ORDER BY seq LIMIT ?",
                           (DeliveryState.PENDING.value, now, limit))
        return [PendingDelivery(int(s), str(n), str(i), str(e), str(p), int(a), float(c)) for s, n, i, e, p, a, c in rows]

    def next_due(self) -> float | None:
        """When the earliest pending row is due (None: nothing is pending)."""
        with self.db.read() as tx:
            row = tx.one("SELECT MIN(next_at) FROM notify_outbox WHERE state=?", (DeliveryState.PENDING.value,))
        return float(row[0]) if row is not None and row[0] is not None else None

    def delivered(self, seq: int, *, now: float) -> None:
        self._finish(seq, DeliveryState.DELIVERED, "", now)

    def failed(self, seq: int, *, error: str, now: float) -> None:
        self._finish(seq, DeliveryState.FAILED, error, now)

    def retry_at(self, seq: int, *, at: float, error: str, now: float) -> None:
        """One more failed attempt; the next one is due at ``at``."""
        with self.db.write() as tx:
            tx.run("UPDATE notify_outbox SET attempts=attempts+1, next_at=?, last_error=?, updated_at=?, token=? "
                   "WHERE seq=? AND state=?", (at, error[:MAX_ERROR], now, self.db.token or 0, seq,
                                               DeliveryState.PENDING.value))

    def _finish(self, seq: int, state: DeliveryState, error: str, now: float) -> None:
        with self.db.write() as tx:
            tx.run("UPDATE notify_outbox SET state=?, attempts=attempts+1, last_error=?, updated_at=?, token=? "
                   "WHERE seq=? AND state=?", (state.value, error[:MAX_ERROR], now, self.db.token or 0, seq,
                                               DeliveryState.PENDING.value))

    def counts(self) -> dict[str, int]:
        """Rows by state."""
        with self.db.read() as tx:
            rows = tx.rows("SELECT state, COUNT(*) FROM notify_outbox GROUP BY state")
        return {str(state): int(count) for state, count in rows}


def _count(tx: Transaction, sql: str, params: Sequence[object]) -> int:
    row = tx.one(sql, params)
    return int(row[0]) if row is not None else 0
