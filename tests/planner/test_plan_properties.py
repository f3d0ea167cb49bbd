"""Planner properties: a plan applied to a (simulated) backend leaves nothing to do on the next plan, the
order in which the backend lists things does not change the plan, and a rollout's membership only grows
unless git removes gateways (Hypothesis)."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.actions import Action, Produced, Verb
from reconciler.backends.registry import adapter_for
from reconciler.cli.render import summary_counts
from reconciler.model import (
    BackendSpec,
    DesiredState,
    GatewayAssignmentSpec,
    IotCampaignSpec,
    IotRunState,
    Rollout,
)
from reconciler.observed import (
    BackendObservation,
    ObservedGateway,
    ObservedIotCampaign,
    ObservedIotPackage,
    ObservedState,
)
from reconciler.planner import Plan, PlanInput, PlanOptions, PruneMode, memory, plan
from reconciler.state.store import InventoryEntry, StoreView
from tests.planner.golden import desired_from, observed_from, plan_case

FLEET = """\
apiVersion: reconciler/v1
kind: Package
metadata: {name: fw}
spec: {backend: iot, file: pkg/fw.bin, description: Firmware}
---
apiVersion: reconciler/v1
kind: Package
metadata: {name: fw-de}
spec: {backend: iot, file: pkg/fw-de.bin, description: Firmware DE}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: north}
spec: {backend: iot, description: North, packages: [fw], state: running, settings: {reboot: graceful},
       callbacks: {completed: hook}, distributionList: {id: north-list, reevaluationIntervalSeconds: 600}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: south}
spec: {backend: iot, description: South, packages: [fw], state: STATE}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {name: north-gws}
spec: {campaign: north, gateways: [gw-00001, gw-00002, gw-00003], packages: [fw-de]}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {name: south-gws}
spec: {campaign: south, gateways: [GATEWAYS]}
---
apiVersion: reconciler/v1
kind: Schedule
metadata: {name: nights}
spec:
  campaign: north
  download: {begin: "2027-01-02T01:00:00Z", end: "2027-01-02T05:00:00Z"}
  activation: {begin: "2027-01-03T01:00:00Z", end: "2027-01-03T03:00:00Z"}
