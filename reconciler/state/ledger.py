"""The send ledger: every SMS is recorded durably *before* it leaves, so none is sent twice or lost.

One row per (backend, campaign, recipient). Life of a row:

    (absent) --commit before the request--> dispatching --reply--> accepted --reports--> delivered
                                                  |                    |                 undelivered
                                                  |                    +-------------->  failed
                                                  +--no usable reply--> (stays dispatching, resolved next)
    dispatching --crash recovery--> accepted/failed (the gateway is asked by user_id)
                                    | absent        (the gateway never saw it: may be sent again)
                                    | unknown       (Ogangi cannot be asked: resent only if the campaign says so)

The row's key is the idempotency key (the SMS gateway's integer ``user_id``), derived from the campaign and
the recipient (``ledger_key``), so a store that has never seen a campaign can still ask the gateway
whether a message went out before sending it. A row ``release`` drops (the gateway abandoned the message
queued, on a stop the campaign's brake asked for) bumps the recipient's generation (``send_generations``):
the message sent when the campaign resumes is a new one to the gateway, under a key of its own, so the
abandoned message's ``failed`` result is never read as the new one's, and a crash before the gateway took
the new one is resolved by asking about the new key (absent: send again), not settled by the old result.
``seq`` orders rows as they were written. Each row carries the lease token of the writer that wrote it:
``dispatching`` rows of an earlier token are what a crashed or cut-off writer left. Writes are batched per
send group and committed durably before the group goes out; the fates of the previous group ride along in
the same commit. Every write is fenced (``Database.write``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from reconciler.state.database import Database, Transaction

#: keys are 62-bit: positive in a signed 64-bit integer (SQLite, PostgreSQL BIGINT, the gateway's JSON)
KEY_BITS = 62


def ledger_key(campaign: str, recipient: str, generation: int = 0) -> int:
    """The row's key and the gateway's ``user_id``: the same in every store, so it can be asked about.
    ``generation`` counts the recipient's released messages (0: the first message, keyed as before there
    were generations)."""
    name = f"{campaign}\x1f{recipient}" + (f"\x1f{generation}" if generation else "")
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - KEY_BITS) or 1


class SendState(StrEnum):
    DISPATCHING = "dispatching"
    ACCEPTED = "accepted"  # taken by the backend, still queued there (where the backend tells)
    SENT = "sent"  # left the backend; delivery not (yet) reported
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    UNKNOWN = "unknown"


FINAL_STATES = frozenset({SendState.DELIVERED, SendState.UNDELIVERED, SendState.FAILED})


@dataclass(frozen=True)
class LedgerRow:
    key: int
    backend: str
    campaign: str
    recipient: str
    content_hash: str
    state: SendState
    remote_id: str = ""
    reason: str = ""
    token: int = 0  # the lease token of the writer that wrote the row


@dataclass(frozen=True)
class NewSend:
    recipient: str
    content_hash: str


_COLUMNS = "key, backend, campaign, recipient, content_hash, state, remote_id, reason, token"


Settlement = tuple[int, SendState, str, str]  # (key, new state, remote id, reason)


#: how far a row has come; a settlement never moves a row back (a reply held until the next group's
#: commit must not undo a delivery report pushed meanwhile, nor a stale query a newer one)
PROGRESS = {SendState.DISPATCHING: 0, SendState.ACCEPTED: 1, SendState.UNKNOWN: 1, SendState.SENT: 2,
            SendState.DELIVERED: 4, SendState.UNDELIVERED: 3, SendState.FAILED: 3}
_PROGRESS_SQL = "CASE state " + " ".join(f"WHEN '{s.value}' THEN {n}" for s, n in PROGRESS.items()) + " END"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _settle(tx: Transaction, updates: Iterable[Settlement]) -> None:
    now = _now()
    tx.many("UPDATE send_ledger SET remote_id=CASE WHEN ?='' THEN remote_id ELSE ? END, "
            f"reason=CASE WHEN {_PROGRESS_SQL} <= ? THEN ? ELSE reason END, "
            f"state=CASE WHEN {_PROGRESS_SQL} <= ? THEN ? ELSE state END, updated_at=? WHERE key=?",
            [(remote_id, remote_id, PROGRESS[state], reason, PROGRESS[state], state.value, now, key)
             for key, state, remote_id, reason in updates])


def _forget(tx: Transaction, keys: Iterable[int]) -> None:
    tx.many("DELETE FROM send_ledger WHERE key=? AND state='dispatching'", [(key,) for key in keys])


def _row(values: tuple) -> LedgerRow:  # type: ignore[type-arg]
    key, backend, campaign, recipient, content_hash, state, remote_id, reason, token = values
    return LedgerRow(int(key), backend, campaign, recipient, content_hash, SendState(state), remote_id, reason,
                     int(token))


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SendLedger:
    """The ledger in the store's database. Thread-safe (the database serialises transactions)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def begin_dispatch(self, backend: str, campaign: str, sends: Sequence[NewSend], *,
                       settle: Iterable[Settlement] = (), forget: Iterable[int] = ()
                       ) -> tuple[list[LedgerRow], list[str]]:
        """Commit rows as ``dispatching`` (durably, with this writer's lease token) and return them, and the
        recipients whose derived key another recipient's row already holds (a 62-bit collision: reported
        as failed by the caller, never sent and never silently dropped). Recipients that already have a
        row are left out: this is what makes a send happen at most once.

        ``settle`` and ``forget`` (what the replies to the previous group said) are written in the same
        transaction, so a group costs one durable write instead of two; until then those rows stay
        ``dispatching``, which is what a crash leaves of a group in flight anyway."""
        token, now = self.db.token or 0, _now()
        with self.db.write() as tx:
            _settle(tx, settle)
            _forget(tx, forget)
            newest = tx.one("SELECT COALESCE(MAX(seq), 0) FROM send_ledger")[0]  # type: ignore[index]
            generations = self._generations(tx, backend, campaign, [s.recipient for s in sends])
            values = [(ledger_key(campaign, s.recipient, generations.get(s.recipient, 0)), backend, campaign,
                       s.recipient, s.content_hash, SendState.DISPATCHING.value, token, now) for s in sends]
            inserted = tx.many("INSERT INTO send_ledger (key, backend, campaign, recipient, content_hash, state, "
                               "token, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", values)
            if inserted == len(values):  # every send got its row, in this order: no need to read them back
                return [LedgerRow(v[0], backend, campaign, v[3], v[4], SendState.DISPATCHING, token=token)
                        for v in values], []
            rows = [_row(r) for r in tx.rows(f"SELECT {_COLUMNS} FROM send_ledger WHERE seq>? ORDER BY seq",
                                             (newest,))]
            missing = {s.recipient for s in sends} - {r.recipient for r in rows}
            if missing:
                missing -= self._known(tx, backend, campaign, sorted(missing))
        return rows, sorted(missing)

    def settle(self, updates: Iterable[Settlement], *, forget: Iterable[int] = ()) -> None:
        """Move rows on: (key, new state, remote id, reason); an empty remote id keeps the old one, and a
        state behind the row's own (``PROGRESS``) leaves state and reason as they are.
        ``forget`` as for ``forget``, in the same transaction."""
        items = list(updates)
        keys = list(forget)
        if items or keys:
            with self.db.write() as tx:
                _settle(tx, items)
                _forget(tx, keys)

    def forget(self, keys: Iterable[int]) -> None:
        """Drop rows the backend provably never received, so their recipients may be sent again."""
        self.settle((), forget=keys)

    def release(self, keys: Iterable[int]) -> None:
        """Drop rows whose message the backend abandoned queued (a stop the campaign's brake asked for):
        it never left, so the recipient may be sent again when the campaign resumes, as a new message
        (the recipient's generation goes up in the same transaction: the next row gets a new key)."""
        wanted = list(keys)
        if not wanted:
            return
        with self.db.write() as tx:
            released: list[tuple[str, str, str]] = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                released += [(b, c, r) for b, c, r in tx.rows(
                    f"SELECT backend, campaign, recipient FROM send_ledger WHERE key IN ({_marks(len(chunk))}) "
                    "AND state IN ('accepted', 'failed')", chunk)]
            tx.many("INSERT INTO send_generations (backend, campaign, recipient, generation) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT (backend, campaign, recipient) DO UPDATE SET "
                    "generation = send_generations.generation + 1", released)
            tx.many("DELETE FROM send_ledger WHERE key=? AND state IN ('accepted', 'failed')",
                    [(key,) for key in wanted])

    def forget_unknown(self, backend: str, campaign: str, recipients: Iterable[str]) -> None:
        """Drop ``unknown`` rows of these recipients: the campaign chose to risk a duplicate and resend."""
        items = [(backend, campaign, r) for r in recipients]
        if items:
            with self.db.write() as tx:
                tx.many("DELETE FROM send_ledger WHERE backend=? AND campaign=? AND recipient=? "
                        "AND state='unknown'", items)

    def rows(self, backend: str, campaign: str, states: Iterable[SendState] | None = None) -> list[LedgerRow]:
        query = f"SELECT {_COLUMNS} FROM send_ledger WHERE backend=? AND campaign=?"
        args: list[object] = [backend, campaign]
        if states is not None:
            wanted = [s.value for s in states]
            query += f" AND state IN ({_marks(len(wanted))})"
            args += wanted
        with self.db.read() as tx:
            return [_row(r) for r in tx.rows(query + " ORDER BY seq", args)]

    def last_seq(self) -> int:
        """The newest row's sequence number (0 when empty): rows written later have larger ones."""
        with self.db.read() as tx:
            return int(tx.one("SELECT COALESCE(MAX(seq), 0) FROM send_ledger")[0])  # type: ignore[index]

    def pages(self, backend: str, campaign: str, states: Iterable[SendState], *, size: int,
              up_to: int | None = None) -> Iterator[list[LedgerRow]]:
        """The rows in ``states`` (written up to sequence number ``up_to``), in order, ``size`` at a time:
        memory stays bounded whatever the campaign's size (rows settled meanwhile do not disturb the walk:
        it continues after the last row)."""
        wanted = [s.value for s in states]
        query = (f"SELECT seq, {_COLUMNS} FROM send_ledger WHERE backend=? AND campaign=? AND seq>? AND seq<=? "
                 f"AND state IN ({_marks(len(wanted))}) ORDER BY seq LIMIT ?")
        last, highest = 0, self.last_seq() if up_to is None else up_to
        while True:
            with self.db.read() as tx:
                found = tx.rows(query, [backend, campaign, last, highest, *wanted, size])
            if not found:
                return
            yield [_row(r[1:]) for r in found]
            last = int(found[-1][0])

    def remote_ids(self, backend: str, campaign: str, states: Iterable[SendState]) -> tuple[str, ...]:
        """The distinct backend ids (tasks) of the rows in ``states``, sorted."""
        wanted = [s.value for s in states]
        with self.db.read() as tx:
            found = tx.rows(f"SELECT DISTINCT remote_id FROM send_ledger WHERE backend=? AND campaign=? "
                            f"AND remote_id != '' AND state IN ({_marks(len(wanted))}) ORDER BY remote_id",
                            [backend, campaign, *wanted])
        return tuple(r[0] for r in found)

    def known(self, backend: str, campaign: str, recipients: Sequence[str]) -> set[str]:
        """Which of ``recipients`` already have a row (in any state)."""
        if not recipients:
            return set()
        with self.db.read() as tx:
            return self._known(tx, backend, campaign, recipients)

    @staticmethod
    def _known(tx: Transaction, backend: str, campaign: str, recipients: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(recipients), 500):
            chunk = list(recipients[start:start + 500])
            found |= {r[0] for r in tx.rows(f"SELECT recipient FROM send_ledger WHERE backend=? AND campaign=? "
                                            f"AND recipient IN ({_marks(len(chunk))})", [backend, campaign, *chunk])}
        return found

    @staticmethod
    def _generations(tx: Transaction, backend: str, campaign: str, recipients: Sequence[str]) -> dict[str, int]:
        """The generation of each of ``recipients`` that has had a message released (the others: 0)."""
        found: dict[str, int] = {}
        for start in range(0, len(recipients), 500):
            chunk = list(recipients[start:start + 500])
            found.update((r, int(g)) for r, g in tx.rows(
                f"SELECT recipient, generation FROM send_generations WHERE backend=? AND campaign=? "
                f"AND recipient IN ({_marks(len(chunk))})", [backend, campaign, *chunk]))
        return found

    def recipients_mark(self, backend: str, campaign: str) -> tuple[int, int]:
        """(rows, newest row's ``seq``) of a campaign: equal marks mean the same rows, i.e. the same
        recipients. A row added has a ``seq`` above every earlier one and ``seq`` is never reused, so a set
        with the same newest row holds only rows that were there, and with as many rows, all of them."""
        with self.db.read() as tx:
            found = tx.one("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM send_ledger WHERE backend=? AND campaign=?",
                           (backend, campaign))
        assert found is not None
        return int(found[0]), int(found[1])

    def campaigns(self) -> list[tuple[str, str]]:
        """Every (backend, campaign) with rows, declared or not (for pruning what was removed from git)."""
        with self.db.read() as tx:
            return [(b, c) for b, c in tx.rows(
                "SELECT DISTINCT backend, campaign FROM send_ledger ORDER BY backend, campaign")]

    def counts(self, backend: str, campaign: str) -> dict[str, int]:
        with self.db.read() as tx:
            found = tx.rows("SELECT state, COUNT(*) FROM send_ledger WHERE backend=? AND campaign=? GROUP BY state",
                            (backend, campaign))
        return {state: int(n) for state, n in found}

    def by_keys(self, keys: Sequence[int]) -> list[LedgerRow]:
        out: list[LedgerRow] = []
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            with self.db.read() as tx:
                out += [_row(r) for r in tx.rows(
                    f"SELECT {_COLUMNS} FROM send_ledger WHERE key IN ({_marks(len(chunk))})", chunk)]
        return out


