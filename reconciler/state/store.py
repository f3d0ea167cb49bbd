"""The state store: what the reconciler must remember between runs because no backend tells it.

- the inventory: objects this tool created, so ``--prune`` only ever touches its own objects;
- last-applied values of write-only fields (IoT schedules, callbacks and settings have no GET), so an
  unchanged schedule is not sent again;
- attempt counters (YateOTA participant retries).

The planner never touches the store: the CLI reads a ``StoreView`` (plain data) before planning and the
executor records outcomes after each action. SQLite is the default (``sqlite:///path``); the interface is
small so a PostgreSQL store can follow for shared use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reconciler.errors import StateStoreError
from reconciler.state.sqlite import SqliteFile

DEFAULT_STATE_URL = "sqlite:///.reconciler/state.db"


@dataclass(frozen=True)
class InventoryEntry:
    """An object this tool created: ``kind`` is "campaign" or "package"."""

    backend: str
    kind: str
    name: str
    remote_id: str


@dataclass(frozen=True)
class StoreView:
    """What the planner may know from the store. ``available`` is false without a store (a CI runner
    with nothing persisted): write-only values are then unknown and planned again, and the plan says so."""

    available: bool = True
    inventory: frozenset[InventoryEntry] = frozenset()
    applied: Mapping[tuple[str, str, str], str] = field(default_factory=dict)
    attempts: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def owns(self, backend: str, kind: str, remote_id: str) -> bool:
        return any(e.backend == backend and e.kind == kind and e.remote_id == remote_id for e in self.inventory)

    def last_applied(self, backend: str, scope: str, key: str) -> str | None:
        return self.applied.get((backend, scope, key))


def canonical(value: Any) -> str:
    """The form in which applied values are stored and compared (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class StateStore(Protocol):
    """What the CLI and executor need from a store."""

    def view(self) -> StoreView: ...

    def record_created(self, entry: InventoryEntry) -> None: ...

    def forget(self, backend: str, kind: str, remote_id: str) -> None: ...

    def record_applied(self, items: Iterable[tuple[str, str, str, str]]) -> None:
        """Store (backend, scope, key, canonical value) tuples in one transaction."""
        ...

    def forget_applied(self, backend: str, scope: str, key_prefix: str) -> None: ...

    def add_attempt(self, backend: str, key: str) -> None: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS inventory (
    backend TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, remote_id TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (backend, kind, remote_id)
);
CREATE TABLE IF NOT EXISTS applied (
    backend TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (backend, scope, key)
);
CREATE TABLE IF NOT EXISTS attempts (
    backend TEXT NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (backend, key)
);
"""


class SqliteStateStore:
    """The default store: one SQLite file in WAL mode. Safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path, schema=_SCHEMA, what="state store")
        self._transaction = self._file.transaction

    def view(self) -> StoreView:
        with self._transaction() as db:
            inventory = frozenset(
                InventoryEntry(*row) for row in db.execute("SELECT backend, kind, name, remote_id FROM inventory")
            )
            applied = {(b, s, k): v for b, s, k, v in db.execute("SELECT backend, scope, key, value FROM applied")}
            attempts = {(b, k): c for b, k, c in db.execute("SELECT backend, key, count FROM attempts")}
        return StoreView(available=True, inventory=inventory, applied=applied, attempts=attempts)

    def record_created(self, entry: InventoryEntry) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO inventory (backend, kind, name, remote_id) VALUES (?, ?, ?, ?)",
                (entry.backend, entry.kind, entry.name, entry.remote_id),
            )

    def forget(self, backend: str, kind: str, remote_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM inventory WHERE backend=? AND kind=? AND remote_id=?", (backend, kind, remote_id))

    def record_applied(self, items: Iterable[tuple[str, str, str, str]]) -> None:
        rows = list(items)
        if not rows:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO applied (backend, scope, key, value) VALUES (?, ?, ?, ?)", rows
            )

    def forget_applied(self, backend: str, scope: str, key_prefix: str) -> None:
        with self._transaction() as db:
            db.execute(
                "DELETE FROM applied WHERE backend=? AND scope=? AND substr(key, 1, ?)=?",
                (backend, scope, len(key_prefix), key_prefix),
            )

    def add_attempt(self, backend: str, key: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO attempts (backend, key, count) VALUES (?, ?, 1) "
                "ON CONFLICT (backend, key) DO UPDATE SET count = count + 1",
                (backend, key),
            )

    def close(self) -> None:
        self._file.close()


def state_file_path(url: str, *, base_dir: Path = Path(".")) -> Path:
    """The SQLite file named by ``--state URL``: ``sqlite:///relative/path``, ``sqlite:////abs/path``,
    or a plain file path. ``postgresql://`` is reserved for the shared store (not yet available)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        raise StateStoreError("PostgreSQL state stores are not available in this version; use sqlite:///PATH")
    path_text = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    if "://" in path_text:
        raise StateStoreError(f"unsupported state store URL {url!r}; use sqlite:///PATH")
    path = Path(path_text)
    return path if path.is_absolute() else base_dir / path


def open_state_store(url: str, *, base_dir: Path = Path(".")) -> SqliteStateStore:
    return SqliteStateStore(state_file_path(url, base_dir=base_dir))
