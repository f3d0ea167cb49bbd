"""One SQLite file shared by the state store and the send ledger: WAL mode, ``synchronous=FULL`` (a
committed row is on disk before the request it guards goes out), and serialised transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.errors import StateStoreError


class SqliteFile:
    """A connection usable from several threads, one transaction at a time."""

    def __init__(self, path: Path, *, schema: str, what: str) -> None:
        self.path = path
        self.what = what
        self.lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.executescript(schema)
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"cannot open {what} {path}: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                yield self.db
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                self.db.execute("ROLLBACK")
                raise StateStoreError(f"{self.what} {self.path}: {exc}") from exc

    def close(self) -> None:
        with self.lock:
            self.db.close()
