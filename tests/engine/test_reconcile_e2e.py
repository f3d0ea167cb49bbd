"""The reconcile loop end to end: real CLI entry point, real sandbox over loopback, real SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.engine import sandbox_repo as repo

GWS = ["gw-00001", "gw-00002", "gw-00003"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=50, seed=1)) as running:
        yield running


@pytest.fixture
def decl(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    SandboxControls.of(sandbox).reset()
    for key, value in repo.SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    folder = repo.make_repo(tmp_path / "ops", sandbox)
    repo.write(folder, "rollout.yaml", repo.campaign_yaml("rollout", gateways=GWS))
    repo.write(folder, "applet.yaml", repo.SIM_CAMPAIGN.replace("STATE", "running"))
    return folder


def reconcile(*args: str) -> int:
    return main([*args, "--state", "sqlite:///state.db"])


def iot_campaigns(sandbox: RunningSandbox) -> dict[str, dict]:
    state = SandboxControls.of(sandbox)["iot-campaigns"].state()
    return {c["name"]: c for c in state["campaigns"]}


def test_empty_backends_converge_and_a_second_plan_has_nothing_to_do(sandbox: RunningSandbox, decl: Path) -> None:
    assert reconcile(str(decl)) == 0
    campaign = iot_campaigns(sandbox)["rollout"]
    assert campaign["status"] == "STARTED"
    assert sorted(g["gatewayId"] for g in campaign["gateways"]) == GWS
    writes = repo.write_requests(sandbox)
    assert reconcile("--dry-run", "--detailed-exitcode", str(decl)) == 0
    assert reconcile(str(decl)) == 0
    assert repo.write_requests(sandbox) == writes


def test_dry_run_changes_nothing_and_reports_pending_changes(sandbox: RunningSandbox, decl: Path) -> None:
    assert reconcile("--dry-run", "--detailed-exitcode", str(decl)) == 2
    assert repo.write_requests(sandbox) == 0
    assert "rollout" not in iot_campaigns(sandbox)


def test_saved_plan_is_applied_exactly(sandbox: RunningSandbox, decl: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert reconcile("--dry-run", "--out", str(plan_file), str(decl)) == 0
    planned = [a["verb"] for a in json.loads(plan_file.read_text())["actions"]]
    assert reconcile("--plan", str(plan_file), str(decl)) == 0
    assert "create-campaign" in planned
    assert reconcile("--dry-run", "--detailed-exitcode", str(decl)) == 0


def test_a_stale_saved_plan_is_refused(sandbox: RunningSandbox, decl: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert reconcile("--dry-run", "--out", str(plan_file), str(decl)) == 0
    assert reconcile(str(decl)) == 0
    writes = repo.write_requests(sandbox)
    assert reconcile("--plan", str(plan_file), str(decl)) == 1
    assert repo.write_requests(sandbox) == writes


def test_removed_gateway_and_changed_window_converge(sandbox: RunningSandbox, decl: Path) -> None:
    assert reconcile(str(decl)) == 0
    repo.write(decl, "rollout.yaml", repo.campaign_yaml(
        "rollout", gateways=GWS[:2], window=("2027-01-03T01:00:00Z", "2027-01-03T05:00:00Z")))
    assert reconcile("--dry-run", "--detailed-exitcode", str(decl)) == 2
    assert reconcile(str(decl)) == 0
    campaign = iot_campaigns(sandbox)["rollout"]
    assert sorted(g["gatewayId"] for g in campaign["gateways"]) == GWS[:2]
    assert reconcile("--dry-run", "--detailed-exitcode", str(decl)) == 0


def test_declared_stopped_stops_the_campaign(sandbox: RunningSandbox, decl: Path) -> None:
    assert reconcile(str(decl)) == 0
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=GWS, state="stopped"))
    assert reconcile(str(decl)) == 0
    assert iot_campaigns(sandbox)["rollout"]["status"] == "STOPPED"


def test_deleted_campaign_needs_prune_to_stop(sandbox: RunningSandbox, decl: Path) -> None:
    assert reconcile(str(decl)) == 0
    (decl / "rollout.yaml").unlink()
    assert reconcile(str(decl)) == 0
    assert iot_campaigns(sandbox)["rollout"]["status"] == "STARTED"
    assert reconcile("--prune", str(decl)) == 0
    assert iot_campaigns(sandbox)["rollout"]["status"] == "STOPPED"
    assert reconcile("--prune=delete", str(decl)) == 0
    assert "rollout" not in iot_campaigns(sandbox)


def test_one_failing_campaign_leaves_the_others_converged(
    sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.write(decl, "broken.yaml", repo.campaign_yaml("broken", gateways=["gw-99999"]))
    assert reconcile(str(decl)) == 1
    out = capsys.readouterr()
    assert "Campaign/broken" in out.out + out.err
    campaigns = iot_campaigns(sandbox)
    assert campaigns["rollout"]["status"] == "STARTED"
    assert campaigns["broken"]["status"] != "STARTED"


def test_yateota_campaign_declared_paused_is_paused(sandbox: RunningSandbox, decl: Path) -> None:
    repo.write(decl, "applet.yaml", repo.SIM_CAMPAIGN.replace("STATE", "paused"))
    assert reconcile(str(decl)) == 0
    state = SandboxControls.of(sandbox)["yateota"].state()
    campaign = next(c for c in state["campaigns"] if int(c["campaign_id"]) == 147)
    assert campaign["state"] == "paused"
