"""The send ledger, on both stores: at most one row per recipient, durable across reopen, states moved on
explicitly, keys derived from the campaign and the recipient."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine.store_access import open_writer
from reconciler.state.database import SCHEMA_VERSION
from reconciler.state.ledger import NewSend, SendLedger, SendState, ledger_key
from reconciler.state.store import Store


@pytest.fixture
def store(writer_store: Store) -> Store:
    return writer_store


@pytest.fixture
def ledger(store: Store) -> SendLedger:
    return store.ledger


def dispatch(ledger: SendLedger, campaign: str, sends: list[NewSend]) -> list:  # type: ignore[type-arg]
    rows, collided = ledger.begin_dispatch("gw", campaign, sends)
    assert collided == []
    return rows


def test_a_recipient_is_dispatched_at_most_once(ledger: SendLedger) -> None:
    first = dispatch(ledger, "c", [NewSend("4915100000001", "h1"), NewSend("4915100000002", "h1")])
    again = dispatch(ledger, "c", [NewSend("4915100000001", "h2"), NewSend("4915100000003", "h1")])
    assert [r.recipient for r in first] == ["4915100000001", "4915100000002"]
    assert [r.recipient for r in again] == ["4915100000003"]


@pytest.mark.parametrize("known_first", [0, 2], ids=["all-new", "some-known"])
def test_the_rows_a_dispatch_returns_are_the_rows_it_stored(ledger: SendLedger, known_first: int) -> None:
    """Whether every send got a row (returned without reading them back) or some recipient already had one
    (read back), the rows returned are exactly the new rows as stored, in order, with their keys."""
    sends = [NewSend(f"49151000001{i:02d}", f"h{i}") for i in range(40)]
    dispatch(ledger, "c", sends[5:5 + known_first])
    before = {r.key for r in ledger.rows("gw", "c")}
    returned = dispatch(ledger, "c", sends)
    stored = [r for r in ledger.rows("gw", "c") if r.key not in before]
    assert returned == stored
    assert len(returned) == 40 - known_first
    assert all(r.key == ledger_key("c", r.recipient) and r.state is SendState.DISPATCHING for r in returned)


def test_keys_are_unique_integers_usable_as_gateway_user_ids(ledger: SendLedger) -> None:
    rows = dispatch(ledger, "c", [NewSend(f"49151000000{i:02d}", "h") for i in range(50)])
    keys = [r.key for r in rows]
    assert len(set(keys)) == 50 and all(isinstance(k, int) and 0 < k < 2**62 for k in keys)


def test_keys_are_derived_from_campaign_and_recipient_so_any_store_finds_the_same(store_url: str,
                                                                                   tmp_path: Path) -> None:
    """Two stores that never met give a recipient of a campaign the same key (the gateway's user_id)."""
    other = open_writer(f"sqlite:///{tmp_path / 'other.db'}", base_dir=tmp_path, command="test")
    here = open_writer(store_url, base_dir=tmp_path, command="test")
    try:
        [a] = dispatch(here.ledger, "c", [NewSend("4915100000001", "h")])
        [b] = dispatch(other.ledger, "c", [NewSend("4915100000001", "h")])
        [c] = dispatch(other.ledger, "d", [NewSend("4915100000001", "h")])
    finally:
        here.close()
        other.close()
    assert a.key == b.key == ledger_key("c", "4915100000001") != c.key


def test_rows_carry_the_writers_lease_token(store: Store) -> None:
    [row] = dispatch(store.ledger, "c", [NewSend("4915100000001", "h")])
    assert row.token == store.lease.token == 1  # type: ignore[union-attr]


def test_dispatching_rows_survive_a_reopen(store_url: str, tmp_path: Path) -> None:
    first = open_writer(store_url, base_dir=tmp_path, command="test")
    dispatch(first.ledger, "c", [NewSend("4915100000001", "h")])
    first.close()
    reopened = open_writer(store_url, base_dir=tmp_path, command="test")
    try:
        assert [r.state for r in reopened.ledger.rows("gw", "c")] == [SendState.DISPATCHING]
    finally:
        reopened.close()


def test_settle_moves_state_and_keeps_remote_id_when_not_given(ledger: SendLedger) -> None:
    (row,) = dispatch(ledger, "c", [NewSend("4915100000001", "h")])
    ledger.settle([(row.key, SendState.ACCEPTED, "task-7", "")])
    ledger.settle([(row.key, SendState.DELIVERED, "", "")])
    (after,) = ledger.rows("gw", "c")
    assert (after.state, after.remote_id) == (SendState.DELIVERED, "task-7")


def test_forget_only_drops_rows_still_dispatching(ledger: SendLedger) -> None:
    a, b = dispatch(ledger, "c", [NewSend("4915100000001", "h"), NewSend("4915100000002", "h")])
    ledger.settle([(a.key, SendState.ACCEPTED, "t", "")])
    ledger.forget([a.key, b.key])
    assert [r.recipient for r in ledger.rows("gw", "c")] == ["4915100000001"]


def test_a_released_message_is_sent_again_as_a_new_message_under_a_key_of_its_own(store_url: str,
                                                                                   tmp_path: Path) -> None:
    """The gateway abandoned the queued message (a stop): its row is released, and the resend gets the
    next generation's key, so the abandoned message's ``failed`` result is never taken for the resend's.
    The generation survives a reopen and grows with each release; other recipients keep their keys."""
    store = open_writer(store_url, base_dir=tmp_path, command="test")
    try:
        first, other = dispatch(store.ledger, "c", [NewSend("4915100000001", "h"), NewSend("4915100000002", "h")])
        store.ledger.settle([(first.key, SendState.FAILED, "task-1", "stopped"),
                             (other.key, SendState.ACCEPTED, "task-1", "")])
        store.ledger.release([first.key, other.key + 1])  # a key with no row is ignored
        [second] = dispatch(store.ledger, "c", [NewSend("4915100000001", "h")])
    finally:
        store.close()
    reopened = open_writer(store_url, base_dir=tmp_path, command="test")
    try:
        reopened.ledger.settle([(second.key, SendState.ACCEPTED, "task-2", "")])
        reopened.ledger.release([second.key])
        [third] = dispatch(reopened.ledger, "c", [NewSend("4915100000001", "h")])
        [fresh] = dispatch(reopened.ledger, "d", [NewSend("4915100000001", "h")])
        assert [r.key for r in reopened.ledger.rows("gw", "c")] == [other.key, third.key]
    finally:
        reopened.close()
    assert first.key == ledger_key("c", "4915100000001")
    assert (second.key, third.key) == (ledger_key("c", "4915100000001", 1), ledger_key("c", "4915100000001", 2))
    assert len({first.key, second.key, third.key}) == 3
    assert fresh.key == ledger_key("d", "4915100000001")  # generations are per campaign


def test_only_accepted_or_failed_rows_are_released(ledger: SendLedger) -> None:
    [row] = dispatch(ledger, "c", [NewSend("4915100000001", "h")])
    ledger.release([row.key])  # still dispatching: its fate is not known, it stays
    assert [r.key for r in ledger.rows("gw", "c")] == [row.key]
    assert dispatch(ledger, "c", [NewSend("4915100000001", "h")]) == []


def test_counts_and_known_are_per_campaign(ledger: SendLedger) -> None:
    dispatch(ledger, "c1", [NewSend("4915100000001", "h")])
    dispatch(ledger, "c2", [NewSend("4915100000002", "h")])
    assert ledger.counts("gw", "c1") == {"dispatching": 1}
    assert ledger.known("gw", "c1", ["4915100000001", "4915100000002"]) == {"4915100000001"}


def test_a_settlement_never_moves_a_row_back(ledger: SendLedger) -> None:
    """A send's reply is written with the next group's commit; a delivery report pushed meanwhile must
    survive it (the reply still brings the backend's id)."""
    [row] = dispatch(ledger, "c", [NewSend("+491", "h")])
    ledger.settle([(row.key, SendState.DELIVERED, "", "DELIVERED")])
    ledger.settle([(row.key, SendState.ACCEPTED, "task-7", "")])
    [after] = ledger.rows("gw", "c")
    assert (after.state, after.remote_id, after.reason) == (SendState.DELIVERED, "task-7", "DELIVERED")
    ledger.settle([(row.key, SendState.FAILED, "", "expired")])  # a later FAILED never undoes a delivery
    assert ledger.rows("gw", "c")[0].state is SendState.DELIVERED
    [other] = dispatch(ledger, "c", [NewSend("+492", "h")])
    ledger.settle([(other.key, SendState.FAILED, "", "expired")])
    ledger.settle([(other.key, SendState.DELIVERED, "", "late report")])  # a delivery report still wins
    assert ledger.rows("gw", "c")[1].state is SendState.DELIVERED


def test_pages_walk_rows_in_write_order_up_to_a_sequence_number(ledger: SendLedger) -> None:
    """Keys are hashes, so order and "written before" come from the sequence number."""
    dispatch(ledger, "c", [NewSend(f"+49{i}", "h") for i in range(5)])
    cut = ledger.last_seq()
    dispatch(ledger, "c", [NewSend(f"+49{i}", "h") for i in range(5, 8)])
    walked = [r.recipient for page in ledger.pages("gw", "c", [SendState.DISPATCHING], size=2, up_to=cut)
              for r in page]
    assert walked == [f"+49{i}" for i in range(5)]


def test_a_version_4_store_gains_send_generations_and_keeps_its_rows(store_url: str, tmp_path: Path) -> None:
    store = open_writer(store_url, base_dir=tmp_path, command="test")
    [row] = dispatch(store.ledger, "c", [NewSend("4915100000001", "h")])
    store.ledger.settle([(row.key, SendState.FAILED, "task-1", "stopped")])
    with store.db.write() as tx:
        tx.run("DROP TABLE send_generations")
        tx.run("UPDATE schema_version SET version=4")
    store.close()
    again = open_writer(store_url, base_dir=tmp_path, command="test")
    try:
        assert again.db.version() == SCHEMA_VERSION == 5
        assert [r.key for r in again.ledger.rows("gw", "c")] == [row.key]
        again.ledger.release([row.key])
        assert [r.key for r in dispatch(again.ledger, "c", [NewSend("4915100000001", "h")])] == [
            ledger_key("c", "4915100000001", 1)]
    finally:
        again.close()
