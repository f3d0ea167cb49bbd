"""Adoption: a campaign of a declared name that this store did not create is never taken over silently;
``--adopt`` records it in the inventory and manages it from then on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sandbox.run import RunningSandbox
from reconciler.sandbox.testing import SandboxControls
from tests.engine import sandbox_repo as repo


def test_a_campaign_created_elsewhere_is_left_alone_until_adopted(sandbox: RunningSandbox, decl: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    repo.write(decl, "a.yaml", repo.campaign_yaml("rollout-a", gateways=["gw-00001"], state="stopped"))
    assert main([str(decl), "--state", "sqlite:///elsewhere.db"]) == 0  # another store created it
    repo.write(decl, "a.yaml", repo.campaign_yaml("rollout-a", gateways=["gw-00001", "gw-00002"]))
    before = repo.write_requests(sandbox)
    capsys.readouterr()
    assert main([str(decl), "--state", "sqlite:///here.db"]) == 0
    out = capsys.readouterr()
    assert "this tool did not create it" in out.out + out.err and "--adopt" in out.out + out.err
    assert repo.write_requests(sandbox) == before  # left alone: nothing written to it
    assert main([str(decl), "--state", "sqlite:///here.db", "--adopt"]) == 0
    capsys.readouterr()
    assert main(["--dry-run", "--output", "json", "--detailed-exitcode", str(decl), "--state",
                 "sqlite:///here.db"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["actions"] == [] and not any("adopt" in n["reason"] for n in plan["noops"])
    campaign = next(c for c in SandboxControls.of(sandbox)["iot-campaigns"].state()["campaigns"] if c["name"] == "rollout-a")
    assert campaign["status"] == "STARTED"
