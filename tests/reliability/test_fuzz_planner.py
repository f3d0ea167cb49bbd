"""Property-based tests of the planner (Hypothesis), on desired and observed states built directly as
model objects (``planner_states.py``): ``plan()`` never raises, is deterministic (the same input twice,
or the observed lists shuffled, gives the same plan), never plans a destructive action against a backend
that could not be read, plans destructive actions only when asked (``--prune``, ``--allow-replace``) or
when git removed gateways from a STARTED campaign, prunes only what the inventory says this tool created,
and every dependency it plans exists.

Default: 200 examples per property; the slow run: 5,000. The number run is printed as a figure.

A failure found here is pinned as a golden case, not as Python code: shrink it to the smallest desired
YAML, observed state, store and options that still fail, write them as the next numbered file in
``tests/planner/cases/`` (format: ``tests/planner/golden.py``; a ``description`` that starts "Found by
fuzzing" and says what went wrong), one file per listing order or option that mattered, and check that
the case fails before the fix and passes after it. Cases 092-103 are the findings so far.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.actions import Action, Produced, Verb
from reconciler.observed import ObservedState
from reconciler.planner import Plan, PlanInput, PruneMode, plan
from tests.reliability.figures import record
from tests.reliability.planner_states import plan_inputs

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
    def mix(items: tuple[Any, ...]) -> tuple[Any, ...]:
        mixed = list(items)
        rng.shuffle(mixed)
        return tuple(mixed)

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
