"""What lives inside a campaign this tool creates on a gateway fleet: its gateways, per-gateway packages,
schedules, callbacks, the distribution list, and progressive rollout waves.

Schedules and callbacks the backend cannot read back (its traits' ``write_only``) are compared with what
the state store says was last applied; without a store they are planned again and the plan says so.
Schedule windows, fixed or recurring, and stranded gateways are planned in ``gateway_schedules``. Gateway
state names (succeeded, failed) come from the backend's traits.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reconciler.actions import Action, Produced, Verb
from reconciler.model import CallbackKind, IotCampaignSpec, Kind, ResourceKey
from reconciler.observed import ObservedGateway, ObservedIotCampaign
from reconciler.planner import memory
from reconciler.planner.plan import PlanBuilder, PlanInput
from reconciler.planner.gateway_schedules import plan_schedules
from reconciler.traits import BackendTraits

CampaignId = str | Produced
T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class CampaignScope:
    """One created campaign being planned: where it lives and how its packages are referred to."""

    inp: PlanInput
    backend: str
    spec: IotCampaignSpec
    package_ids: Mapping[str, CampaignId]  # package name -> id or the upload that will produce it
    package_deps: Mapping[str, str]  # package name -> upload action id (only for new uploads)
    program_names: Mapping[str, str] = field(default_factory=dict)  # backend program id -> its name

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(Kind.CAMPAIGN, self.spec.name)

    @property
    def traits(self) -> BackendTraits:
        return self.inp.traits[self.backend]

    def remembered(self, field: str) -> bool:
        """Whether ``field`` is write-only on this backend, so compared with what the store remembers;
        a field the backend neither reads back nor is remembered is sent again on every pass."""
        return field in self.traits.write_only

    def action_id(self, *parts: str) -> str:
        return "/".join((self.backend, "campaign", self.spec.name, *parts))

    def packages(self, names: tuple[str, ...]) -> tuple[list[CampaignId], tuple[str, ...]]:
        ids = [self.package_ids[name] for name in names]
        deps = tuple(self.package_deps[name] for name in names if name in self.package_deps)
        return ids, deps


@dataclass(frozen=True)
class RolloutDecision:
    gateways: frozenset[str]
    reason: str
    halt: str | None = None  # set when the failure rate is over the limit: the campaign must stop


def first_by(items: Iterable[T], key: Callable[[T], K], order: Callable[[T], Any]) -> dict[K, T]:
    """One item per key, the same whatever order the backend listed them in (the lowest ``order`` wins;
    between items ``order`` does not tell apart, the lowest ``repr``)."""
    chosen: dict[K, T] = {}
    for item in sorted(items, key=lambda i: (order(i), repr(i)), reverse=True):
        chosen[key(item)] = item
    return chosen


def gateways_by_id(observed: ObservedIotCampaign | None) -> dict[str, ObservedGateway]:
    if observed is None:
        return {}
    return first_by(observed.gateways, lambda g: g.gateway_id, lambda g: (g.gateway_id, g.state, g.closed))


def declared_gateways(scope: CampaignScope) -> frozenset[str]:
    gateways: set[str] = set()
    for assignment in scope.inp.desired.assignments_of(scope.spec.name):
        gateways.update(assignment.gateways)
    return frozenset(gateways)


def wave_sizes(shares: tuple[float, ...], declared: int) -> list[int]:
    """Gateways in the campaign at the end of each wave: its share of the whole declared list, rounded up
    (``ceil``, with float noise taken off first: 7% of 100 is 7, not 8)."""
    return [math.ceil(round(share * declared, 9)) for share in shares]


def rollout_gateways(scope: CampaignScope, declared: frozenset[str],
                     observed: Mapping[str, ObservedGateway]) -> RolloutDecision:
    """The gateways a rollout wants now. Membership only grows, unless git says otherwise:

    - *members* are the declared gateways already in the campaign; every one of them stays (only a gateway
      removed from git leaves, see ``plan_gateways``);
    - wave k's size is ``ceil(share_k x len(declared))`` (the whole declared list, not what is left);
    - the current wave is the first whose size is at least the number of members (none yet: wave 1);
    - the current wave is filled up to its size with declared gateways not yet in, in a stable order (a
      hash of campaign and gateway id), whatever the success rate: gateways added to git join at once;
    - once the current wave is full, the next one opens when the members' success rate (ACTIVATION_COMPLETE)
      reaches ``successThreshold`` (succeeded: the traits' ``member_succeeded``, e.g. ACTIVATION_COMPLETE);
    - above ``maxFailureRate`` (failed / gateways in the campaign) nothing is added and the campaign stops.
    """
    rollout = scope.spec.rollout
    if rollout is None:
        return RolloutDecision(declared, "")
    lifecycle = scope.traits.lifecycle
    members = frozenset(observed) & declared
    failed = sum(1 for g in observed.values() if g.state in lifecycle.member_failed)
    if observed and failed / len(observed) > rollout.max_failure_rate:
        rate = failed / len(observed)
        return RolloutDecision(members, "",
                               halt=f"failure rate {rate:.0%} is over maxFailureRate {rollout.max_failure_rate:.0%}")
    sizes = wave_sizes(rollout.waves, len(declared))
    wave = next((i for i, size in enumerate(sizes) if len(members) <= size), len(sizes) - 1)
    done = sum(1 for g in members if observed[g].state in lifecycle.member_succeeded)
    while (wave < len(sizes) - 1 and members and len(members) >= sizes[wave]
           and done / len(members) >= rollout.success_threshold):
        wave += 1
    size = max(sizes[wave], len(members))
    joining = sorted(declared - members,
                     key=lambda g: hashlib.sha256(f"{scope.spec.name}/{g}".encode()).hexdigest())
    reason = f"rollout wave {wave + 1} of {len(rollout.waves)} ({rollout.waves[wave]:.0%}: {size} gateways)"
    return RolloutDecision(members | frozenset(joining[: size - len(members)]), reason)


def plan_gateways(scope: CampaignScope, b: PlanBuilder, campaign_id: CampaignId,
                  observed: ObservedIotCampaign | None, after: tuple[str, ...],
                  wanted: frozenset[str]) -> list[str]:
    """Add, remove and configure gateways; returns the ids of the actions a start must wait for.

    Only gateways no assignment in git lists (removed from git) are removed, never a declared one that a
    rollout has not reached (``wanted`` leaves it out): a gateway in the campaign stays unless git says
    otherwise. Removing gateways from a STARTED campaign abandons their update: it is ``destructive``."""
    steps: list[str] = []
    seen = gateways_by_id(observed)
    declared = declared_gateways(scope)
    add = sorted(wanted - seen.keys())
    remove = sorted(g for g, state in seen.items() if g not in declared and not state.closed)
    kept_closed = sorted(g for g, state in seen.items() if g not in declared and state.closed)
    add_id = None
    if add:
        add_id = b.add(Action(scope.action_id("add-gateways"), Verb.ADD_GATEWAYS, scope.key, scope.backend,
                              {"campaign_id": campaign_id, "gateway_ids": add}, after,
                              f"{len(add)} gateway(s) assigned in git but not in the campaign"))
        steps.append(add_id)
    if remove:
        started = observed is not None and observed.status == scope.traits.lifecycle.started
        steps.append(b.add(Action(scope.action_id("remove-gateways"), Verb.REMOVE_GATEWAYS, scope.key,
                                  scope.backend, {"campaign_id": campaign_id, "gateway_ids": remove}, after,
                                  f"{len(remove)} gateway(s) removed from git"
                                  + (f"; the campaign is {observed.status}: their update is abandoned"
                                     if observed is not None and started else ""),
                                  destructive=started)))
    if kept_closed:
        b.noop(scope.key, f"{len(kept_closed)} unassigned gateway(s) are closed and stay in the campaign")
    config_after = after + ((add_id,) if add_id else ())
    steps += _plan_overrides(scope, b, campaign_id, seen, wanted, config_after)
    steps += plan_schedules(scope, b, campaign_id, seen, wanted, config_after)
    steps += _plan_callbacks(scope, b, campaign_id, after)
    steps += _plan_distribution_list(scope, b, campaign_id, observed, after)
    return steps


def _plan_overrides(scope: CampaignScope, b: PlanBuilder, campaign_id: CampaignId,
                    seen: Mapping[str, ObservedGateway], wanted: frozenset[str], after: tuple[str, ...]) -> list[str]:
    steps = []
    for assignment in sorted(scope.inp.desired.assignments_of(scope.spec.name), key=lambda a: a.name):
        if not assignment.packages:
            continue
        ids, deps = scope.packages(assignment.packages)
        for gateway in sorted(set(assignment.gateways) & wanted):
            current = seen[gateway].packages if gateway in seen else None
            if current is not None and sorted(current) == sorted(str(i) for i in ids):
                continue
            steps.append(b.add(Action(
                scope.action_id("set-gateway-packages", gateway), Verb.SET_GATEWAY_PACKAGES, scope.key,
                scope.backend, {"campaign_id": campaign_id, "gateway_id": gateway, "packages": ids},
                after + deps, f"package override from assignment {assignment.name}")))
    return steps


def _plan_callbacks(scope: CampaignScope, b: PlanBuilder, campaign_id: CampaignId, after: tuple[str, ...]) -> list[str]:
    store = scope.inp.store
    remembered = scope.remembered("callbacks")
    if scope.spec.callbacks and not store.available and remembered:
        if isinstance(campaign_id, str) and not scope.inp.options.reapply_unknown:
            b.note(f"unknown without a state store: {len(scope.spec.callbacks)} callback(s) of campaign "
                   f"{scope.spec.name} (the IoT campaign manager cannot read them back); not compared")
            return []
        b.note("callbacks cannot be read back from the IoT campaign manager and no state store is available: "
               "every callback is registered again")
    steps = []
    for kind in sorted(scope.spec.callbacks, key=lambda k: k.value):
        callback = scope.spec.callbacks[kind]
        value = memory.callback_value(callback.destination, callback.tracked_states)
        if remembered and isinstance(campaign_id, str) and store.last_applied(
                scope.backend, memory.CALLBACK, memory.callback_key(campaign_id, kind.value)) == value:
            continue
        steps.append(b.add(Action(
            scope.action_id("set-callback", kind.value), Verb.SET_CALLBACK, scope.key, scope.backend,
            {"campaign_id": campaign_id, "callback": CallbackKind(kind).value, "destination": callback.destination,
             "tracked_states": list(callback.tracked_states)}, after, f"{kind.value} callback")))
    return steps


def _plan_distribution_list(scope: CampaignScope, b: PlanBuilder, campaign_id: CampaignId,
                            observed: ObservedIotCampaign | None, after: tuple[str, ...]) -> list[str]:
    wanted = scope.spec.distribution_list
    if wanted is None:
        return []
    if observed is not None and observed.distribution_list_id == wanted.id and (
            wanted.reevaluation_interval_seconds is None
            or observed.distribution_list_interval == wanted.reevaluation_interval_seconds):
        return []
    return [b.add(Action(
        scope.action_id("set-distribution-list"), Verb.SET_DISTRIBUTION_LIST, scope.key, scope.backend,
        {"campaign_id": campaign_id, "distribution_list_id": wanted.id,
         "interval": wanted.reevaluation_interval_seconds}, after, "distribution list differs"))]
