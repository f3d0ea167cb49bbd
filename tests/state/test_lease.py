"""The writer lease and fencing, on both stores: one writer at a time, tokens that only grow, a writer that
lost its lease writes nothing, takeover of a dead or expired holder, schema versions."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reconciler.engine.store_access import open_writer
from reconciler.errors import StateStoreError
from reconciler.state.database import SCHEMA_VERSION
from reconciler.state.lease import LeaseHeldError, LeaseLostError, read_holder
from reconciler.state.ledger import NewSend
from reconciler.state.store import InventoryEntry, open_store


def test_a_second_writer_is_refused_and_told_who_holds_the_lease(store_url: str, tmp_path: Path) -> None:
    first = open_writer(store_url, base_dir=tmp_path, command="reconcile watch")
    try:
        with pytest.raises(LeaseHeldError) as refused:
            open_writer(store_url, base_dir=tmp_path, command="reconcile apply")
        message = str(refused.value)
        assert f"pid {os.getpid()}" in message and "`reconcile watch`" in message and "since" in message
        assert refused.value.holder.token == 1
    finally:
        first.close()


def test_a_released_lease_is_taken_at_once_with_the_next_token(store_url: str, tmp_path: Path) -> None:
    tokens = []
    for _ in range(3):
        store = open_writer(store_url, base_dir=tmp_path, command="test")
        tokens.append(store.lease.token)  # type: ignore[union-attr]
        store.close()
    assert tokens == [1, 2, 3]


def test_lock_timeout_waits_for_the_holder_to_finish(store_url: str, tmp_path: Path) -> None:
    first = open_writer(store_url, base_dir=tmp_path, command="test")
    releaser = threading.Timer(1.0, first.close)
    releaser.start()
    started = time.monotonic()
    second = open_writer(store_url, base_dir=tmp_path, command="test", lock_timeout=30)
    try:
        assert second.lease.token == 2  # type: ignore[union-attr]
        assert time.monotonic() - started >= 0.9
    finally:
        releaser.join()
        second.close()


def test_an_expired_lease_is_taken_over_and_the_old_writer_cannot_write(store_url: str, tmp_path: Path) -> None:
    """The fencing rule: once another writer took over, every write of the old one fails, ledger and
    inventory alike, and its renewal fails too."""
    old = open_writer(store_url, base_dir=tmp_path, command="old", ttl=1.0)
    old.lease._stop.set()  # type: ignore[union-attr]  # a paused process renews nothing
    time.sleep(1.3)
    new = open_writer(store_url, base_dir=tmp_path, command="new", ttl=30)
    try:
        assert new.lease.token == 2 and new.lease.taken_over  # type: ignore[union-attr]
        with pytest.raises(LeaseLostError):
            old.ledger.begin_dispatch("gw", "c", [NewSend("+4911", "h")])
        with pytest.raises(LeaseLostError):
            old.state.record_created(InventoryEntry("b", "campaign", "n", "1"))
        with pytest.raises(LeaseLostError):
            old.state.record_all_created([InventoryEntry("b", "campaign", "n", "2")])
        with pytest.raises(LeaseLostError):
            old.lease.renew()  # type: ignore[union-attr]
        with pytest.raises(LeaseLostError):
            old.lease.ensure_time(1.0)  # type: ignore[union-attr]
        assert new.ledger.rows("gw", "c") == [] and new.state.view().inventory == frozenset()
    finally:
        old.close()
        new.close()


def test_a_writer_that_is_gone_is_taken_over_without_waiting(store_url: str, tmp_path: Path) -> None:
    """A holder on this host whose process no longer exists (SIGKILL) cannot send: no need to wait."""
    code = ("import sys, os, signal; from pathlib import Path; from reconciler.engine.store_access import "
            "open_writer; s = open_writer(sys.argv[1], base_dir=Path(sys.argv[2]), command='doomed'); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code, store_url, str(tmp_path)], timeout=60)
    started = time.monotonic()
    store = open_writer(store_url, base_dir=tmp_path, command="test")
    try:
        assert store.lease.token == 2 and not store.lease.taken_over  # type: ignore[union-attr]
        assert store.lease.recover_after <= time.monotonic()  # type: ignore[union-attr]
        assert time.monotonic() - started < 5
    finally:
        store.close()


def test_recovery_of_an_expired_writers_rows_waits_for_its_longest_request(store_url: str, tmp_path: Path) -> None:
    old = open_writer(store_url, base_dir=tmp_path, command="old", ttl=1.0)
    old.lease._stop.set()  # type: ignore[union-attr]
    time.sleep(1.2)
    new = open_writer(store_url, base_dir=tmp_path, command="new", bound=3.0)
    try:
        wait = new.lease.recover_after - time.monotonic()  # type: ignore[union-attr]
        assert 1.0 < wait <= 3.0
    finally:
        old.close()
        new.close()


def test_the_renewer_keeps_a_short_lease_alive(store_url: str, tmp_path: Path) -> None:
    store = open_writer(store_url, base_dir=tmp_path, command="test", ttl=0.9)
    try:
        time.sleep(2.0)
        with pytest.raises(LeaseHeldError):
            open_writer(store_url, base_dir=tmp_path, command="other")
        store.ledger.begin_dispatch("gw", "c", [NewSend("+4911", "h")])
    finally:
        store.close()


def test_a_reader_sees_no_store_before_one_is_written_and_never_writes(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite"):
        assert open_store(store_url, base_dir=tmp_path, writer=False) is None
        assert not Path(store_url.removeprefix("sqlite:///")).exists()
    open_writer(store_url, base_dir=tmp_path, command="test").close()
    reader = open_store(store_url, base_dir=tmp_path, writer=False)
    assert reader is not None
    try:
        with pytest.raises(StateStoreError, match="without the writer lease"):
            reader.ledger.begin_dispatch("gw", "c", [NewSend("+4911", "h")])
        holder = read_holder(reader.db)
        assert holder is not None and holder.released and holder.token == 1
    finally:
        reader.close()


def test_a_store_written_by_a_newer_release_is_refused(store_url: str, tmp_path: Path) -> None:
    store = open_writer(store_url, base_dir=tmp_path, command="test")
    with store.db.write() as tx:
        tx.run("UPDATE schema_version SET version=?", (SCHEMA_VERSION + 1,))
    store.close()
    for writer in (True, False):
        with pytest.raises(StateStoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
            open_store(store_url, base_dir=tmp_path, writer=writer)


def test_a_version_1_sqlite_store_is_migrated_keeping_its_rows_and_keys(tmp_path: Path) -> None:
    """Stores written before the lease: ledger rows keep their key (the gateway knows them by it)."""
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE send_ledger (key INTEGER PRIMARY KEY AUTOINCREMENT, backend TEXT NOT NULL,
            campaign TEXT NOT NULL, recipient TEXT NOT NULL, content_hash TEXT NOT NULL, state TEXT NOT NULL,
            remote_id TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL DEFAULT '',
            UNIQUE (backend, campaign, recipient));
        CREATE TABLE inventory (backend TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
            remote_id TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT '', PRIMARY KEY (backend, kind, remote_id));
        INSERT INTO send_ledger (backend, campaign, recipient, content_hash, state, remote_id)
            VALUES ('gw', 'c', '+4911', 'h', 'accepted', 't1'), ('gw', 'c', '+4912', 'h', 'delivered', 't1');
        INSERT INTO inventory VALUES ('iot', 'campaign', 'x', '7', '');
    """)
    db.close()
    store = open_writer(f"sqlite:///{path}", base_dir=tmp_path, command="test")
    try:
        rows = store.ledger.rows("gw", "c")
        assert [(r.key, r.recipient, r.state.value) for r in rows] == [(1, "+4911", "accepted"),
                                                                      (2, "+4912", "delivered")]
        assert store.state.view().owns("iot", "campaign", "7")
        rows_after, _ = store.ledger.begin_dispatch("gw", "c", [NewSend("+4913", "h")])
        assert [r.recipient for r in rows_after] == ["+4913"]
    finally:
        store.close()


