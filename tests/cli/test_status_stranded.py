"""Stranded gateways end to end (issue 15): a fixed download window that already ended leaves the sandbox's
gateways in WAITING_FOR_DOWNLOAD; the plan warns with the count instead of saying the backends match, and
``reconcile status`` shows them (text and JSON). A recurring window gives them a window that is to come."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sandbox.run import RunningSandbox
from tests.engine import sandbox_repo as repo

GWS = ["gw-00001", "gw-00002", "gw-00003"]
PAST = ("2026-01-02T01:00:00Z", "2026-01-02T05:00:00Z")


def reconcile(*args: str) -> int:
    return main([*args, "--state", "sqlite:///state.db"])


def test_a_fixed_window_that_ended_strands_the_wave(sandbox: RunningSandbox, decl: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Plan and status both report the three gateways, their window's end and that nothing reschedules them."""
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=GWS, window=PAST))
    assert reconcile(str(decl)) == 0
    sandbox.clock.advance(3600)  # every gateway reaches its download step, whose window is long gone
    capsys.readouterr()

    assert reconcile("--dry-run", "--detailed-exitcode", str(decl)) == 0  # nothing can be done about it...
    out = capsys.readouterr()
    text = out.out + out.err
    assert ("warning: 3 gateway(s) stranded: their download window ended at 2026-01-02T05:00:00+00:00 before they "
            "finished (WAITING_FOR_DOWNLOAD 3); nothing reschedules a fixed window") in text
    assert "No changes. 3 gateway(s) are stranded" in text  # ...but it is not "the backends match"
    assert main(["validate", str(decl)]) == 0  # valid, with a warning at the window's end
    assert "warning: spec.download.end: the window ended at 2026-01-02T05:00:00+00:00" in capsys.readouterr().err

    assert main(["status", str(decl), "--state", "sqlite:///state.db"]) == 0
    status = capsys.readouterr().out
    assert "stranded: 3 gateway(s) (download 3; WAITING_FOR_DOWNLOAD 3)" in status
    assert "3 under a fixed window that nothing reschedules" in status

    assert main(["status", str(decl), "--state", "sqlite:///state.db", "--output", "json"]) == 0
    rows = {row["campaign"]: row for row in json.loads(capsys.readouterr().out)["campaigns"]}
    assert rows["rollout"]["stranded"] == {
        "count": 3, "by_window": {"download": 3}, "by_state": {"WAITING_FOR_DOWNLOAD": 3},
        "since": "2026-01-02T05:00:00+00:00", "rescheduled": 0, "gateways": GWS}


def test_a_recurring_window_is_scheduled_ahead_and_strands_nobody(sandbox: RunningSandbox, decl: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """After applying a daily window, the re-plan is empty and status counts no stranded gateway."""
    text = repo.campaign_yaml("rollout", gateways=GWS).replace(
        'download: {begin: "2027-01-02T01:00:00Z", end: "2027-01-02T05:00:00Z"}',
        'download: {daily: "01:00-05:00", timezone: Europe/Berlin}')
    repo.write(decl, "rollout.yaml", text)
    assert reconcile(str(decl)) == 0
    capsys.readouterr()
    assert reconcile("--dry-run", "--detailed-exitcode", str(decl)) == 0
    assert "No changes. The backends match the declared state." in capsys.readouterr().out
    assert main(["status", str(decl), "--state", "sqlite:///state.db", "--output", "json"]) == 0
    rows = {row["campaign"]: row for row in json.loads(capsys.readouterr().out)["campaigns"]}
    assert rows["rollout"]["stranded"] == {"count": 0}
