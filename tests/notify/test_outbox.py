"""The outbox on both stores: one row per event id, one per condition while it holds, fenced writes, the
schema migration that adds it, and its bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine.store_access import open_writer
from reconciler.state.database import SCHEMA_VERSION
from reconciler.state.lease import LeaseLostError
from reconciler.state.outbox import NewDelivery, Outbox
from reconciler.state.store import Store, open_store


@pytest.fixture
def store(writer_store: Store) -> Store:
    return writer_store


def delivery(event_id: str, subject: str = "", notification: str = "ops") -> NewDelivery:
    return NewDelivery(notification, event_id, "apply.failed", '{"id": "%s"}' % event_id, subject)


def test_an_event_id_is_queued_once_per_notification(store: Store) -> None:
    outbox = Outbox(store.db)
    assert outbox.enqueue([delivery("a"), delivery("a", notification="chat")], now=1.0).added == 2
    assert outbox.enqueue([delivery("a"), delivery("b")], now=2.0).added == 1
    assert [(r.notification, r.event_id) for r in outbox.due(now=2.0)] == [("ops", "a"), ("chat", "a"), ("ops", "b")]


def test_a_condition_is_queued_once_while_it_holds_and_again_after_it_ended(store: Store) -> None:
    outbox = Outbox(store.db)
    assert outbox.enqueue([delivery("halt-1", "rollout.halted/fw")], now=1.0).added == 1
    assert outbox.enqueue([delivery("halt-2", "rollout.halted/fw")], now=2.0).added == 0  # still halted
    outbox.delivered(outbox.due(now=2.0)[0].seq, now=2.0)
    assert outbox.enqueue([delivery("halt-3", "rollout.halted/fw")], now=3.0).added == 0  # delivered, still holds
    assert outbox.enqueue([], cleared={"rollout.halted/fw"}, now=4.0).added == 0  # a pass saw it over
    assert outbox.enqueue([delivery("halt-5", "rollout.halted/fw")], now=5.0).added == 1  # halted again: new
    assert [r.event_id for r in outbox.due(now=5.0)] == ["halt-5"]


def test_rows_are_due_in_order_until_recorded(store: Store) -> None:
    outbox = Outbox(store.db)
    outbox.enqueue([delivery("a"), delivery("b"), delivery("c")], now=10.0)
    a, b, c = outbox.due(now=10.0)
    outbox.delivered(a.seq, now=11.0)
    outbox.retry_at(b.seq, at=20.0, error="HTTP 503", now=11.0)
    outbox.failed(c.seq, error="HTTP 404", now=11.0)
    assert outbox.due(now=19.0) == [] and outbox.next_due() == 20.0
    [again] = outbox.due(now=20.0)
    assert (again.event_id, again.attempts) == ("b", 1)
    assert outbox.counts() == {"delivered": 1, "pending": 1, "failed": 1}


def test_a_writer_that_lost_its_lease_records_nothing(store_url: str, tmp_path: Path) -> None:
    """Fencing: once another writer took the store, neither a new event nor a delivery is recorded."""
    first = open_writer(store_url, base_dir=tmp_path, command="first", ttl=0.5)
    outbox = Outbox(first.db)
    outbox.enqueue([delivery("a")], now=1.0)
    [row] = outbox.due(now=1.0)
    assert first.lease is not None
    first.lease._stop.set()  # type: ignore[union-attr]  # its renewer stops: as if paused
    with first.db.write_unfenced() as tx:
        tx.run("UPDATE lease SET expires_at=0")
    second = open_writer(store_url, base_dir=tmp_path, command="second")
    try:
        with pytest.raises(LeaseLostError):
            outbox.delivered(row.seq, now=2.0)
        with pytest.raises(LeaseLostError):
            outbox.enqueue([delivery("b")], now=2.0)
        assert [r.event_id for r in Outbox(second.db).due(now=2.0)] == ["a"]  # still pending for the new writer
    finally:
        second.close()
        first.close()


def test_a_version_3_store_gains_the_outbox_when_a_writer_opens_it(store_url: str, tmp_path: Path) -> None:
    """The migration: the table is created, the version moves on, nothing else is touched."""
    store = open_writer(store_url, base_dir=tmp_path, command="test")
    store.history.record(revision="abc", who="t", command="test", seconds=0.1, ok=True, actions=[])
    with store.db.write() as tx:
        tx.run("DROP TABLE notify_outbox")
        tx.run("UPDATE schema_version SET version=3")
    store.close()
    with pytest.raises(Exception, match="schema version 3; a writer"):
        open_store(store_url, base_dir=tmp_path, writer=False)
    again = open_writer(store_url, base_dir=tmp_path, command="test")
    try:
        assert again.db.version() == SCHEMA_VERSION == 5
        assert Outbox(again.db).enqueue([delivery("a")], now=1.0).added == 1
        assert [e.revision for e in again.history.entries()] == ["abc"]
    finally:
        again.close()


def test_the_outbox_is_bounded(store: Store) -> None:
    """Over ``max_pending`` waiting rows new ones are dropped (and counted); over ``max_rows`` the oldest
    finished rows go."""
    outbox = Outbox(store.db, max_pending=2, max_rows=3)
    assert outbox.enqueue([delivery("a"), delivery("b"), delivery("c")], now=1.0).dropped == 1
    for row in outbox.due(now=1.0):
        outbox.delivered(row.seq, now=2.0)
    outbox.enqueue([delivery("d"), delivery("e")], now=3.0)
    assert outbox.counts() == {"delivered": 1, "pending": 2}
