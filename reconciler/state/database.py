"""The store's database: one SQLite file (one machine) or one PostgreSQL database (CI, daemons and people
on several machines), behind one small contract so the state store, the send ledger and the writer lease
are written once and behave the same on both.

SQL is written once, with ``?`` placeholders and statements both engines accept (``ON CONFLICT``,
``CASE``, ``COALESCE``); the PostgreSQL side swaps placeholders. Every write runs in ``write()``, which
first checks the fencing token when the caller holds the writer lease (``fence``), so a writer that lost
its lease cannot record anything (``reconciler.state.lease``). Reads run in ``read()``; ``snapshot()``
keeps one read transaction open across several reads so a dry run sees one consistent state.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from reconciler.errors import StateStoreError

#: the layout this code reads and writes; a store with a newer one is refused (written by a newer release)
SCHEMA_VERSION = 5  # 2: the lease and derived ledger keys; 3: history; 4: the notification outbox;
#                    5: send generations (a released message is resent under a key of its own)

#: every table and index is created IF NOT EXISTS, so migrating a store of an earlier version adds what it
#: lacks (from 3: ``notify_outbox``, ``reconciler.state.outbox``; from 4: ``send_generations``,
#: ``reconciler.state.ledger``) and leaves the rest as it is
_TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS lease (
    name TEXT PRIMARY KEY, token BIGINT NOT NULL, holder TEXT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL,
    command TEXT NOT NULL, since TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL, released BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS inventory (
    backend TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, remote_id TEXT NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (backend, kind, remote_id)
);
CREATE TABLE IF NOT EXISTS applied (
    backend TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    applied_at TEXT NOT NULL, PRIMARY KEY (backend, scope, key)
);
CREATE TABLE IF NOT EXISTS attempts (
    backend TEXT NOT NULL, key TEXT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY (backend, key)
);
CREATE TABLE IF NOT EXISTS send_ledger (
    seq {seq}, key BIGINT NOT NULL UNIQUE,
    backend TEXT NOT NULL, campaign TEXT NOT NULL, recipient TEXT NOT NULL,
    content_hash TEXT NOT NULL, state TEXT NOT NULL, remote_id TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '', token BIGINT NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,
    UNIQUE (backend, campaign, recipient)
);
CREATE INDEX IF NOT EXISTS send_ledger_state ON send_ledger (backend, campaign, state);
CREATE TABLE IF NOT EXISTS send_generations (
    backend TEXT NOT NULL, campaign TEXT NOT NULL, recipient TEXT NOT NULL, generation BIGINT NOT NULL,
    PRIMARY KEY (backend, campaign, recipient)
);
CREATE TABLE IF NOT EXISTS history (
    seq {seq}, at TEXT NOT NULL, at_epoch DOUBLE PRECISION NOT NULL, revision TEXT NOT NULL, who TEXT NOT NULL,
    command TEXT NOT NULL, seconds DOUBLE PRECISION NOT NULL, ok BIGINT NOT NULL, actions TEXT NOT NULL,
    campaigns TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_at ON history (at_epoch);
CREATE TABLE IF NOT EXISTS notify_outbox (
    seq {seq}, notification TEXT NOT NULL, event_id TEXT NOT NULL, event TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '', condition_open BIGINT NOT NULL DEFAULT 0, payload TEXT NOT NULL,
    state TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, next_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    last_error TEXT NOT NULL DEFAULT '', token BIGINT NOT NULL DEFAULT 0,
    UNIQUE (notification, event_id)
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (state, next_at);
CREATE INDEX IF NOT EXISTS notify_outbox_open ON notify_outbox (condition_open, notification, subject);
"""

#: version 1 (before the lease): the ledger's key was its autoincrement row id. Rows keep that key (it is the
#: user_id the gateway knows them by) and it becomes their sequence number too.
_SQLITE_FROM_1 = """
ALTER TABLE send_ledger RENAME TO send_ledger_v1;
DROP INDEX IF EXISTS send_ledger_state;
{tables}
INSERT INTO send_ledger (seq, key, backend, campaign, recipient, content_hash, state, remote_id, reason, token,
                         updated_at)
    SELECT key, key, backend, campaign, recipient, content_hash, state, remote_id, reason, 0, updated_at
    FROM send_ledger_v1;
DROP TABLE send_ledger_v1;
"""


