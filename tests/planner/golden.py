"""Runs one planner golden case: a data file with desired YAML, observed state and the expected plan.

Case file keys: ``description``; ``now``; ``options`` (prune: off|stop|delete, allowReplace, adopt);
``store`` (available, inventory, applied, attempts); ``files`` (repo files to create); ``desired``
(YAML documents as users write them; a standard set of Backends is prepended); ``observed`` (per backend:
readable, error, iot_packages, iot_campaigns, sim_campaigns); ``expect`` (``actions``: the exact action
ids in order, or ``include`` / ``exclude`` lists of ids; ``noops``, ``errors``, ``warnings``, ``notes``:
message fragments; ``unreadable``: backend names; ``depends``: action id -> ids it must wait for;
``params``: action id -> parameters it must have, each compared whole; ``destructive``: the exact ids of
the destructive actions, in order; ``stranded``: campaign -> the fields of its ``Plan.stranded`` entry it
must have, e.g. ``{count: 2, by_window: {download: 2}}``, and ``{}`` for none at all). ``$upload:NAME`` in observed package names stands for
the backend name of the declared package NAME (it carries the content hash).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from reconciler.backends.registry import adapter_for
from reconciler.diagnostics import Severity
from reconciler.load import load_desired_state
from reconciler.model import DesiredState
from reconciler.observed import (
    BackendObservation,
    ObservedGateway,
    ObservedIotCampaign,
    ObservedIotPackage,
    ObservedParticipant,
    ObservedSimCampaign,
    ObservedState,
)
from reconciler.planner import Plan, PlanInput, PlanOptions, PruneMode, plan
from reconciler.planner.plan import SmsOutlook
from reconciler.state.store import InventoryEntry, StoreView

BACKENDS = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {name: iot}
spec: {type: iot-campaigns, url: "http://127.0.0.1:8702", auth: {username: admin, password: {env: IOT_PASSWORD}}}
---
apiVersion: reconciler/v1
kind: Backend
metadata: {name: iot-approval}
spec:
  type: iot-campaigns
  url: "http://127.0.0.1:8702"
  auth: {username: admin, password: {env: IOT_PASSWORD}}
  options: {approvalRequired: true}
---
apiVersion: reconciler/v1
kind: Backend
metadata: {name: yate}
spec: {type: yateota, url: "http://127.0.0.1:8701", auth: {secret: {env: YATE_SECRET}}}
---
apiVersion: reconciler/v1
kind: Backend
metadata: {name: gw}
spec: {type: sms-gateway, url: "https://127.0.0.1:8704", auth: {username: admin, password: {env: GW_PASSWORD}}}
---
apiVersion: reconciler/v1
kind: Backend
metadata: {name: og}
spec:
  type: ogangi
  url: "http://127.0.0.1:8703"
  auth: {instanceId: "7", publicKey: sandbox-public, privateKey: {env: OG_KEY}}
---
"""


