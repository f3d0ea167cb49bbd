"""The send ledger: every SMS is recorded durably *before* it leaves, so none is sent twice or lost.

One row per (backend, campaign, recipient). Life of a row:

    (absent) --commit before the request--> dispatching --reply--> accepted --reports--> delivered
                                                  |                    |                 undelivered
                                                  |                    +-------------->  failed
                                                  +--no usable reply--> (stays dispatching, resolved next)
    dispatching --crash recovery--> accepted/failed (the gateway is asked by user_id)
                                    | absent        (the gateway never saw it: may be sent again)
                                    | unknown       (Ogangi cannot be asked: resent only if the campaign says so)

The row id is the idempotency key (the SMS gateway's integer ``user_id``). Writes are batched per send
group and committed with ``synchronous=FULL`` before the group goes out; the fates of the previous
group ride along in the same commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from reconciler.state.sqlite import SqliteFile


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


@dataclass(frozen=True)
class NewSend:
    recipient: str
    content_hash: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS send_ledger (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    backend TEXT NOT NULL, campaign TEXT NOT NULL, recipient TEXT NOT NULL,
    content_hash TEXT NOT NULL, state TEXT NOT NULL, remote_id TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (backend, campaign, recipient)
);
CREATE INDEX IF NOT EXISTS send_ledger_state ON send_ledger (backend, campaign, state);
"""
_COLUMNS = "key, backend, campaign, recipient, content_hash, state, remote_id, reason"


Settlement = tuple[int, SendState, str, str]  # (key, new state, remote id, reason)


#: how far a row has come; a settlement never moves a row back (a reply held until the next group's
#: commit must not undo a delivery report pushed meanwhile, nor a stale query a newer one)
PROGRESS = {SendState.DISPATCHING: 0, SendState.ACCEPTED: 1, SendState.UNKNOWN: 1, SendState.SENT: 2,
            SendState.DELIVERED: 3, SendState.UNDELIVERED: 3, SendState.FAILED: 3}
_PROGRESS_SQL = "CASE state " + " ".join(f"WHEN '{s.value}' THEN {n}" for s, n in PROGRESS.items()) + " END"


def _settle(db: sqlite3.Connection, updates: Iterable[Settlement]) -> None:
    items = [(remote_id, remote_id, PROGRESS[state], reason, PROGRESS[state], state.value, key)
             for key, state, remote_id, reason in updates]
    if items:
        db.executemany(
            "UPDATE send_ledger SET remote_id=CASE WHEN ?='' THEN remote_id ELSE ? END, "
            f"reason=CASE WHEN {_PROGRESS_SQL} <= ? THEN ? ELSE reason END, "
            f"state=CASE WHEN {_PROGRESS_SQL} <= ? THEN ? ELSE state END, "
            "updated_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE key=?", items)


def _forget(db: sqlite3.Connection, keys: Iterable[int]) -> None:
    items = [(key,) for key in keys]
    if items:
        db.executemany("DELETE FROM send_ledger WHERE key=? AND state='dispatching'", items)


def _row(values: tuple) -> LedgerRow:  # type: ignore[type-arg]
    key, backend, campaign, recipient, content_hash, state, remote_id, reason = values
    return LedgerRow(key, backend, campaign, recipient, content_hash, SendState(state), remote_id, reason)