class Cursor(Protocol):
    """What a transaction offers (sqlite3's and psycopg's cursors both fit)."""

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed; after ``executemany``, summed over its rows (both drivers do)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class FenceCheck(Protocol):
    def __call__(self, tx: Transaction) -> None: ...


@dataclass
class Transaction:
    """One transaction: ``rows`` and ``one`` read, ``run`` and ``many`` write; SQL uses ``?``."""

    cursor: Cursor
    placeholder: str

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(self._sql(sql), params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` once per row; the rows it changed in all (-1 when the driver cannot tell)."""
        if not rows:
            return 0
        self.cursor.executemany(self._sql(sql), rows)
        return int(self.cursor.rowcount)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(self._sql(sql), params)
        return [tuple(r) for r in self.cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self.cursor.execute(self._sql(sql), params)
        found = self.cursor.fetchone()
        return tuple(found) if found is not None else None


class Database:
    """A connection used by one thread at a time (the lease renewer is a second thread)."""

    dialect = ""
    placeholder = "?"
    #: seconds since the epoch by the database's clock (the server decides lease expiry, not the writer)
    now_sql = ""
    for_share = ""

    def __init__(self, where: str) -> None:
        self.where = where  # for messages: a path, or a URL without its password
        self.lock = threading.RLock()
        self.fence: FenceCheck | None = None  # set while this process holds the writer lease
        self.token: int | None = None  # that lease's token, written on the rows it sends
        self._snapshot: Transaction | None = None

    # --- transactions ----------------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """A write transaction; fenced when this process holds the writer lease, refused when it does not
        (a dry run or ``status`` never writes)."""
        with self.lock, self._transaction(write=True) as tx:
            if self.fence is None:
                raise StateStoreError(f"state store {self.where}: refusing to write without the writer lease")
            self.fence(tx)
            yield tx

    @contextmanager
    def write_unfenced(self) -> Iterator[Transaction]:
        """For the lease itself (acquiring and renewing it is how a token becomes current)."""
        with self.lock, self._transaction(write=True) as tx:
            yield tx

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        with self.lock:
            if self._snapshot is not None:
                yield self._snapshot
                return
            with self._transaction(write=False) as tx:
                yield tx

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every ``read()`` inside sees the same committed state (one read-only transaction)."""
        with self.lock:
            if self._snapshot is not None:
                yield
                return
            with self._transaction(write=False) as tx:
                self._snapshot = tx
                try:
                    yield
                finally:
                    self._snapshot = None

    def _transaction(self, *, write: bool) -> Any:
        raise NotImplementedError

    # --- schema ----------------------------------------------------------------------------------------

    def version(self) -> int | None:
        """The stored schema version, or None when this database holds no store yet."""
        raise NotImplementedError

    def prepare(self, *, create: bool) -> bool:
        """Check (and, for a writer, create or migrate) the schema; False when there is no store and
        ``create`` is false (a dry run against a store nobody wrote yet)."""
        found = self.version()
        if found is not None and found > SCHEMA_VERSION:
            raise StateStoreError(f"state store {self.where} has schema version {found}, newer than this release "
                                  f"understands ({SCHEMA_VERSION}); upgrade campaign-reconciler")
        if found == SCHEMA_VERSION:
            return True
        if not create:
            if found is None:
                return False
            raise StateStoreError(f"state store {self.where} has schema version {found}; a writer (apply or "
                                  f"watch) upgrades it to {SCHEMA_VERSION} first")
        self._migrate(found)
        return True

    def _migrate(self, found: int | None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    """WAL mode, ``synchronous=FULL``: a committed row is on disk before the request it guards goes out."""

    dialect = "sqlite"
    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
        try:
            self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA busy_timeout=10000")
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"cannot open state store {path}: {exc}") from exc

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Transaction]:
        try:
            self.db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise StateStoreError(f"state store {self.path}: {exc}") from exc
        try:
            yield Transaction(self.db.cursor(), "?")
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self.db.execute("ROLLBACK")
            raise StateStoreError(f"state store {self.path}: {exc}") from exc
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def version(self) -> int | None:
        with self.lock:
            return self._stored_version()

    def _stored_version(self) -> int | None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "schema_version" in tables:
            row = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            return int(row[0]) if row and row[0] is not None else None
        return 1 if "send_ledger" in tables or "inventory" in tables else None

    def _migrate(self, found: int | None) -> None:
        tables = _TABLES.format(seq="INTEGER PRIMARY KEY AUTOINCREMENT")
        with self.lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                found = self._stored_version()  # again, inside the lock: another writer may have done it
                if found != SCHEMA_VERSION:
                    script = _SQLITE_FROM_1.format(tables=tables) if found == 1 else tables
                    for statement in filter(str.strip, script.split(";")):
                        self.db.execute(statement)
                    self.db.execute("DELETE FROM schema_version")
                    self.db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise StateStoreError(f"cannot prepare state store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self.lock:
            self.db.close()


class PostgresDatabase(Database):
    """psycopg 3; writes at READ COMMITTED with the lease row read ``FOR SHARE`` (a takeover waits for a
    write in progress, and a write after a takeover sees the new token); a snapshot is REPEATABLE READ."""

    dialect = "postgresql"
    placeholder = "%s"
    now_sql = "extract(epoch from clock_timestamp())"
    for_share = " FOR SHARE"

    def __init__(self, url: str) -> None:
        import psycopg  # imported here: a SQLite user never pays for it

        super().__init__(display_url(url))
        self._psycopg = psycopg
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10,
                                        application_name="campaign-reconciler")
        except psycopg.Error as exc:
            raise StateStoreError(f"cannot open state store {self.where}: {_pg_message(exc)}") from exc

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Transaction]:
        psycopg = self._psycopg
        try:
            with self.conn.transaction():
                cursor = self.conn.cursor()
                if not write:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield Transaction(cursor, "%s")
        except psycopg.Error as exc:
            raise StateStoreError(f"state store {self.where}: {_pg_message(exc)}") from exc

    def version(self) -> int | None:
        with self.read() as tx:
            found = tx.one("SELECT to_regclass('schema_version') IS NOT NULL")
            if not found or not found[0]:
                return None
            row = tx.one("SELECT MAX(version) FROM schema_version")
            return int(row[0]) if row and row[0] is not None else None

    def _migrate(self, found: int | None) -> None:
        tables = _TABLES.format(seq="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
        with self.lock, self._transaction(write=True) as tx:
            tx.run("SELECT pg_advisory_xact_lock(7262352)")  # two first writers must not create it twice
            for statement in filter(str.strip, tables.split(";")):
                tx.run(statement)
            tx.run("DELETE FROM schema_version")
            tx.run("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _pg_message(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def display_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (it must never reach a log or an error)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    netloc = user + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql:", "postgres:"))


def sqlite_path(url: str, *, base_dir: Path = Path(".")) -> Path:
    """The SQLite file named by ``--state URL``: ``sqlite:///relative/path``, ``sqlite:////abs/path``, or
    a plain file path."""
    path_text = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    if "://" in path_text:
        raise StateStoreError(f"unsupported state store URL {display_url(url)!r}; use sqlite:///PATH or "
                              "postgresql://...")
    path = Path(path_text)
    return path if path.is_absolute() else base_dir / path


def open_database(url: str, *, base_dir: Path = Path("."), create: bool) -> Database | None:
    """The database behind ``url``; None when it holds no store and ``create`` is false (a dry run never
    creates a store)."""
    if is_postgres_url(url):
        db: Database = PostgresDatabase(url)
    else:
        path = sqlite_path(url, base_dir=base_dir)
        if not create and not path.exists():
            return None
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateStoreError(f"cannot create the state store's folder {path.parent}: {exc}") from exc
        db = SqliteDatabase(path)
    try:
        if db.prepare(create=create):
            return db
    except BaseException:
        db.close()
        raise
    db.close()
    return None


def this_host() -> str:
    """The name a writer shows in the lease; ``RECONCILER_HOST`` overrides it (containers that share a host
    name but not a process table must set it, or a live writer could be taken for a gone one)."""
    return os.environ.get("RECONCILER_HOST") or os.uname().nodename
