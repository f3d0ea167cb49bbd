"""Property-based tests of the planner (Hypothesis), on desired and observed states built directly as
model objects (``planner_states.py``): ``plan()`` never raises, is deterministic (the same input twice,
or the observed lists shuffled, gives the same plan), never plans a destructive action against a backend
that could not be read, plans destructive actions only when asked (``--prune``, ``--allow-replace``) or
when git removed gateways from a STARTED campaign, prunes only what the inventory says this tool created,
and every dependency it plans exists.

Default: 200 examples per property; the slow run: 5,000. The number run is printed as a figure.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.actions import Action, Produced, Verb
from reconciler.model import BackendSpec, BackendType, DesiredState, IotCampaignSpec, PackageSpec
from reconciler.observed import BackendObservation, ObservedIotCampaign, ObservedIotPackage, ObservedState
from reconciler.planner import Plan, PlanInput, PlanOptions, PruneMode, plan
from reconciler.state.store import InventoryEntry, StoreView
from tests.reliability.figures import record
from tests.reliability.planner_states import NOW, TRAITS, plan_inputs

DESTRUCTIVE_VERBS = frozenset({Verb.REMOVE_GATEWAYS, Verb.STOP_CAMPAIGN, Verb.DELETE_CAMPAIGN, Verb.DELETE_PACKAGE,
                               Verb.STOP_SMS_TASK, Verb.CANCEL_PARTICIPANT, Verb.CLOSE_GATEWAY})
EXAMPLES = [pytest.param(200, id="200-examples"), pytest.param(5000, id="5000-examples", marks=pytest.mark.slow)]


def run_property(examples: int, name: str, check: Callable[[PlanInput, random.Random], None]) -> int:
    """Run ``check`` on ``examples`` generated inputs; return how many ran."""
    ran = Counter[str]()

    @settings(max_examples=examples, deadline=None, derandomize=examples <= 200,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(inp=plan_inputs(), seed=st.integers(0, 2**32 - 1))
    def property_holds(inp: PlanInput, seed: int) -> None:
        ran["examples"] += 1
        check(inp, random.Random(seed))

    try:
        property_holds()
    finally:
        record(f"fuzz.planner.{name}", ran["examples"])
    return ran["examples"]


def shuffled(observed: ObservedState, rng: random.Random) -> ObservedState:
    """Every list the backends return, in another order."""
    def mix(items: tuple) -> tuple:  # type: ignore[type-arg]
        items = list(items)
        rng.shuffle(items)
        return tuple(items)

    backends = {}
    for name, o in rng.sample(sorted(observed.backends.items()), len(observed.backends)):
        backends[name] = dataclasses.replace(
            o, iot_packages=mix(o.iot_packages), sms_ports=mix(o.sms_ports),
            iot_campaigns=mix(tuple(dataclasses.replace(c, gateways=mix(c.gateways)) for c in o.iot_campaigns)),
            sim_campaigns=mix(tuple(dataclasses.replace(c, participants=mix(c.participants))
                                    for c in o.sim_campaigns)))
    return ObservedState(backends)


def unreadable(inp: PlanInput) -> set[str]:
    return {name for name in inp.desired.backends
            if name not in inp.observed.backends or not inp.observed.backends[name].readable}


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_plan_never_raises_and_is_deterministic(examples: int) -> None:
    """The same input twice gives the same plan, and so do the observed lists in another order."""
    def check(inp: PlanInput, rng: random.Random) -> None:
        first = plan(inp)
        assert plan(inp) == first
        assert plan(dataclasses.replace(inp, observed=shuffled(inp.observed, rng))) == first

    assert run_property(examples, "deterministic", check) == examples


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_nothing_destructive_is_planned_against_an_unreadable_backend(examples: int) -> None:
    """No destructive action (flag or remove/stop/delete verb) names a backend that could not be read."""
    def check(inp: PlanInput, rng: random.Random) -> None:
        blind = unreadable(inp)
        decided = plan(inp)
        bad = [a.id for a in decided.actions if a.backend in blind and (a.destructive or a.verb in DESTRUCTIVE_VERBS)]
        assert bad == []
        assert set(decided.unreadable) == blind

    assert run_property(examples, "unreadable", check) == examples


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_destructive_actions_need_prune_or_replace_and_touch_only_owned_objects(examples: int) -> None:
    """``destructive`` appears only with --prune or --allow-replace, or on removing gateways git no longer
    lists from a STARTED campaign; prune acts only on inventory objects."""
    def check(inp: PlanInput, rng: random.Random) -> None:
        owned = {(e.backend, e.remote_id) for e in inp.store.inventory}
        for action in plan(inp).actions:
            if not action.destructive:
                continue
            if action.verb is Verb.REMOVE_GATEWAYS:
                assert _removed_from_git_of_a_started_campaign(inp, action), action.id
                continue
            assert inp.options.prune is not PruneMode.OFF or inp.options.allow_replace, action.id
            if "/prune/" in action.id and action.verb is not Verb.STOP_SMS_TASK:
                target = action.params.get("campaign_id") or action.params.get("package_id")
                assert (action.backend, target) in owned, action.id

    assert run_property(examples, "destructive", check) == examples


def _removed_from_git_of_a_started_campaign(inp: PlanInput, action: Action) -> bool:
    campaign = next(c for c in inp.observed.backends[action.backend].iot_campaigns
                    if c.id == action.params["campaign_id"])
    listed = {g for a in inp.desired.assignments_of(campaign.name) for g in a.gateways}
    return campaign.status == "STARTED" and not listed & set(action.params["gateway_ids"])


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_every_planned_dependency_and_reference_exists(examples: int) -> None:
    """Action ids are unique; every ``depends_on`` and ``Produced`` names an earlier action of the plan."""
    def check(inp: PlanInput, rng: random.Random) -> None:
        decided: Plan = plan(inp)
        seen: set[str] = set()
        for action in decided.actions:
            assert action.id not in seen
            assert set(action.depends_on) <= seen, action.id
            refs = [v for v in action.params.values() if isinstance(v, Produced)]
            refs += [i for v in action.params.values() if isinstance(v, list) for i in v if isinstance(i, Produced)]
            assert {r.action_id for r in refs} <= seen, action.id
            seen.add(action.id)

    assert run_property(examples, "dependencies", check) == examples


@pytest.mark.parametrize("listing", [("pkg-0", "pkg-1"), ("pkg-1", "pkg-0")], ids=["listed-0-1", "listed-1-0"])
@pytest.mark.parametrize("in_use", ["pkg-0", "pkg-1"], ids=["uses-0", "uses-1"])
@pytest.mark.parametrize("allow_replace", [False, True], ids=["plain", "allow-replace"])
def test_a_duplicate_package_upload_does_not_make_an_in_sync_campaign_look_changed(
    listing: tuple[str, str], in_use: str, allow_replace: bool
) -> None:
    """The minimal case behind the shuffled-order failure above: the backend holds two programs with the
    declared package's upload name (two reconcilers uploaded at once, or someone by hand) and the started
    campaign uses one of them. Whatever the listing order and whichever copy it uses, the campaign is in
    sync: no error, and never a replace (stop, archive, create anew) of a running campaign."""
    package = PackageSpec("p1", "iot", "packages/p1.bin", "", "a" * 64, 1)
    desired = DesiredState({"iot": BackendSpec("iot", BackendType.IOT_CAMPAIGNS, "http://127.0.0.1:8702")},
                           {"p1": package}, {"c1": IotCampaignSpec("c1", "iot", packages=("p1",))})
    observed = ObservedState({"iot": BackendObservation(
        "iot", iot_packages=tuple(ObservedIotPackage(pid, package.upload_name) for pid in listing),
        iot_campaigns=(ObservedIotCampaign("camp-1", "c1", "STARTED", packages=(in_use,)),))})
    ours = StoreView(inventory=frozenset({InventoryEntry("iot", "campaign", "c1", "camp-1")}))  # created by us
    decided = plan(PlanInput(desired, observed, {"iot": TRAITS[BackendType.IOT_CAMPAIGNS]}, ours, NOW,
                             PlanOptions(allow_replace=allow_replace)))
    assert ([a.id for a in decided.actions], [d.message for d in decided.diagnostics]) == ([], [])


@pytest.mark.parametrize("listing", [("pkg-1", "pkg-2"), ("pkg-2", "pkg-1")], ids=["listed-1-2", "listed-2-1"])
def test_owned_packages_sharing_a_name_are_pruned_in_one_order_whatever_the_listing(
    listing: tuple[str, str]
) -> None:
    """Found by the 5,000-example run: two programs of ours with the same name, no longer declared, were
    pruned in the order the backend listed them, so the same state gave two plans."""
    desired = DesiredState({"iot": BackendSpec("iot", BackendType.IOT_CAMPAIGNS, "http://127.0.0.1:8702")}, {}, {})
    observed = ObservedState({"iot": BackendObservation(
        "iot", iot_packages=tuple(ObservedIotPackage(pid, "old") for pid in listing))})
    store = StoreView(inventory=frozenset(InventoryEntry("iot", "package", "old", pid) for pid in listing))
    decided = plan(PlanInput(desired, observed, {"iot": TRAITS[BackendType.IOT_CAMPAIGNS]}, store, NOW,
                             PlanOptions(prune=PruneMode.STOP)))
    assert [a.id for a in decided.actions] == ["iot/prune/pkg-1/delete-package", "iot/prune/pkg-2/delete-package"]