def load_case(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def desired_from(case: Mapping[str, Any], repo: Path) -> DesiredState:
    (repo / ".git").mkdir()
    for name, content in (case.get("files") or {}).items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    documents = (BACKENDS + (case.get("desired") or "")).rstrip().removesuffix("---")
    (repo / "campaigns.yaml").write_text(documents, encoding="utf-8")
    loaded = load_desired_state([repo / "campaigns.yaml"], root=repo)
    assert loaded.desired is not None, [d.format() for d in loaded.diagnostics]
    return loaded.desired


def observed_from(case: Mapping[str, Any], desired: DesiredState) -> ObservedState:
    uploads = {f"$upload:{p.name}": p.upload_name for p in desired.packages.values()}
    backends = {}
    for name in desired.backends:
        raw = (case.get("observed") or {}).get(name) or {}
        backends[name] = BackendObservation(
            backend=name,
            readable=raw.get("readable", True),
            error=raw.get("error", ""),
            iot_packages=tuple(ObservedIotPackage(id=p["id"], name=uploads.get(p["name"], p["name"]))
                               for p in raw.get("iot_packages", [])),
            iot_campaigns=tuple(_iot_campaign(c) for c in raw.get("iot_campaigns", [])),
            sim_campaigns=tuple(_sim_campaign(c) for c in raw.get("sim_campaigns", [])),
        )
    return ObservedState(backends)


def _iot_campaign(raw: Mapping[str, Any]) -> ObservedIotCampaign:
    gateways = tuple(
        ObservedGateway(g["gateway_id"], g.get("state", "INSTANTIATED"), g.get("closed", False),
                        tuple(g["packages"]) if "packages" in g else None)
        for g in raw.get("gateways", []))
    return ObservedIotCampaign(id=raw["id"], name=raw["name"], status=raw["status"],
                               description=raw.get("description", ""), packages=tuple(raw.get("packages", [])),
                               gateways=gateways, distribution_list_id=raw.get("distribution_list_id"),
                               distribution_list_interval=raw.get("distribution_list_interval"))


def _sim_campaign(raw: Mapping[str, Any]) -> ObservedSimCampaign:
    participants = tuple(ObservedParticipant(p["participant_id"], raw["campaign_id"], p["state"],
                                             p.get("msisdn", ""), p.get("imsi", ""), p.get("attempts", 0))
                         for p in raw.get("participants", []))
    return ObservedSimCampaign(raw["campaign_id"], raw.get("name", ""), raw["state"], participants=participants)


def store_from(case: Mapping[str, Any]) -> StoreView:
    """The store of a case. Without ``store.inventory`` every observed IoT campaign counts as created by this
    tool (what the cases written before adoption assume); ``inventory: []`` says none is."""
    raw = case.get("store") or {}
    if "inventory" in raw:
        inventory = frozenset(InventoryEntry(**e) for e in raw["inventory"])
    else:
        inventory = frozenset(InventoryEntry(backend, "campaign", c["name"], str(c["id"]))
                              for backend, observed in (case.get("observed") or {}).items()
                              for c in (observed or {}).get("iot_campaigns", []))
    return StoreView(
        available=raw.get("available", True),
        inventory=inventory,
        applied={(b, s, k): v for b, s, k, v in raw.get("applied", [])},
        attempts={(b, k): n for b, k, n in raw.get("attempts", [])},
    )


def plan_case(case: Mapping[str, Any], repo: Path) -> Plan:
    desired = desired_from(case, repo)
    options = case.get("options") or {}
    return plan(PlanInput(
        desired=desired,
        observed=observed_from(case, desired),
        traits={name: adapter_for(spec.type).traits for name, spec in desired.backends.items()},
        store=store_from(case),
        now=datetime.fromisoformat(str(case.get("now", "2026-12-01T00:00:00+00:00")).replace("Z", "+00:00")),
        options=PlanOptions(prune=PruneMode(options.get("prune", "off")),
                            allow_replace=bool(options.get("allowReplace", False)),
                            adopt=bool(options.get("adopt", False))),
        sms={name: SmsOutlook(**{**raw, "open_tasks": tuple(raw.get("open_tasks", ()))})
             for name, raw in (case.get("sms") or {}).items()},
    ))


def check_expectations(result: Plan, expect: Mapping[str, Any]) -> None:
    ids = [a.id for a in result.actions]
    if "actions" in expect:
        assert ids == list(expect["actions"])
    for wanted in expect.get("include", []):
        assert wanted in ids, f"{wanted} missing from {ids}"
    for unwanted in expect.get("exclude", []):
        assert unwanted not in ids, f"{unwanted} planned"
    texts = {
        "noops": [f"{n.key}: {n.reason}" for n in result.noops],
        "errors": [d.message for d in result.diagnostics if d.severity is Severity.ERROR],
        "warnings": [d.message for d in result.diagnostics if d.severity is Severity.WARNING],
        "notes": list(result.notes),
    }
    for kind, found in texts.items():
        for fragment in expect.get(kind, []):
            assert any(fragment in text for text in found), f"{kind}: {fragment!r} not in {found}"
    if "no_errors" in expect or "errors" not in expect:
        assert not [d for d in result.diagnostics if d.severity is Severity.ERROR], \
            [d.message for d in result.diagnostics]
    if "unreadable" in expect:
        assert list(result.unreadable) == list(expect["unreadable"])
    for action_id, deps in (expect.get("depends") or {}).items():
        action = next(a for a in result.actions if a.id == action_id)
        for dep in deps:
            assert dep in action.depends_on, f"{action_id} does not wait for {dep}"
    for action_id, params in (expect.get("params") or {}).items():
        action = next(a for a in result.actions if a.id == action_id)
        for name, value in params.items():
            assert action.params.get(name) == value, f"{action_id} {name}: {action.params.get(name)!r}"
    if "destructive" in expect:
        assert [a.id for a in result.actions if a.destructive] == list(expect["destructive"])
    if "stranded" in expect:
        found = {s.campaign: s.as_json() for s in result.stranded}
        assert sorted(found) == sorted(expect["stranded"] or {}), found
        for campaign, fields in (expect["stranded"] or {}).items():
            for name, value in fields.items():
                assert found[campaign][name] == value, f"stranded {campaign} {name}: {found[campaign][name]!r}"
