"""Stranded gateways: IoT gateways whose schedule window ended before they finished the step it gates.

The backend does not move such a gateway on: it waits (WAITING_FOR_DOWNLOAD, DOWNLOAD_COMPLETE, ...)
until it gets a new window. The planner gives a gateway under a recurring window the next occurrence;
under a fixed window nothing can, and the plan says so. Either way the plan carries a warning per
campaign and a ``StrandedGateways`` entry (``Plan.stranded``) for ``reconcile status``, the daemon and
metrics.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.model import ResourceKey, SourceRef
from reconciler.planner.plan import PlanBuilder, StrandedGateways
from reconciler.planner.windows import WINDOW_ORDER

EXAMPLE = '`daily: "01:00-05:00"` with `timezone`'


@dataclass(frozen=True)
class Stranding:
    """One gateway stranded by one window."""

    gateway: str
    window: str  # download | execution | activation
    ended: datetime
    state: str
    rescheduled: bool  # the next occurrence of a recurring window is planned for it
    source: SourceRef | None = None  # the Schedule that declared the window


@dataclass
class Strandings:
    """Collects the strandings of one campaign while its schedules are planned."""

    found: dict[str, Stranding] = field(default_factory=dict)  # by gateway: the first window in lifecycle order

    def add(self, stranding: Stranding) -> None:
        known = self.found.get(stranding.gateway)
        if known is None or WINDOW_ORDER.index(stranding.window) < WINDOW_ORDER.index(known.window):
            self.found[stranding.gateway] = stranding

    def report(self, b: PlanBuilder, key: ResourceKey, backend: str) -> None:
        """The campaign's warning and its ``Plan.stranded`` entry (nothing when none is stranded)."""
        if not self.found:
            return
        items = [self.found[g] for g in sorted(self.found)]
        by_window = Counter(s.window for s in items)
        by_state = Counter(s.state for s in items)
        rescheduled = sum(1 for s in items if s.rescheduled)
        b.stranded.append(StrandedGateways(
            campaign=key.name, backend=backend, count=len(items),
            by_window={w: by_window[w] for w in WINDOW_ORDER if by_window[w]},
            by_state=dict(sorted(by_state.items())),
            since=min(s.ended for s in items).isoformat(), rescheduled=rescheduled,
            gateways=tuple(s.gateway for s in items)))
        first = min(items, key=lambda s: (WINDOW_ORDER.index(s.window), s.ended, s.gateway))
        b.warn(key, message(items), first.source)


def message(items: list[Stranding]) -> str:
    """``225 gateway(s) stranded: their download window ended at ... before they finished (...); ...``"""
    parts = []
    windows = [w for w in WINDOW_ORDER if any(s.window == w for s in items)]
    for window in windows:
        group = [s for s in items if s.window == window]
        first, last = min(s.ended for s in group), max(s.ended for s in group)
        ended = f"at {first.isoformat()}" if first == last else f"between {first.isoformat()} and {last.isoformat()}"
        prefix = f"{len(group)} of them: " if len(windows) > 1 else ""
        parts.append(f"{prefix}their {window} window ended {ended} before they finished")
    states = ", ".join(f"{state} {n}" for state, n in sorted(Counter(s.state for s in items).items()))
    rescheduled = sum(1 for s in items if s.rescheduled)
    fixed = len(items) - rescheduled
    if not fixed:
        remedy = "the next occurrence of their recurring window is scheduled"
    elif not rescheduled:
        remedy = f"nothing reschedules a fixed window: declare a later one, or a recurring one ({EXAMPLE})"
    else:
        remedy = (f"{rescheduled} get the next occurrence of their recurring window; the other {fixed} need a later "
                  f"fixed window, or a recurring one ({EXAMPLE})")
    return f"{len(items)} gateway(s) stranded: {'; '.join(parts)} ({states}); {remedy}"
