"""A daemon loads its declarations in every pass; ``ScanMemo`` keeps each recipients file's check under the
file's content digest, so an unchanged file is not read row by row again, while any change (same size
included) is checked afresh and the load's result is what a load without the memo gives."""

from __future__ import annotations

from pathlib import Path

import pytest

import reconciler.load.recipients as recipients_module
from reconciler.load import load_desired_state
from reconciler.load.recipients import ScanMemo
from tests.sms_declarations import csv_campaign

CAMPAIGN = csv_campaign("hello #param#")


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each recipients file read row by row."""
    seen: list[Path] = []
    original = recipients_module.scan_recipients

    def counting(path: Path, **options: object) -> recipients_module.RecipientScan:
        seen.append(path)
        return original(path, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(recipients_module, "scan_recipients", counting)
    return seen


def write(root: Path, rows: list[str]) -> None:
    (root / "campaign.yaml").write_text(CAMPAIGN, encoding="utf-8")
    (root / "recipients.csv").write_text("number,area\n" + "\n".join(rows) + "\n", encoding="utf-8")


def outcome(root: Path, memo: ScanMemo | None) -> tuple[int | None, list[str]]:
    loaded = load_desired_state([root], scans=memo)
    count = loaded.desired.campaigns["notice"].recipients.count if loaded.desired else None  # type: ignore[union-attr]
    return count, [d.format() for d in loaded.diagnostics]


def test_an_unchanged_file_is_not_checked_again_and_any_change_is(tmp_path: Path, scanned: list[Path]) -> None:
    memo = ScanMemo()
    write(tmp_path, [f"4917{n:09d},a{n}" for n in range(100)])
    assert outcome(tmp_path, memo) == outcome(tmp_path, None) == (100, [])
    scanned.clear()
    assert outcome(tmp_path, memo) == (100, []) and scanned == []  # the same bytes: not read again
    write(tmp_path, [f"4917{n:09d},a{n}" for n in range(99)] + ["4917000000000,a0"])  # same size, a repeat
    found = outcome(tmp_path, memo)
    assert found == outcome(tmp_path, None) and found[0] is None
    assert any("duplicate recipient" in problem for problem in found[1])
    write(tmp_path, [f"4917{n:09d},a{n}" for n in range(100)])
    scanned.clear()
    assert outcome(tmp_path, memo) == (100, []) and len(scanned) == 1  # changed back: checked afresh


def test_a_file_that_cannot_be_read_is_reported_as_without_the_memo(tmp_path: Path) -> None:
    memo = ScanMemo()
    write(tmp_path, ["4917000000001,a"])
    assert outcome(tmp_path, memo) == (1, [])
    (tmp_path / "recipients.csv").unlink()
    found = outcome(tmp_path, memo)
    assert found == outcome(tmp_path, None) and found[0] is None and found[1]
