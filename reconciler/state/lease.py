"""The writer lease: one writer per store at a time, and a fencing token that makes a writer that lost its
lease harmless (``../shared/design/writers.md``).

- Acquiring takes the lease row when it is free: released, expired by the database's clock, or held by a
  process on this host that is gone (a crashed writer on the same machine is taken over at once). Each
  acquisition takes the next token; tokens only grow.
- Every durable write checks, inside its transaction, that the stored token is still ours
  (``Database.write`` calls ``fence``); when it is not, ``LeaseLostError`` stops the writer.
- A request that may change a backend starts only while the lease, measured by this process's monotonic
  clock from the start of the renewal that succeeded, outlives the longest that request can take
  (``ensure_time``); a renewer thread renews at a third of the TTL.
- A new holder resolves ``dispatching`` rows of earlier tokens only after ``recover_after``: at once when
  the previous holder released the lease or is provably gone, otherwise once the longest request the
  previous holder could have started before its lease ran out is over.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import StateStoreError
from reconciler.state.database import Database, Transaction, this_host

DEFAULT_TTL_SECONDS = 30.0
_NAME = "writer"
_COLUMNS = "token, holder, host, pid, command, since, expires_at, released"


class LeaseLostError(StateStoreError):
    """This process no longer holds the writer lease (it was paused or cut off and another writer took
    over): it must stop sending and recording at once."""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds (or last held) the writer lease."""

    token: int
    holder: str
    host: str
    pid: int
    command: str
    since: str
    expires_in: float  # seconds from now by the database's clock (negative: expired)
    released: bool

    def describe(self) -> str:
        state = "released" if self.released else (
            f"expires in {self.expires_in:.0f} s unless renewed" if self.expires_in >= 0 else "expired")
        return (f"held by {self.holder} (pid {self.pid} on {self.host}, `{self.command}`) since {self.since}; "
                f"{state}")


class LeaseHeldError(StateStoreError):
    """Another writer holds the lease (and kept it for as long as we were willing to wait)."""

    def __init__(self, where: str, holder: LeaseHolder) -> None:
        super().__init__(f"the state store {where} is locked by another writer: {holder.describe()}. "
                         "Wait for it to finish, or pass --lock-timeout SECONDS to wait")
        self.holder = holder


def process_gone(host: str, pid: int) -> bool:
    """True only when the process is provably not running: same host, and no such pid (or a zombie)."""
    if host != this_host() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