class SendLedger:
    """The ledger in a SQLite file (the state store's file by default). Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path, schema=_SCHEMA, what="send ledger")
        self._transaction = self._file.transaction
        self._lock = self._file.lock
        self._db = self._file.db

    def close(self) -> None:
        self._file.close()

    def begin_dispatch(self, backend: str, campaign: str, sends: Sequence[NewSend], *,
                       settle: Iterable[Settlement] = (), forget: Iterable[int] = ()) -> list[LedgerRow]:
        """Commit rows as ``dispatching`` (durably) and return them with their keys. Recipients that
        already have a row are left out: this is what makes a send happen at most once.

        ``settle`` and ``forget`` (what the replies to the previous group said) are written in the same
        transaction, so a group costs one durable write instead of two; until then those rows stay
        ``dispatching``, which is what a crash leaves of a group in flight anyway."""
        with self._transaction() as db:
            _settle(db, settle)
            _forget(db, forget)
            # keys only grow (AUTOINCREMENT), so the rows this statement adds are those after the newest key
            newest = db.execute("SELECT COALESCE(MAX(key), 0) FROM send_ledger").fetchone()[0]
            db.executemany(
                "INSERT OR IGNORE INTO send_ledger (backend, campaign, recipient, content_hash, state) "
                "VALUES (?, ?, ?, ?, ?)",
                [(backend, campaign, s.recipient, s.content_hash, SendState.DISPATCHING.value) for s in sends])
            return [_row(r) for r in db.execute(f"SELECT {_COLUMNS} FROM send_ledger WHERE key>? ORDER BY key",
                                                (newest,))]

    def settle(self, updates: Iterable[Settlement], *, forget: Iterable[int] = ()) -> None:
        """Move rows on: (key, new state, remote id, reason); an empty remote id keeps the old one, and a
        state behind the row's own (``PROGRESS``) leaves state and reason as they are.
        ``forget`` as for ``forget``, in the same transaction."""
        items = list(updates)
        keys = list(forget)
        if items or keys:
            with self._transaction() as db:
                _settle(db, items)
                _forget(db, keys)

    def forget(self, keys: Iterable[int]) -> None:
        """Drop rows the backend provably never received, so their recipients may be sent again."""
        self.settle((), forget=keys)

    def forget_unknown(self, backend: str, campaign: str, recipients: Iterable[str]) -> None:
        """Drop ``unknown`` rows of these recipients: the campaign chose to risk a duplicate and resend."""
        items = [(backend, campaign, r) for r in recipients]
        if items:
            with self._transaction() as db:
                db.executemany("DELETE FROM send_ledger WHERE backend=? AND campaign=? AND recipient=? "
                               "AND state='unknown'", items)

    def rows(self, backend: str, campaign: str, states: Iterable[SendState] | None = None) -> list[LedgerRow]:
        query = f"SELECT {_COLUMNS} FROM send_ledger WHERE backend=? AND campaign=?"
        args: list[object] = [backend, campaign]
        if states is not None:
            wanted = [s.value for s in states]
            query += f" AND state IN ({','.join('?' * len(wanted))})"
            args += wanted
        with self._lock:
            return [_row(r) for r in self._db.execute(query + " ORDER BY key", args)]

    def last_key(self) -> int:
        """The newest row's key (0 when empty): keys only grow, so rows written later have larger ones."""
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(key), 0) FROM send_ledger").fetchone()[0])

    def pages(self, backend: str, campaign: str, states: Iterable[SendState], *, size: int,
              up_to: int | None = None) -> Iterator[list[LedgerRow]]:
        """The rows in ``states`` (with keys up to ``up_to``), in key order, ``size`` at a time: memory stays
        bounded whatever the campaign's size (rows settled meanwhile do not disturb the walk: it continues
        after the last key)."""
        wanted = [s.value for s in states]
        query = (f"SELECT {_COLUMNS} FROM send_ledger WHERE backend=? AND campaign=? AND key>? AND key<=? "
                 f"AND state IN ({','.join('?' * len(wanted))}) ORDER BY key LIMIT ?")
        last, highest = 0, self.last_key() if up_to is None else up_to
        while True:
            with self._lock:
                page = [_row(r) for r in self._db.execute(query, [backend, campaign, last, highest, *wanted, size])]
            if not page:
                return
            yield page
            last = page[-1].key

    def remote_ids(self, backend: str, campaign: str, states: Iterable[SendState]) -> tuple[str, ...]:
        """The distinct backend ids (tasks) of the rows in ``states``, sorted."""
        wanted = [s.value for s in states]
        with self._lock:
            found = self._db.execute(
                f"SELECT DISTINCT remote_id FROM send_ledger WHERE backend=? AND campaign=? AND remote_id != '' "
                f"AND state IN ({','.join('?' * len(wanted))}) ORDER BY remote_id", [backend, campaign, *wanted])
            return tuple(r[0] for r in found)

    def known(self, backend: str, campaign: str, recipients: Sequence[str]) -> set[str]:
        """Which of ``recipients`` already have a row (in any state)."""
        if not recipients:
            return set()
        marks = ",".join("?" * len(recipients))
        with self._lock:
            found = self._db.execute(
                f"SELECT recipient FROM send_ledger WHERE backend=? AND campaign=? AND recipient IN ({marks})",
                [backend, campaign, *recipients])
            return {r[0] for r in found}

    def campaigns(self) -> list[tuple[str, str]]:
        """Every (backend, campaign) with rows, declared or not (for pruning what was removed from git)."""
        with self._lock:
            return [(b, c) for b, c in self._db.execute(
                "SELECT DISTINCT backend, campaign FROM send_ledger ORDER BY backend, campaign")]

    def counts(self, backend: str, campaign: str) -> dict[str, int]:
        with self._lock:
            found = self._db.execute(
                "SELECT state, COUNT(*) FROM send_ledger WHERE backend=? AND campaign=? GROUP BY state",
                (backend, campaign))
            return {state: n for state, n in found}

    def by_keys(self, keys: Sequence[int]) -> list[LedgerRow]:
        out: list[LedgerRow] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            with self._lock:
                out += [_row(r) for r in self._db.execute(
                    f"SELECT {_COLUMNS} FROM send_ledger WHERE key IN ({','.join('?' * len(chunk))})", chunk)]
        return out
