"""``--target KIND/NAME``: a plan cut down to some resources and what they depend on (Terraform's
``-target``). Pure: the whole plan is made first, then only the targeted actions and the actions they
depend on are kept, so a targeted apply does exactly what the full plan would do for those resources."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from reconciler.model import DesiredState, GatewayAssignmentSpec, Kind, ResourceKey, ScheduleSpec
from reconciler.planner.plan import Plan


def parse_targets(texts: Sequence[str]) -> tuple[list[ResourceKey], list[str]]:
    """``KIND/NAME`` strings to keys, and a problem per string that is not one."""
    kinds = {k.value.lower(): k for k in Kind}
    keys, problems = [], []
    for text in texts:
        kind, sep, name = text.partition("/")
        if not sep or not name or kind.lower() not in kinds:
            problems.append(f"--target {text!r}: expected KIND/NAME with KIND one of "
                            f"{', '.join(k.value for k in Kind)}, e.g. Campaign/fw-2-4-rollout")
            continue
        keys.append(ResourceKey(kinds[kind.lower()], name))
    return keys, problems


def resolve(keys: Iterable[ResourceKey], desired: DesiredState) -> set[ResourceKey]:
    """The resources whose actions a target selects: an assignment or schedule acts through its campaign,
    a backend (``only_targets``) through every action on it."""
    chosen: set[ResourceKey] = set()
    for key in keys:
        if key.kind is Kind.GATEWAY_ASSIGNMENT and key.name in desired.assignments:
            chosen.add(ResourceKey(Kind.CAMPAIGN, _campaign_of(desired.assignments[key.name])))
        elif key.kind is Kind.SCHEDULE and key.name in desired.schedules:
            chosen.add(ResourceKey(Kind.CAMPAIGN, _campaign_of(desired.schedules[key.name])))
        chosen.add(key)
    return chosen


def unknown_targets(keys: Iterable[ResourceKey], desired: DesiredState, plan: Plan) -> list[str]:
    """Targets that name nothing declared and nothing in the plan (a typo, most likely)."""
    declared = {Kind.BACKEND: desired.backends, Kind.PACKAGE: desired.packages, Kind.CAMPAIGN: desired.campaigns,
                Kind.GATEWAY_ASSIGNMENT: desired.assignments, Kind.SCHEDULE: desired.schedules,
                Kind.NOTIFICATION: desired.notifications}
    planned = {a.key for a in plan.actions} | {n.key for n in plan.noops}
    return [f"--target {key}: no {key.kind.value} named {key.name!r} is declared or planned"
            for key in keys if key.name not in declared[key.kind] and key not in planned]


def only_targets(plan: Plan, chosen: set[ResourceKey]) -> Plan:
    """The targeted actions and, transitively, the actions they depend on; noops of the targeted only."""
    by_id = {a.id: a for a in plan.actions}
    backends = {k.name for k in chosen if k.kind is Kind.BACKEND}
    keep: set[str] = set()
    todo = [a.id for a in plan.actions if a.key in chosen or a.backend in backends]
    while todo:
        action_id = todo.pop()
        if action_id in keep or action_id not in by_id:
            continue
        keep.add(action_id)
        todo.extend(by_id[action_id].depends_on)
    actions = tuple(a for a in plan.actions if a.id in keep)
    left = len(plan.actions) - len(actions)
    note = (f"targeted (--target {', '.join(sorted(str(k) for k in chosen))}): {len(actions)} of "
            f"{len(plan.actions)} actions; {left} left for a run without --target")
    return replace(plan, actions=actions, noops=tuple(n for n in plan.noops if n.key in chosen),
                   notes=(*plan.notes, note), pending=tuple(p for p in plan.pending
                                                           if any(p.startswith(f"{k}:") for k in chosen)))


def _campaign_of(spec: GatewayAssignmentSpec | ScheduleSpec) -> str:
    return str(spec.campaign)


__all__ = ["only_targets", "parse_targets", "resolve", "unknown_targets"]
