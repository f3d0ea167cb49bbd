"""``--target KIND/NAME``: plan and apply only those resources and what they depend on; a subset of files
is never taken for "everything else was removed" by --prune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sandbox.run import RunningSandbox
from reconciler.sandbox.testing import SandboxControls
from tests.engine import sandbox_repo as repo


@pytest.fixture
def decl(decl: Path) -> Path:
    repo.write(decl, "a.yaml", repo.campaign_yaml("rollout-a", gateways=["gw-00001", "gw-00002"]))
    repo.write(decl, "b.yaml", repo.campaign_yaml("rollout-b", gateways=["gw-00003"]))
    return decl


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--dry-run", "--output", "json", "--state", "sqlite:///state.db", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {}


def test_a_target_plans_its_resource_and_what_it_depends_on_and_applies_only_that(
    decl: Path, sandbox: RunningSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    _, whole = plan_json(capsys, str(decl))
    code, targeted = plan_json(capsys, str(decl), "--target", "Campaign/rollout-a")
    assert code == 0
    resources = {a["resource"] for a in targeted["actions"]}
    assert resources == {"Campaign/rollout-a", "Package/fw"}  # the package it needs comes along
    assert len(targeted["actions"]) < len(whole["actions"])
    assert any("targeted (--target Campaign/rollout-a)" in n for n in targeted["notes"])
    assert main([str(decl), "--state", "sqlite:///state.db", "--target", "Campaign/rollout-a"]) == 0
    names = {c["name"] for c in SandboxControls.of(sandbox)["iot-campaigns"].state()["campaigns"]}
    assert "rollout-a" in names and "rollout-b" not in names
    _, rest = plan_json(capsys, str(decl))
    assert {a["resource"] for a in rest["actions"]} == {"Campaign/rollout-b"}


def test_a_schedule_or_assignment_targets_its_campaign(decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, by_schedule = plan_json(capsys, str(decl), "--target", "Schedule/rollout-b-nights")
    _, by_assignment = plan_json(capsys, str(decl), "--target", "GatewayAssignment/rollout-b-gws")
    for plan in (by_schedule, by_assignment):
        assert {a["resource"] for a in plan["actions"]} == {"Campaign/rollout-b", "Package/fw"}


@pytest.mark.parametrize(("target", "expected"), [("Campaign/no-such", "no Campaign named 'no-such'"),
                                                   ("rollout-a", "expected KIND/NAME"),
                                                   ("Widget/x", "expected KIND/NAME")])
def test_a_target_that_names_nothing_is_an_error(decl: Path, capsys: pytest.CaptureFixture[str], target: str,
                                                 expected: str) -> None:
    capsys.readouterr()
    code = main(["--dry-run", str(decl), "--state", "sqlite:///state.db", "--target", target])
    captured = capsys.readouterr()
    assert code == 1 and expected in captured.out + captured.err


def test_prune_with_single_files_is_refused(decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = main([str(decl / "a.yaml"), str(decl / "backends.yaml"), "--prune", "--state", "sqlite:///state.db"])
    err = capsys.readouterr().err
    assert code == 1 and "--prune with single files" in err
