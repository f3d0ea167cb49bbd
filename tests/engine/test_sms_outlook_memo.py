"""A daemon keeps who is left to send between passes (``OutlookMemo``), under the recipients' content and the
campaign's ledger mark: after every kind of change it gives what counting afresh gives, and without one it
does not read the recipients again. Real CSV files and a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

import reconciler.engine.sms_outlook as outlook_module
from reconciler.engine.sms_outlook import OutlookMemo, sms_outlook
from reconciler.load import load_desired_state
from reconciler.model import DesiredState, SmsCampaignSpec
from reconciler.state.ledger import NewSend, SendState
from reconciler.state.store import Store
from tests.sms_declarations import csv_campaign

CAMPAIGN = csv_campaign()


def numbers(first: int, last: int) -> list[str]:
    return [f"4917{n:09d}" for n in range(first, last)]


def declared(root: Path, recipients: list[str]) -> DesiredState:
    (root / "recipients.csv").write_text("number\n" + "\n".join(recipients) + "\n", encoding="utf-8")
    (root / "campaign.yaml").write_text(CAMPAIGN, encoding="utf-8")
    loaded = load_desired_state([root])
    assert loaded.desired is not None, [d.format() for d in loaded.diagnostics]
    return loaded.desired


@pytest.fixture
def store(writer_store: Store) -> Store:
    return writer_store


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time a count reads the recipients (the work the memo saves)."""
    seen: list[str] = []
    original = outlook_module.recipients_of

    def counting(spec, root):  # type: ignore[no-untyped-def]
        seen.append(spec.name)
        return original(spec, root)

    monkeypatch.setattr(outlook_module, "recipients_of", counting)
    return seen


def left(desired: DesiredState, store: Store, memo: OutlookMemo | None) -> tuple[int, int]:
    spec = desired.campaigns["notice"]
    assert isinstance(spec, SmsCampaignSpec)
    found = sms_outlook(spec, desired, store.ledger, memo=memo)
    return found.recipients, found.to_send


def test_the_kept_count_is_the_fresh_count_after_every_kind_of_change(store: Store, tmp_path: Path,
                                                                      reads: list[str]) -> None:
    memo = OutlookMemo()
    desired = declared(tmp_path, numbers(0, 300))
    ledger = store.ledger
    rows, _ = ledger.begin_dispatch("gw", "notice", [NewSend(n, "h") for n in numbers(0, 100)])
    assert left(desired, store, memo) == left(desired, store, None) == (300, 200)
    reads.clear()
    assert left(desired, store, memo) == (300, 200) and reads == []  # nothing changed: not read again

    def check(expected: tuple[int, int]) -> None:
        reads.clear()
        assert left(desired, store, memo) == left(desired, store, None) == expected
        assert len(reads) == 2  # the change was seen: counted again (and once more by the fresh count)

    ledger.begin_dispatch("gw", "notice", [NewSend(n, "h") for n in numbers(100, 150)])
    check((300, 150))  # rows added
    ledger.settle([(r.key, SendState.FAILED, "t", "stopped") for r in rows[:10]])
    ledger.release([r.key for r in rows[:10]])
    check((300, 160))  # rows dropped (a stop released them)
    ledger.begin_dispatch("gw", "notice", [NewSend(n, "h") for n in numbers(0, 10)])
    ledger.release([])  # the same count of rows again, but newer ones
    check((300, 150))
    desired = declared(tmp_path, numbers(0, 299) + ["4917999999999"])  # same size, other content
    check((300, 150))  # 150 sent of 0..298, and the new number
    reads.clear()
    ledger.settle([(r.key, SendState.DELIVERED, "", "") for r in rows[10:]])
    assert left(desired, store, memo) == (300, 150) and reads == []  # states moved: who is left did not


def test_no_count_is_kept_while_a_send_of_the_campaign_runs(store: Store, tmp_path: Path, reads: list[str]) -> None:
    running = {"notice"}
    memo = OutlookMemo(busy=lambda campaign: campaign in running)
    desired = declared(tmp_path, numbers(0, 50))
    store.ledger.begin_dispatch("gw", "notice", [NewSend(n, "h") for n in numbers(0, 20)])
    assert left(desired, store, memo) == (50, 30)
    reads.clear()
    assert left(desired, store, memo) == (50, 30) and reads == ["notice"]  # counted again: not kept
    running.clear()
    left(desired, store, memo)
    reads.clear()
    assert left(desired, store, memo) == (50, 30) and reads == []


def test_a_recipients_file_that_cannot_be_read_is_counted_afresh(store: Store, tmp_path: Path) -> None:
    memo = OutlookMemo()
    desired = declared(tmp_path, numbers(0, 5))
    store.ledger.begin_dispatch("gw", "notice", [NewSend(n, "h") for n in numbers(0, 2)])
    assert left(desired, store, memo) == (5, 3)
    (tmp_path / "recipients.csv").unlink()
    with pytest.raises(OSError):
        left(desired, store, memo)  # as without a memo: the pass reports the file, nothing is made up
