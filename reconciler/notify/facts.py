"""What the event rules read: one pass's results as plain data, and the daemon's drift baseline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.diagnostics import Diagnostic
from reconciler.engine.execute import ExecutionReport, Outcome
from reconciler.model import DesiredState, ResourceKey
from reconciler.observed import ObservedState
from reconciler.planner.plan import Plan, SmsOutlook
from reconciler.traits import BackendTraits


@dataclass(frozen=True)
class DriftBaseline:
    """What the daemon knew before a pass: the resources whose declarations did not change since its
    previous pass over them (at ``since``) and whose actions did not fail then. What a pass changes on
    them, git did not ask for: it corrects drift. An apply has no baseline and reports no drift."""

    resources: frozenset[ResourceKey]
    since: datetime


@dataclass(frozen=True)
class PassFacts:
    """What one pass produced (``enqueue.facts_of`` builds it from a ``PassResult``)."""

    desired: DesiredState
    now: datetime
    plan: Plan | None = None
    report: ExecutionReport | None = None
    observed: ObservedState | None = None
    sms: Mapping[str, SmsOutlook] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()  # the pass's own (load warnings, connect errors), beside the plan's
    drift: DriftBaseline | None = None
    traits: Mapping[str, BackendTraits] = field(default_factory=dict)  # by backend name: its state names

    @property
    def readable_backends(self) -> frozenset[str]:
        """Backends this pass read (none when it never got to planning)."""
        if self.plan is None:
            return frozenset()
        return frozenset(self.desired.backends) - frozenset(self.plan.unreadable)

    def outcomes(self) -> tuple[Outcome, ...]:
        return self.report.outcomes if self.report is not None else ()