class DeliveryLedger(Protocol):
    """What reading SMS outlooks and delivery fates needs of a ledger: the ``SendLedger`` of a writer, or the
    ``ReadOnlyLedger`` of ``reconcile status``."""

    def campaigns(self) -> list[tuple[str, str]]: ...

    def counts(self, backend: str, campaign: str) -> dict[str, int]: ...

    def known(self, backend: str, campaign: str, recipients: Sequence[str]) -> set[str]: ...

    def recipients_mark(self, backend: str, campaign: str) -> tuple[int, int]: ...

    def remote_ids(self, backend: str, campaign: str, states: Iterable[SendState]) -> tuple[str, ...]: ...

    def pages(self, backend: str, campaign: str, states: Iterable[SendState], *, size: int,
              up_to: int | None = None) -> Iterator[list[LedgerRow]]: ...

    def settle(self, updates: Iterable[Settlement], *, forget: Iterable[int] = ()) -> None: ...


class ReadOnlyLedger:
    """The ledger as a reader (``reconcile status``) sees it: what backends report about sent messages moves
    the counts in memory only, since a reader holds no lease and writes nothing."""

    def __init__(self, ledger: SendLedger) -> None:
        self._ledger = ledger
        self._moved: dict[int, tuple[str, str, SendState, SendState]] = {}  # key -> backend, campaign, was, now

    def campaigns(self) -> list[tuple[str, str]]:
        return self._ledger.campaigns()

    def known(self, backend: str, campaign: str, recipients: Sequence[str]) -> set[str]:
        return self._ledger.known(backend, campaign, recipients)

    def recipients_mark(self, backend: str, campaign: str) -> tuple[int, int]:
        return self._ledger.recipients_mark(backend, campaign)

    def remote_ids(self, backend: str, campaign: str, states: Iterable[SendState]) -> tuple[str, ...]:
        return self._ledger.remote_ids(backend, campaign, states)

    def pages(self, backend: str, campaign: str, states: Iterable[SendState], *, size: int,
              up_to: int | None = None) -> Iterator[list[LedgerRow]]:
        return self._ledger.pages(backend, campaign, states, size=size, up_to=up_to)

    def settle(self, updates: Iterable[Settlement], *, forget: Iterable[int] = ()) -> None:
        items = list(updates)
        rows = {r.key: r for r in self._ledger.by_keys([key for key, *_ in items])}
        for key, state, _, _ in items:
            row = rows.get(key)
            if row is None:
                continue
            was = self._moved.get(key, (row.backend, row.campaign, row.state, row.state))[3]
            if PROGRESS[was] <= PROGRESS[state]:
                self._moved[key] = (row.backend, row.campaign, row.state, state)

    def counts(self, backend: str, campaign: str) -> dict[str, int]:
        counts = self._ledger.counts(backend, campaign)
        for b, c, was, now in self._moved.values():
            if (b, c) == (backend, campaign) and was is not now:
                counts[was.value] -= 1
                counts[now.value] = counts.get(now.value, 0) + 1
        return {state: n for state, n in counts.items() if n}
