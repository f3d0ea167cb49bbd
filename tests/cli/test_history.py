"""``reconcile history``: every apply that acted is recorded in the store (when, revision, who, command,
each action and outcome), newest first, filtered by campaign, bounded by a retention period."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.engine.store_access import open_writer
from tests.engine import sandbox_repo as repo


@pytest.fixture
def decl(decl: Path) -> Path:
    """Two campaigns, committed: the history names the revision applied."""
    repo.write(decl, "a.yaml", repo.campaign_yaml("rollout-a", gateways=["gw-00001", "gw-00002"]))
    repo.write(decl, "b.yaml", repo.campaign_yaml("rollout-b", gateways=["gw-00003"]))
    git = ["git", "-C", str(decl.parent), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    return decl


def history(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["history", "--state", "sqlite:///state.db", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_applies_that_acted_are_recorded_newest_first_with_revision_who_and_outcomes(
    decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(decl), "--state", "sqlite:///state.db"]) == 0
    (decl / "b.yaml").write_text(repo.campaign_yaml("rollout-b", gateways=["gw-00003"], state="stopped"))
    assert main([str(decl), "--state", "sqlite:///state.db"]) == 0
    assert main([str(decl), "--state", "sqlite:///state.db"]) == 0  # nothing to do: not recorded
    revision = subprocess.run(["git", "-C", str(decl.parent), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    code, out = history(capsys, "--output", "json")
    entries = json.loads(out)
    assert code == 0 and len(entries) == 2
    newest, first = entries
    assert newest["at"] >= first["at"] and newest["revision"] == first["revision"] == revision
    assert "@" in newest["who"] and newest["command"] == "reconcile apply" and newest["ok"]
    assert [a["verb"] for a in newest["actions"]] == ["stop-campaign"]
    assert newest["actions"][0]["resource"] == "Campaign/rollout-b" and newest["actions"][0]["outcome"] == "succeeded"
    assert {a["resource"] for a in first["actions"]} >= {"Campaign/rollout-a", "Campaign/rollout-b", "Package/fw"}
    code, text = history(capsys)
    assert code == 0 and "stop-campaign" in text and "Campaign/rollout-b" in text


def test_history_of_one_campaign_shows_only_what_was_done_to_it(decl: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(decl), "--state", "sqlite:///state.db"]) == 0
    (decl / "b.yaml").write_text(repo.campaign_yaml("rollout-b", gateways=["gw-00003"], state="stopped"))
    assert main([str(decl), "--state", "sqlite:///state.db"]) == 0
    code, out = history(capsys, "--campaign", "rollout-a", "--output", "json")
    entries = json.loads(out)
    assert code == 0 and len(entries) == 1
    assert {a["resource"] for a in entries[0]["actions"]} == {"Campaign/rollout-a"}
    code, out = history(capsys, "--campaign", "rollout-b", "--limit", "1", "--output", "json")
    assert [a["verb"] for a in json.loads(out)[0]["actions"]] == ["stop-campaign"]


def test_entries_older_than_the_retention_are_dropped(tmp_path: Path) -> None:
    store = open_writer(f"sqlite:///{tmp_path / 's.db'}", base_dir=tmp_path, command="test")
    try:
        action = {"verb": "start-campaign", "resource": "Campaign/x", "outcome": "succeeded", "message": ""}
        now = datetime(2026, 12, 7, tzinfo=UTC)
        store.history.record(revision="a", who="u@h", command="c", seconds=1, ok=True, actions=[action],
                             now=now - timedelta(days=100))
        store.history.record(revision="b", who="u@h", command="c", seconds=1, ok=True, actions=[action],
                             now=now - timedelta(days=10))
        store.history.record(revision="c", who="u@h", command="c", seconds=1, ok=True, actions=[action], now=now,
                             retention_days=90)
        assert [e.revision for e in store.history.entries()] == ["c", "b"]
    finally:
        store.close()


def test_without_a_store_history_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = history(capsys)
    assert code == 1 and "no state store" in out and "Traceback" not in out