class WriterLease:
    """The lease of one writer process on one store."""

    def __init__(self, db: Database, *, command: str, ttl: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.command = command
        self.ttl = ttl
        self.clock = clock
        self.token: int | None = None
        self.valid_until = 0.0  # by ``clock``
        self.recover_after = 0.0  # by ``clock``: earlier writers' dispatching rows are resolved after this
        self.taken_over = False  # the previous holder's lease ran out without a release
        self._lost: str = ""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # --- acquiring and releasing --------------------------------------------------------------------

    def acquire(self, *, timeout: float = 0.0, request_bound: float = 0.0,
                on_wait: Callable[[LeaseHolder], None] | None = None,
                stop: threading.Event | None = None, poll: float = 1.0) -> int:
        """Take the lease, waiting up to ``timeout`` seconds; ``LeaseHeldError`` names the holder otherwise.
        ``request_bound``: the longest a backend request can take (how long after an expired lease the
        earlier holder's requests may still be in flight). Starts the renewer."""
        deadline = self.clock() + timeout
        told = False
        while True:
            holder = self._try_take(request_bound)
            if holder is None:
                self._start_renewing()
                return self.token or 0
            if self.clock() >= deadline or (stop is not None and stop.is_set()):
                raise LeaseHeldError(self.db.where, holder)
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            wait = min(poll, max(deadline - self.clock(), 0.0))
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)

    def _try_take(self, request_bound: float) -> LeaseHolder | None:
        """None when taken (``token`` set); otherwise the current holder."""
        started = self.clock()
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        with self.db.write_unfenced() as tx:
            row = tx.one(f"SELECT {_COLUMNS}, {self.db.now_sql} FROM lease WHERE name=?{lock}", (_NAME,))
            me = (getpass.getuser() + "@" + this_host(), this_host(), os.getpid(), self.command,
                  datetime.now(UTC).isoformat(timespec="seconds"))
            if row is None:  # the first writer; another may be inserting too (PostgreSQL locks no absent row)
                first = (f"INSERT INTO lease (name, {_COLUMNS}) VALUES (?, 1, ?, ?, ?, ?, ?, {self.db.now_sql} + ?, 0) "
                         "ON CONFLICT (name) DO NOTHING RETURNING token")
                if tx.one(first, (_NAME, *me, self.ttl)) is None:
                    won = tx.one(f"SELECT {_COLUMNS}, {self.db.now_sql} FROM lease WHERE name=?", (_NAME,))
                    assert won is not None  # the conflict was that row
                    return _holder(won)
                token, wait = 1, 0.0
            else:
                holder = _holder(row)
                gone = not holder.released and process_gone(holder.host, holder.pid)
                if not (holder.released or holder.expires_in < 0 or gone):
                    return holder
                token = holder.token + 1
                tx.run(f"UPDATE lease SET token=?, holder=?, host=?, pid=?, command=?, since=?, "
                       f"expires_at={self.db.now_sql} + ?, released=0 WHERE name=? AND token=?",
                       (token, *me, self.ttl, _NAME, holder.token))
                self.taken_over = not holder.released and not gone
                # an expired holder's requests started with time in hand, so they are over by its expiry;
                # the request bound on top covers clocks that disagree
                wait = max(request_bound + holder.expires_in, 0.0) if self.taken_over else 0.0
        self.token = token
        self.valid_until = started + self.ttl
        self.recover_after = self.clock() + wait
        self._lost = ""
        self.db.fence, self.db.token = self.check, token
        return None

    def release(self) -> None:
        """Give the lease back (the next writer need not wait for it to expire)."""
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=5)
        token, self.token = self.token, None
        self.db.fence = self.db.token = None
        if token is None or self._lost:
            return
        try:
            with self.db.write_unfenced() as tx:
                tx.run(f"UPDATE lease SET released=1, expires_at={self.db.now_sql} WHERE name=? AND token=?",
                       (_NAME, token))
        except StateStoreError:
            pass  # it expires by itself

    # --- keeping it -----------------------------------------------------------------------------------

    def renew(self) -> None:
        """Extend the lease by a TTL; ``LeaseLostError`` when another writer has taken it."""
        if self._lost:
            raise LeaseLostError(self._lost)
        if self.token is None:
            raise LeaseLostError("this process does not hold the writer lease")
        started = self.clock()
        with self.db.write_unfenced() as tx:
            kept = tx.one(f"UPDATE lease SET expires_at={self.db.now_sql} + ? WHERE name=? AND token=? "
                          "AND released=0 RETURNING token", (self.ttl, _NAME, self.token))
        if kept is None:
            self._lose("another writer took over the state store's writer lease")
        self.valid_until = started + self.ttl

    def time_left(self) -> float:
        return self.valid_until - self.clock()

    def ensure_time(self, seconds: float) -> None:
        """Before a request that may change a backend: the lease must outlive it (renewed if need be)."""
        if self._lost:
            raise LeaseLostError(self._lost)
        if self.time_left() > seconds:
            return
        self.renew()
        if self.time_left() <= seconds:
            raise LeaseLostError(f"the writer lease ({self.ttl:.0f} s) is shorter than the longest request "
                                 f"({seconds:.0f} s): raise --lease-ttl")

    def check(self, tx: Transaction) -> None:
        """The fencing check, run first in every write transaction."""
        if self._lost:
            raise LeaseLostError(self._lost)
        row = tx.one(f"SELECT token, released FROM lease WHERE name=?{self.db.for_share}", (_NAME,))
        if row is None or int(row[0]) != self.token or int(row[1]):
            self._lose("another writer took over the state store's writer lease")

    @property
    def lost(self) -> str:
        """Why the lease was lost ('' while it is held)."""
        return self._lost

    def _lose(self, why: str) -> None:
        self._lost = (f"{why} (this process held token {self.token}; it may have been paused or cut off "
                      f"longer than the lease's {self.ttl:.0f} s): stopping, nothing more is sent or recorded")
        raise LeaseLostError(self._lost)

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="writer-lease", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except LeaseLostError:
                return
            except StateStoreError:
                if self.time_left() <= 0:
                    self._lost = "the writer lease could not be renewed before it expired (state store unreachable)"
                    return


def read_holder(db: Database) -> LeaseHolder | None:
    with db.read() as tx:
        row = tx.one(f"SELECT {_COLUMNS}, {db.now_sql} FROM lease WHERE name=?", (_NAME,))
    return _holder(row) if row is not None else None


def _holder(row: tuple[Any, ...]) -> LeaseHolder:
    """A lease row as the database driver returns it (untyped values: numbers may come back as text)."""
    token, holder, host, pid, command, since, expires_at, released, now = row
    return LeaseHolder(int(token), str(holder), str(host), int(pid), str(command), str(since),
                       float(expires_at) - float(now), bool(released))
