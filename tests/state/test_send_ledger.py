"""The send ledger: at most one row per recipient, durable across reopen, states moved on explicitly."""

from __future__ import annotations

from pathlib import Path

from reconciler.state.ledger import NewSend, SendLedger, SendState


def test_a_recipient_is_dispatched_at_most_once(tmp_path: Path) -> None:
    ledger = SendLedger(tmp_path / "l.db")
    first = ledger.begin_dispatch("gw", "c", [NewSend("4915100000001", "h1"), NewSend("4915100000002", "h1")])
    again = ledger.begin_dispatch("gw", "c", [NewSend("4915100000001", "h2"), NewSend("4915100000003", "h1")])
    assert [r.recipient for r in first] == ["4915100000001", "4915100000002"]
    assert [r.recipient for r in again] == ["4915100000003"]


def test_keys_are_unique_integers_usable_as_gateway_user_ids(tmp_path: Path) -> None:
    ledger = SendLedger(tmp_path / "l.db")
    rows = ledger.begin_dispatch("gw", "c", [NewSend(f"49151000000{i:02d}", "h") for i in range(50)])
    keys = [r.key for r in rows]
    assert len(set(keys)) == 50 and all(isinstance(k, int) and k > 0 for k in keys)


def test_dispatching_rows_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    SendLedger(path).begin_dispatch("gw", "c", [NewSend("4915100000001", "h")])
    reopened = SendLedger(path)
    assert [r.state for r in reopened.rows("gw", "c")] == [SendState.DISPATCHING]


def test_settle_moves_state_and_keeps_remote_id_when_not_given(tmp_path: Path) -> None:
    ledger = SendLedger(tmp_path / "l.db")
    (row,) = ledger.begin_dispatch("gw", "c", [NewSend("4915100000001", "h")])
    ledger.settle([(row.key, SendState.ACCEPTED, "task-7", "")])
    ledger.settle([(row.key, SendState.DELIVERED, "", "")])
    (after,) = ledger.rows("gw", "c")
    assert (after.state, after.remote_id) == (SendState.DELIVERED, "task-7")


def test_forget_only_drops_rows_still_dispatching(tmp_path: Path) -> None:
    ledger = SendLedger(tmp_path / "l.db")
    a, b = ledger.begin_dispatch("gw", "c", [NewSend("4915100000001", "h"), NewSend("4915100000002", "h")])
    ledger.settle([(a.key, SendState.ACCEPTED, "t", "")])
    ledger.forget([a.key, b.key])
    assert [r.recipient for r in ledger.rows("gw", "c")] == ["4915100000001"]


def test_counts_and_known_are_per_campaign(tmp_path: Path) -> None:
    ledger = SendLedger(tmp_path / "l.db")
    ledger.begin_dispatch("gw", "c1", [NewSend("4915100000001", "h")])
    ledger.begin_dispatch("gw", "c2", [NewSend("4915100000002", "h")])
    assert ledger.counts("gw", "c1") == {"dispatching": 1}
    assert ledger.known("gw", "c1", ["4915100000001", "4915100000002"]) == {"4915100000001"}


def test_a_settlement_never_moves_a_row_back(tmp_path: Path) -> None:
    """A send's reply is written with the next group's commit; a delivery report pushed meanwhile must
    survive it (the reply still brings the backend's id)."""
    ledger = SendLedger(tmp_path / "state.db")
    [row] = ledger.begin_dispatch("gw", "c", [NewSend("+491", "h")])
    ledger.settle([(row.key, SendState.DELIVERED, "", "DELIVERED")])
    ledger.settle([(row.key, SendState.ACCEPTED, "task-7", "")])
    [after] = ledger.rows("gw", "c")
    assert (after.state, after.remote_id, after.reason) == (SendState.DELIVERED, "task-7", "DELIVERED")
    ledger.settle([(row.key, SendState.FAILED, "", "expired")])  # one final state may still replace another
    assert ledger.rows("gw", "c")[0].state is SendState.FAILED
