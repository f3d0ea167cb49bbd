"""Per-resource health for the daemon: temporary failures back off, permanent ones stall the resource
until its declaration changes. Pure bookkeeping: time comes in as numbers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from reconciler.engine.execute import ExecutionReport, OutcomeStatus
from reconciler.model import DesiredState, Kind, ResourceKey
from reconciler.planner.plan import Noop, Plan


def fingerprints(desired: DesiredState) -> dict[ResourceKey, str]:
    """A stable text per resource that changes whenever anything declared about it changes."""
    prints: dict[ResourceKey, str] = {}
    for name, package in desired.packages.items():
        prints[ResourceKey(Kind.PACKAGE, name)] = repr(package)
    for name, campaign in desired.campaigns.items():
        related = sorted(map(repr, desired.assignments_of(name))) + sorted(map(repr, desired.schedules_of(name)))
        prints[ResourceKey(Kind.CAMPAIGN, name)] = repr(campaign) + "".join(related)
    return prints


@dataclass
class ResourceHealth:
    base_delay: float = 5.0
    max_delay: float = 300.0
    failures: dict[ResourceKey, int] = field(default_factory=dict)
    retry_at: dict[ResourceKey, float] = field(default_factory=dict)
    stalled: dict[ResourceKey, tuple[str, str]] = field(default_factory=dict)  # key -> (fingerprint, reason)

    def spec_changed(self, prints: Mapping[ResourceKey, str]) -> None:
        """A changed declaration clears a stall and the backoff: the operator fixed something."""
        for key, (print_, _) in list(self.stalled.items()):
            if prints.get(key) != print_:
                del self.stalled[key]
                self.failures.pop(key, None)
                self.retry_at.pop(key, None)

    def blocked(self, key: ResourceKey, now: float) -> str | None:
        if key in self.stalled:
            return f"stalled until its declaration changes: {self.stalled[key][1]}"
        when = self.retry_at.get(key)
        if when is not None and when > now:
            return f"backing off for {when - now:.0f}s after {self.failures.get(key, 0)} failed attempt(s)"
        return None

    def hold(self, plan: Plan, now: float) -> Plan:
        """The plan without the actions of blocked resources (and whatever depends on them)."""
        held: set[str] = set()
        noops = list(plan.noops)
        reasons: dict[ResourceKey, str] = {}
        for action in plan.actions:
            reason = self.blocked(action.key, now)
            if reason or any(dep in held for dep in action.depends_on):
                held.add(action.id)
                if reason and action.key not in reasons:
                    reasons[action.key] = reason
        noops += [Noop(key, reason) for key, reason in reasons.items()]
        return replace(plan, actions=tuple(a for a in plan.actions if a.id not in held), noops=tuple(noops))

    def record(self, report: ExecutionReport, prints: Mapping[ResourceKey, str], now: float) -> None:
        by_key: dict[ResourceKey, list[OutcomeStatus]] = {}
        for outcome in report.outcomes:
            by_key.setdefault(outcome.key, []).append(outcome.status)
            if outcome.permanent:
                self.stalled[outcome.key] = (prints.get(outcome.key, ""), outcome.message)
        for key, statuses in by_key.items():
            if key in self.stalled:
                continue
            if all(s is OutcomeStatus.SUCCEEDED for s in statuses):
                self.failures.pop(key, None)
                self.retry_at.pop(key, None)
                continue
            count = self.failures.get(key, 0) + 1
            self.failures[key] = count
            self.retry_at[key] = now + min(self.max_delay, self.base_delay * 2 ** (count - 1))

    def next_retry(self, now: float) -> float | None:
        future = [t for t in self.retry_at.values() if t > now]
        return min(future) if future else None
