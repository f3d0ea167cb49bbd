"""The Ansible peer converges the same fleet the reconciler declares: its inventory, built from the
benchmark's fleet, names the same gateways, overrides, YateOTA campaigns and SMS recipients as the
repository the reconciler reads (otherwise the side-by-side figures would compare different work)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "peers"))

from run_peers import REDUCED, inventory, reconciler_repo  # noqa: E402


def _documents(decl: Path) -> list[dict]:
    return [doc for path in sorted(decl.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def test_inventory_and_repository_declare_the_same_fleet(tmp_path: Path) -> None:
    decl = reconciler_repo(REDUCED, tmp_path / "repo", 18700)
    docs = _documents(decl)
    hosts = inventory(REDUCED, tmp_path / "repo", 18700)["all"]["children"]  # type: ignore[index]

    assignments = [d["spec"] for d in docs if d["kind"] == "GatewayAssignment" and "gateways" in d["spec"]]
    declared = {g for a in assignments for g in a["gateways"]}
    declared_overrides = {g for a in assignments if a.get("packages") for g in a["gateways"]}
    iot = hosts["iot"]["hosts"].values()
    assert {g for h in iot for g in h["gateways"]} == declared
    assert {g for h in iot for g in h["overrides"]} == declared_overrides != set()

    sims = {d["spec"]["campaignId"] for d in docs if d["kind"] == "Campaign" and "campaignId" in d["spec"]}
    assert {h["campaign_id"] for h in hosts["yate"]["hosts"].values()} == sims

    with (tmp_path / "repo" / "recipients" / "gateway.csv").open(encoding="utf-8") as file:
        numbers = [row["number"] for row in csv.DictReader(file)]
    batches = [h["recipients"] for h in hosts["sms"]["hosts"].values()]
    assert [r["number"] for batch in batches for r in batch] == numbers
    assert all(len(batch) <= 128 for batch in batches)
    assert not any(d["kind"] == "Campaign" and d["spec"].get("backend") == "og" for d in docs)
