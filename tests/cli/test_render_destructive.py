"""A destructive action stands out in every output: gateways removed from git leave a STARTED campaign as
``- remove-gateways [N gateways] (...) [destructive]`` in text and Markdown, ``"destructive": true`` in JSON,
and count as removals in the summary (as --prune's stop, delete-campaign and delete-package do)."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.cli.render import render_json, render_markdown, render_text
from tests.planner.golden import load_case, plan_case

CASES = Path(__file__).parents[1] / "planner" / "cases"


def case_plan(stem: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return plan_case(load_case(next(CASES.glob(f"{stem}-*.yaml"))), tmp_path)


def test_gateways_removed_from_a_started_campaign_are_a_destructive_removal(tmp_path: Path) -> None:
    plan = case_plan("067", tmp_path)
    line = ("- remove-gateways [3 gateways]  (3 gateway(s) removed from git; the campaign is STARTED: their update "
            "is abandoned)  [destructive]")
    text = render_text(plan)
    assert "Campaign/roll  (iot)\n  " + line in text
    assert text.endswith("Plan: 0 to create, 0 to change, 1 to remove, 0 state change(s) (1 actions).")
    markdown = render_markdown(plan)
    assert line in markdown and "| 0 | 0 | 1 | 0 | 1 |" in markdown
    body = json.loads(render_json(plan, paths=["."]))
    assert body["summary"]["remove"] == 1
    assert [(a["verb"], a["destructive"], len(a["params"]["gateway_ids"])) for a in body["actions"]] == [
        ("remove-gateways", True, 3)]


def test_gateways_removed_from_a_campaign_not_started_are_a_plain_removal(tmp_path: Path) -> None:
    text = render_text(case_plan("068", tmp_path))
    assert "  - remove-gateways [3 gateways]  (3 gateway(s) removed from git)\n" in text
    assert "[destructive]" not in text


def test_prune_marks_each_destructive_action_and_counts_deletions_as_removals(tmp_path: Path) -> None:
    plan = case_plan("071", tmp_path)
    text = render_text(plan)
    assert "  > stop-campaign  (removed from git (--prune))  [destructive]" in text
    assert "  - delete-campaign  (removed from git (--prune=delete))  [destructive]" in text
    assert ("  - delete-package  (no longer declared; only campaign(s) deleted in this plan use it "
            "(--prune=delete))  [destructive]") in text
    assert text.endswith("Plan: 0 to create, 0 to change, 3 to remove, 1 state change(s) (4 actions).")
    body = json.loads(render_json(plan, paths=["."]))
    assert [a["depends_on"] for a in body["actions"] if a["id"] == "iot/prune/p-old/delete-package"] == [
        ["iot/prune/c-old/delete-campaign"]]