def test_adoptions_are_recorded_together_and_a_second_import_renames_rather_than_duplicates(
        store_url: str, tmp_path: Path) -> None:
    writer = open_writer(store_url, base_dir=tmp_path, command="reconcile import")
    try:
        writer.state.record_all_created([InventoryEntry("iot", "campaign", f"c{n}", str(n)) for n in range(300)])
        writer.state.record_all_created([])
        writer.state.record_all_created([InventoryEntry("iot", "campaign", "renamed", "7"),
                                         InventoryEntry("iot", "package", "p", "7")])
        inventory = writer.state.view().inventory
        assert len(inventory) == 301
        assert {(e.kind, e.name) for e in inventory if e.remote_id == "7"} == {("campaign", "renamed"),
                                                                               ("package", "p")}
    finally:
        writer.close()


def test_two_first_writers_at_once_one_takes_the_lease_and_the_other_is_told_who(store_url: str,
                                                                                 tmp_path: Path) -> None:
    """A store no writer ever held has no lease row: two writers starting at once both find none. The one
    whose insert comes second waits for the first's commit and is then told who holds the lease (so
    ``--lock-timeout`` waits), not failed with the database's unique-key error (seen on PostgreSQL)."""
    from reconciler.state.database import open_database
    from reconciler.state.lease import WriterLease

    first_db, second_db = (open_database(store_url, base_dir=tmp_path, create=True) for _ in range(2))
    assert first_db is not None and second_db is not None
    outcome: list[object] = []
    try:
        with first_db.write_unfenced() as tx:  # the first writer's insert, not committed yet
            tx.run("INSERT INTO lease (name, token, holder, host, pid, command, since, expires_at, released) "
                   "VALUES ('writer', 1, 'first@here', 'here', 1, 'first', '2026-12-07T00:00:00', 1e12, 0)")
            second = threading.Thread(target=lambda: outcome.append(
                _try(lambda: WriterLease(second_db, command="second").acquire(timeout=0))))
            second.start()
            time.sleep(0.5)  # the second is inside its own transaction by now, blocked behind the first
        second.join(timeout=30)
    finally:
        first_db.close()
        second_db.close()
    assert len(outcome) == 1 and isinstance(outcome[0], LeaseHeldError), outcome
    assert "first" in str(outcome[0])


def _try(call):  # type: ignore[no-untyped-def]
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - what the second writer got is the test's subject
        return exc