"""
FILES = {"pkg/fw.bin": "firmware", "pkg/fw-de.bin": "firmware de"}


class SimulatedIot:
    """Applies IoT actions to observed data the way the backend would, and records what the store would."""

    def __init__(self, observation: BackendObservation, store: StoreView) -> None:
        self.packages = {p.id: p for p in observation.iot_packages}
        self.campaigns = {c.id: c for c in observation.iot_campaigns}
        self.store = store
        self.produced: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Produced):
            return self.produced[value.action_id][value.field]
        return [self.resolve(v) for v in value] if isinstance(value, list) else value

    def apply(self, plan: Plan) -> None:
        for action in plan.actions:
            params = {k: self.resolve(v) for k, v in action.params.items()}
            produced = self.perform(action, params)
            self.produced[action.id] = produced
            resolved = replace(action, params=params)
            applied = dict(self.store.applied)
            for scope, key, value in memory.records_for(resolved, produced):
                applied[(action.backend, scope, key)] = value
            inventory = set(self.store.inventory)
            if action.verb is Verb.CREATE_CAMPAIGN:
                inventory.add(InventoryEntry(action.backend, "campaign", params["name"], produced["campaign_id"]))
            self.store = replace(self.store, applied=applied, inventory=frozenset(inventory))

    def perform(self, action: Action, p: dict[str, Any]) -> dict[str, Any]:
        verb = action.verb
        if verb is Verb.UPLOAD_PACKAGE:
            package = ObservedIotPackage(f"p{next(self.ids)}", p["name"], p["description"])
            self.packages[package.id] = package
            return {"package_id": package.id}
        if verb is Verb.CREATE_CAMPAIGN:
            campaign = ObservedIotCampaign(f"c{next(self.ids)}", p["name"], "CREATED", p["description"],
                                           tuple(p["packages"]))
            self.campaigns[campaign.id] = campaign
            return {"campaign_id": campaign.id}
        campaign = self.campaigns[p["campaign_id"]]
        gateways = {g.gateway_id: g for g in campaign.gateways}
        if verb is Verb.UPDATE_CAMPAIGN:
            campaign = replace(campaign, name=p["name"], description=p["description"], packages=tuple(p["packages"]))
        elif verb is Verb.ADD_GATEWAYS:
            gateways.update({g: ObservedGateway(g, "INSTANTIATED", packages=campaign.packages)
                             for g in p["gateway_ids"]})
        elif verb is Verb.REMOVE_GATEWAYS:
            for g in p["gateway_ids"]:
                del gateways[g]
        elif verb is Verb.SET_GATEWAY_PACKAGES:
            gateways[p["gateway_id"]] = replace(gateways[p["gateway_id"]], packages=tuple(p["packages"]))
        elif verb is Verb.SET_DISTRIBUTION_LIST:
            campaign = replace(campaign, distribution_list_id=p["distribution_list_id"],
                               distribution_list_interval=p["interval"])
        elif verb in (Verb.START_CAMPAIGN, Verb.STOP_CAMPAIGN, Verb.APPROVE_CAMPAIGN):
            status = {Verb.START_CAMPAIGN: "STARTED", Verb.STOP_CAMPAIGN: "STOPPED",
                      Verb.APPROVE_CAMPAIGN: "APPROVED"}[verb]
            campaign = replace(campaign, status=status)
        self.campaigns[campaign.id] = replace(campaign, gateways=tuple(gateways.values()))
        return {}

    def observation(self, backend: str) -> BackendObservation:
        return BackendObservation(backend=backend, iot_packages=tuple(self.packages.values()),
                                  iot_campaigns=tuple(self.campaigns.values()))


def declared(state: str, gateways: list[str]) -> str:
    return FLEET.replace("STATE", state).replace("GATEWAYS", ", ".join(gateways))


def replan(case: dict[str, Any], sim: SimulatedIot, repo: Path) -> Plan:
    """Plan again from what the simulated backend and store now hold."""
    desired = desired_from(case, repo)
    observed = observed_from({}, desired)
    backends = dict(observed.backends)
    backends["iot"] = sim.observation("iot")
    return plan(PlanInput(desired, replace(observed, backends=backends),
                          {n: adapter_for(s.type).traits for n, s in desired.backends.items()},
                          sim.store, datetime(2026, 12, 1, tzinfo=UTC), PlanOptions()))


@pytest.mark.parametrize(("first", "second"), [
    (("running", ["gw-00010", "gw-00011"]), ("running", ["gw-00010", "gw-00011"])),
    (("running", ["gw-00010", "gw-00011"]), ("stopped", ["gw-00011", "gw-00012"])),
    (("stopped", ["gw-00010"]), ("running", ["gw-00010", "gw-00013", "gw-00014"])),
])
def test_applying_a_plan_then_planning_again_gives_no_actions(
    tmp_path: Path, first: tuple[str, list[str]], second: tuple[str, list[str]]
) -> None:
    sim = SimulatedIot(BackendObservation("iot"), StoreView())
    for step, (state, gateways) in enumerate((first, second)):
        case = {"files": FILES, "desired": declared(state, gateways)}
        repo = tmp_path / f"step{step}"
        repo.mkdir()
        sim.apply(replan(case, sim, repo))
        again = tmp_path / f"again{step}"
        again.mkdir()
        assert [a.id for a in replan(case, sim, again).actions] == []


def test_the_order_backends_list_things_in_does_not_change_the_plan(tmp_path: Path) -> None:
    gateways = [{"gateway_id": f"gw-{i:05d}", "state": "INSTANTIATED"} for i in range(1, 9)]
    observed = {"iot": {"iot_packages": [{"id": "p1", "name": "$upload:fw"}, {"id": "p9", "name": "old-1"}],
                        "iot_campaigns": [{"id": "c1", "name": "north", "status": "STARTED", "description": "North",
                                           "packages": ["p1"], "gateways": gateways},
                                          {"id": "c2", "name": "south", "status": "CREATED",
                                           "description": "South", "packages": ["p1"], "gateways": []}]}}
    case = {"files": FILES, "desired": declared("running", ["gw-00010"]), "observed": observed}
    plans = []
    rng = random.Random(4)
    for attempt in range(4):
        shuffled = {"iot": {k: rng.sample(v, len(v)) for k, v in observed["iot"].items()}}
        for campaign in shuffled["iot"]["iot_campaigns"]:
            campaign["gateways"] = rng.sample(campaign["gateways"], len(campaign["gateways"]))
        repo = tmp_path / str(attempt)
        repo.mkdir()
        plans.append([(a.id, a.params.get("gateway_ids")) for a in plan_case({**case, "observed": shuffled}, repo).actions])
    assert all(p == plans[0] for p in plans)
    assert plans[0]


# --- rollouts only grow, unless git says otherwise ------------------------------------------------------

POOL = tuple(f"gw-{i:05d}" for i in range(1, 41))
GATEWAY_STATES = ("INSTANTIATED", "DOWNLOADING", "ACTIVATION_COMPLETE", "DOWNLOAD_FAILED", "ACTIVATION_FAILED")
SHARES = st.lists(st.sampled_from((0.05, 0.1, 0.2, 0.25, 0.5, 0.6, 0.75)), max_size=3, unique=True)
ROLLOUTS = st.none() | st.builds(lambda shares, success, failure: Rollout(tuple(sorted(shares)) + (1.0,), success,
                                                                          failure),
                                 SHARES, st.sampled_from((0.0, 0.5, 0.95, 1.0)), st.sampled_from((0.0, 0.05, 0.5, 1.0)))


@st.composite
def memberships(draw: st.DrawFn, *, superset: bool) -> PlanInput:
    """One IoT campaign in the backend with any gateways in any state, and a declared list that holds all
    of them (``superset``) or any gateways at all; any rollout, run state, status and options."""
    members = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=30))
    gateways = tuple(ObservedGateway(g, draw(st.sampled_from(GATEWAY_STATES)), draw(st.booleans()))
                     for g in members)
    others = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=40))
    listed = sorted(set(members) | set(others)) if superset else others
    cut = draw(st.integers(0, len(listed)))
    assignments = {name: GatewayAssignmentSpec(name, "roll", tuple(part))
                   for name, part in (("roll-a", listed[:cut]), ("roll-b", listed[cut:])) if part}
    spec = IotCampaignSpec("roll", "iot", "Rollout", state=draw(st.sampled_from(tuple(IotRunState))),
                           rollout=draw(ROLLOUTS))
    desired = DesiredState({"iot": BackendSpec("iot", "iot-campaigns", "http://127.0.0.1:8702")},
                           {}, {"roll": spec}, assignments)
    status = draw(st.sampled_from(("CREATED", "APPROVAL_NEEDED", "APPROVED", "STARTED", "STOPPED")))
    campaign = ObservedIotCampaign("c1", "roll", status, draw(st.sampled_from(("Rollout", "Changed"))),
                                   gateways=gateways)
    store = StoreView(inventory=frozenset({InventoryEntry("iot", "campaign", "roll", "c1")}))
    return PlanInput(desired, ObservedState({"iot": BackendObservation("iot", iot_campaigns=(campaign,))}),
                     {"iot": adapter_for("iot-campaigns").traits}, store, datetime(2026, 12, 1, tzinfo=UTC),
                     PlanOptions(prune=draw(st.sampled_from(tuple(PruneMode))), allow_replace=draw(st.booleans())))


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(inp=memberships(superset=True))
def test_a_declared_list_holding_every_gateway_in_the_campaign_removes_none(inp: PlanInput) -> None:
    """Whatever the campaign holds and in whatever state, a declared list that is a superset of it (more
    gateways, other wave percentages, any wave reached) never plans a remove-gateways."""
    assert [a.id for a in plan(inp).actions if a.verb is Verb.REMOVE_GATEWAYS] == []


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(inp=memberships(superset=False))
def test_only_gateways_removed_from_git_are_removed_and_destructively_when_started(inp: PlanInput) -> None:
    """remove-gateways names exactly the open gateways git no longer lists (never a declared one a rollout
    has not reached), is destructive exactly when the campaign is STARTED, and is a removal in the summary."""
    campaign = inp.observed.backends["iot"].iot_campaigns[0]
    listed = {g for a in inp.desired.assignments.values() for g in a.gateways}
    decided = plan(inp)
    removals = [a for a in decided.actions if a.verb is Verb.REMOVE_GATEWAYS]
    expected = sorted(g.gateway_id for g in campaign.gateways if g.gateway_id not in listed and not g.closed)
    if any(d.severity.value == "error" for d in decided.diagnostics) or any(
            a.verb is Verb.CREATE_CAMPAIGN for a in decided.actions):  # refused edit, or replaced: not this rule
        return
    assert [list(a.params["gateway_ids"]) for a in removals] == ([expected] if expected else [])
    for action in removals:
        assert action.destructive is (campaign.status == "STARTED")
        assert summary_counts(Plan(actions=(action,)))["remove"] == 1
