"""The state store: what the reconciler must remember between runs because no backend tells it.

- the inventory: objects this tool created, so ``--prune`` only ever touches its own objects;
- last-applied values of write-only fields (IoT schedules, callbacks and settings have no GET), so an
  unchanged schedule is not sent again;
- attempt counters (YateOTA participant retries);
- the send ledger (``reconciler.state.ledger``) and the writer lease (``reconciler.state.lease``), in the
  same database.

The planner never touches the store: the engine reads a ``StoreView`` (plain data, ``reconciler.remembered``) before
planning and the executor records outcomes after each action. ``open_store`` opens SQLite
(``sqlite:///path``, one machine) or PostgreSQL (``postgresql://...``, shared by CI, daemons and people).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.state.database import Database, is_postgres_url, open_database, sqlite_path
from reconciler.state.history import History
from reconciler.state.lease import WriterLease, read_holder
from reconciler.state.ledger import SendLedger
from reconciler.remembered import InventoryEntry, StoreView, canonical

DEFAULT_STATE_URL = "sqlite:///.reconciler/state.db"
STATE_ENV = "RECONCILER_STATE"

__all__ = ["DEFAULT_STATE_URL", "STATE_ENV", "InventoryEntry", "StateStore", "Store", "StoreView", "canonical",
           "open_store", "local_store_files"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StateStore:
    """Inventory, last-applied values and attempt counters; every write is fenced (``Database.write``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def view(self) -> StoreView:
        with self.db.read() as tx:
            inventory = frozenset(InventoryEntry(*row) for row in tx.rows(
                "SELECT backend, kind, name, remote_id FROM inventory"))
            applied = {(b, s, k): v for b, s, k, v in tx.rows("SELECT backend, scope, key, value FROM applied")}
            attempts = {(b, k): int(c) for b, k, c in tx.rows("SELECT backend, key, count FROM attempts")}
        return StoreView(available=True, inventory=inventory, applied=applied, attempts=attempts)

    def record_created(self, entry: InventoryEntry) -> None:
        """One resource just created: committed at once, before anything else is done with it."""
        self.record_all_created([entry])

    def record_all_created(self, entries: Sequence[InventoryEntry]) -> None:
        """Resources found at once (an import's adoptions), in one transaction: one commit for all rather
        than one per entry (600 adoptions took 0.3-2 s one by one)."""
        now = _now()
        rows = [(entry.backend, entry.kind, entry.name, entry.remote_id, now) for entry in entries]
        if not rows:
            return
        with self.db.write() as tx:
            tx.many("INSERT INTO inventory (backend, kind, name, remote_id, created_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (backend, kind, remote_id) DO UPDATE SET name=excluded.name", rows)

    def forget(self, backend: str, kind: str, remote_id: str) -> None:
        with self.db.write() as tx:
            tx.run("DELETE FROM inventory WHERE backend=? AND kind=? AND remote_id=?", (backend, kind, remote_id))

    def record_applied(self, items: Iterable[tuple[str, str, str, str]]) -> None:
        """Store (backend, scope, key, canonical value) tuples in one transaction."""
        now = _now()
        rows = [(*item, now) for item in items]
        if not rows:
            return
        with self.db.write() as tx:
            tx.many("INSERT INTO applied (backend, scope, key, value, applied_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (backend, scope, key) DO UPDATE SET value=excluded.value, "
                    "applied_at=excluded.applied_at", rows)

    def forget_applied(self, backend: str, scope: str, key_prefix: str) -> None:
        with self.db.write() as tx:
            tx.run("DELETE FROM applied WHERE backend=? AND scope=? AND substr(key, 1, ?)=?",
                   (backend, scope, len(key_prefix), key_prefix))

    def add_attempt(self, backend: str, key: str) -> None:
        with self.db.write() as tx:
            tx.run("INSERT INTO attempts (backend, key, count) VALUES (?, ?, 1) "
                   "ON CONFLICT (backend, key) DO UPDATE SET count = attempts.count + 1", (backend, key))


@dataclass
class Store:
    """One open store, the one handle a pass reads and records through: the inventory, last-applied values
    and attempts (``state``, read as one ``view``), the send ledger and the history on the same database,
    and, for a writer, the lease."""

    db: Database
    state: StateStore
    ledger: SendLedger
    history: History
    lease: WriterLease | None = None

    def view(self) -> StoreView:
        """What the planner may know from this store."""
        return self.state.view()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One consistent snapshot for a reader's whole read phase, so the view and the ledger's counts
        agree; a writer holds the lease instead (nobody else writes while it does)."""
        if self.lease is not None:
            yield
            return
        with self.db.snapshot():
            yield

    def established(self) -> bool:
        """Whether the store had a writer before the current one (for a reader: before the next one, whose
        token will follow the stored one), so a campaign with no record in it is new, not lost."""
        if self.lease is not None:
            return (self.lease.token or 0) > 1
        return read_holder(self.db) is not None

    def close(self) -> None:
        if self.lease is not None:
            self.lease.release()
        self.db.close()


def open_store(url: str, *, base_dir: Path = Path("."), writer: bool) -> Store | None:
    """Open the store behind ``url``. A reader (dry run, status) gets None when no store exists yet and
    never creates one; a writer creates or migrates it (the caller then takes the lease)."""
    db = open_database(url, base_dir=base_dir, create=writer)
    if db is None:
        return None
    return Store(db=db, state=StateStore(db), ledger=SendLedger(db), history=History(db))


def local_store_files(url: str, *, base_dir: Path = Path(".")) -> tuple[Path, ...]:
    """The files a SQLite store writes (the database and its journal), for the daemon's file watcher to
    ignore; none for PostgreSQL."""
    if is_postgres_url(url):
        return ()
    path = sqlite_path(url, base_dir=base_dir)
    return tuple(path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm", "-journal"))
