"""The plan: ordered actions, explained no-ops and diagnostics, plus what the planner needs as input.

The planner is pure: ``PlanInput`` holds everything (desired, observed, traits, what the store
remembers, the time, the options) and ``Plan`` is everything it decides. No I/O, no clock, no logging.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from reconciler.actions import Action, Verb
from reconciler.diagnostics import Diagnostic, Severity, has_errors
from reconciler.model import DesiredState, ResourceKey, SourceRef
from reconciler.observed import ObservedState
from reconciler.remembered import StoreView
from reconciler.traits import BackendTraits


class PruneMode(StrEnum):
    OFF = "off"  # objects removed from git are left alone (the plan says so)
    STOP = "stop"  # --prune: stop them
    DELETE = "delete"  # --prune=delete: stop, then delete (their history goes too)


@dataclass(frozen=True)
class PlanOptions:
    prune: PruneMode = PruneMode.OFF
    allow_replace: bool = False
    #: take over campaigns of the declared names that exist in a backend but that this tool did not create
    adopt: bool = False
    #: send SMS campaigns this store has no record of through backends that cannot be asked what they sent
    risk_duplicate_sms: bool = False
    #: without a store, write-only values of existing campaigns are unknown: False (a dry run) reports them
    #: as unknown instead of planning them again (an apply with --no-state re-applies them)
    reapply_unknown: bool = True


@dataclass(frozen=True)
class SmsOutlook:
    """Per SMS campaign, from the send ledger and the recipients file (read before planning)."""

    recipients: int = 0
    to_send: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)  # ledger rows by state
    open_tasks: tuple[str, ...] = ()  # backend tasks that may still hold queued messages
    backend: str = ""
    declared: bool = True  # False: only the ledger knows it (removed from git)
    #: nothing in this store says whether it was sent before, and the backend cannot be asked
    history_unknown: bool = False


@dataclass(frozen=True)
class PlanInput:
    desired: DesiredState
    observed: ObservedState
    traits: Mapping[str, BackendTraits]  # by backend name
    store: StoreView
    now: datetime
    options: PlanOptions = PlanOptions()
    sms: Mapping[str, SmsOutlook] = field(default_factory=dict)  # by campaign name


@dataclass(frozen=True)
class Noop:
    """A resource for which nothing is done, and why (so the plan explains itself)."""

    key: ResourceKey
    reason: str


@dataclass(frozen=True)
class StrandedGateways:
    """IoT gateways of one campaign whose schedule window ended before they finished the step it gates.

    A gateway is stranded when the window applied to it (a recurring window's last-applied occurrence, or
    a fixed window as declared) ended at or before ``now`` while its observed state shows it has not begun
    that step yet (e.g. WAITING_FOR_DOWNLOAD after its download window). Each gateway counts once, at the
    first such window in lifecycle order (download, execution, activation)."""

    campaign: str
    backend: str
    count: int  # distinct gateways
    by_window: Mapping[str, int] = field(default_factory=dict)  # "download" -> gateways
    by_state: Mapping[str, int] = field(default_factory=dict)  # observed gateway state -> gateways
    since: str = ""  # the earliest end among their windows, ISO 8601 (UTC)
    rescheduled: int = 0  # of them, how many this plan gives the next occurrence of a recurring window
    gateways: tuple[str, ...] = ()  # their ids, sorted

    def as_json(self) -> dict[str, object]:
        return {"campaign": self.campaign, "backend": self.backend, "count": self.count,
                "by_window": dict(self.by_window), "by_state": dict(self.by_state), "since": self.since,
                "rescheduled": self.rescheduled, "gateways": list(self.gateways)}


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    noops: tuple[Noop, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. write-only values that cannot be known without a state store
    unreadable: tuple[str, ...] = ()  # backends that could not be read: nothing was planned for them
    #: per IoT campaign with stranded gateways (none: not listed), by campaign name
    stranded: tuple[StrandedGateways, ...] = ()
    #: work that will happen with no further commit though nothing is done now (a send held by quiet hours)
    pending: tuple[str, ...] = ()

    @property
    def stranded_count(self) -> int:
        """Stranded IoT gateways over every campaign."""
        return sum(s.count for s in self.stranded)

    @property
    def has_errors(self) -> bool:
        return has_errors(self.diagnostics)

    @property
    def has_changes(self) -> bool:
        """Actions, or pending work: either way the backends will change without another commit."""
        return bool(self.actions or self.pending)

    def counts(self) -> Counter[Verb]:
        return Counter(action.verb for action in self.actions)


@dataclass
class PlanBuilder:
    """Collects the plan while per-kind rules run; ``build()`` freezes it."""

    actions: list[Action] = field(default_factory=list)
    noops: list[Noop] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    stranded: list[StrandedGateways] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set)
    _keys: set[ResourceKey] = field(default_factory=set)  # keys with an action: asked once per campaign

    def add(self, action: Action) -> str:
        if action.id in self._ids:
            raise ValueError(f"duplicate action id {action.id}")  # a planner bug, never user input
        self._ids.add(action.id)
        self._keys.add(action.key)
        self.actions.append(action)
        return action.id

    def noop(self, key: ResourceKey, reason: str) -> None:
        self.noops.append(Noop(key, reason))

    def error(self, key: ResourceKey, message: str, source: SourceRef | None = None) -> None:
        self._diagnose(key, message, source, Severity.ERROR)

    def warn(self, key: ResourceKey, message: str, source: SourceRef | None = None) -> None:
        self._diagnose(key, message, source, Severity.WARNING)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _diagnose(self, key: ResourceKey, message: str, source: SourceRef | None, severity: Severity) -> None:
        where = source or SourceRef("", 0, 0)
        self.diagnostics.append(
            Diagnostic(message=message, file=where.file, line=where.line, col=where.col,
                       severity=severity, resource=str(key))
        )

    def build(self) -> Plan:
        return Plan(tuple(self.actions), tuple(self.noops), tuple(self.diagnostics), tuple(self.notes),
                    tuple(self.unreadable), tuple(sorted(self.stranded, key=lambda s: (s.campaign, s.backend))),
                    tuple(self.pending))

    def has_actions_for(self, key: ResourceKey) -> bool:
        return key in self._keys  # a scan of every action per campaign would grow with campaigns x gateways
