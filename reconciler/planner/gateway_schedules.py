"""Schedule windows of a created campaign's gateways (download, activation, execution), and stranded gateways.

Where the backend cannot read schedules back (``schedules`` in its traits' ``write_only``, as for the IoT
campaign manager), each window is compared with what the state store says was last applied to that gateway. A fixed window is sent as declared; a recurring one as its current
or next occurrence (``windows``), and again as the next occurrence once the one applied has ended while
the gateway still waits for that step. A gateway waiting for a step whose window has ended is stranded
(``stranded``): the plan warns, and ``Plan.stranded`` counts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from reconciler.actions import Action, Verb
from reconciler.model import IotWindow, RecurringWindow, ScheduleSpec, TimeWindow
from reconciler.observed import ObservedGateway
from reconciler.planner import memory
from reconciler.planner.plan import PlanBuilder
from reconciler.planner.stranded import Stranding, Strandings
from reconciler.planner.windows import concrete, epoch_ms, from_ms, waits_for

if TYPE_CHECKING:  # campaign_gateways imports this module
    from reconciler.planner.campaign_gateways import CampaignId, CampaignScope


@dataclass(frozen=True)
class _Declared:
    """A window as one schedule declares it, and what it is at ``now`` (a recurring one's current or next
    occurrence)."""

    name: str  # download | activation | execution
    window: IotWindow
    concrete: TimeWindow
    schedule: ScheduleSpec

    @property
    def recurring(self) -> bool:
        return isinstance(self.window, RecurringWindow)

    def reason(self) -> str:
        return self._reason

    @cached_property
    def millis(self) -> tuple[int, int]:
        """The concrete window as sent and remembered (begin, end in epoch ms), once per window."""
        return epoch_ms(self.concrete.begin), epoch_ms(self.concrete.end)

    @cached_property
    def _reason(self) -> str:
        """Formatted once per window, not once per gateway (100,000 gateways share one schedule)."""
        text = f"{self.name} window from schedule {self.schedule.name}"
        if isinstance(self.window, RecurringWindow):
            text += f" ({self.window.describe()}: {_span(self.concrete)})"
        return text


def _span(window: TimeWindow) -> str:
    return f"{window.begin.astimezone(UTC).isoformat()} to {window.end.astimezone(UTC).isoformat()}"


def plan_schedules(scope: CampaignScope, b: PlanBuilder, campaign_id: CampaignId, seen: Mapping[str, ObservedGateway],
                    wanted: frozenset[str], after: tuple[str, ...]) -> list[str]:
    """One SCHEDULE_GATEWAY per gateway and window whose value differs from what was last applied.

    A fixed window is sent as declared. A recurring one is sent as its occurrence that is current or next
    at ``now``; once the occurrence last applied to a gateway has ended, the gateway gets the next one only
    while it still waits for that step (a gateway that finished it keeps its old window: no churn). A
    gateway waiting for a step whose window ended is stranded (``Strandings``). For a gateway, the window of
    a schedule naming its assignment takes precedence over one of a schedule for the whole campaign."""
    desired, now = scope.inp.desired, scope.inp.now
    windows: dict[tuple[str, str], _Declared] = {}
    # campaign-wide schedules first, so that a schedule naming an assignment wins for its gateways
    for schedule in sorted(desired.schedules_of(scope.spec.name), key=lambda s: (s.assignment is not None, s.name)):
        targets = set(desired.assignments[schedule.assignment].gateways) if schedule.assignment else set(wanted)
        for name in ("download", "activation", "execution"):
            window = getattr(schedule, name)
            if window is None:
                continue
            declared = _Declared(name, window, concrete(window, now), schedule)
            for gateway in targets & wanted:
                windows[(gateway, name)] = declared
    store = scope.inp.store
    remembered = scope.remembered("schedules")  # else neither read back nor remembered: sent every pass
    existing = isinstance(campaign_id, str) and remembered
    waiting = scope.traits.lifecycle.member_waiting
    stranded = Strandings()
    sends: list[tuple[str, _Declared, str]] = []  # (gateway, window, reason)
    for (gateway, name), declared in sorted(windows.items()):
        last = memory.schedule_window(store.last_applied(
            scope.backend, memory.SCHEDULE, memory.schedule_key(campaign_id, gateway, name))) \
            if isinstance(campaign_id, str) and remembered else None
        reason = _decide(declared, gateway, seen.get(gateway), last, now, stranded, waiting)
        if reason is not None:
            sends.append((gateway, declared, reason))
    stranded.report(b, scope.key, scope.backend)
    if windows and not store.available and remembered:
        if existing and not scope.inp.options.reapply_unknown:
            b.note(f"unknown without a state store: {len(windows)} schedule window(s) of campaign "
                   f"{scope.spec.name} (the IoT campaign manager cannot read them back); not compared")
            return []
        b.note("schedules cannot be read back from the IoT campaign manager and no state store is available: "
               "every schedule window is planned again")
    steps = []
    for gateway, declared, reason in sends:
        begin_ms, end_ms = declared.millis
        steps.append(b.add(Action(
            scope.action_id("schedule-gateway", gateway, declared.name), Verb.SCHEDULE_GATEWAY, scope.key,
            scope.backend, {"campaign_id": campaign_id, "gateway_id": gateway, "window": declared.name,
                            "begin_ms": begin_ms, "end_ms": end_ms},
            after, reason)))
    return steps


def _decide(declared: _Declared, gateway: str, observed: ObservedGateway | None, last: tuple[int, int] | None,
            now: datetime, stranded: Strandings, waiting_states: Mapping[str, frozenset[str]]) -> str | None:
    """Why ``declared`` is sent to ``gateway`` (None: it is not), noting the gateway if it is stranded."""
    target = declared.concrete
    value = declared.millis
    waiting = observed is not None and waits_for(waiting_states, declared.name, observed.state, observed.closed)
    state = observed.state if observed is not None else ""
    if not declared.recurring:
        if waiting and target.end <= now:
            stranded.add(Stranding(gateway, declared.name, target.end.astimezone(UTC), state, False,
                                   declared.schedule.source))
        return None if last == value else declared.reason()
    if last == value:
        return None
    if last is not None and last[1] <= epoch_ms(now):  # the occurrence last applied has ended
        if observed is not None and not waiting:
            return None  # it went past that step (or is in it): the old occurrence did its job
        if waiting:
            ended = from_ms(last[1])
            recurring = declared.window.describe() if isinstance(declared.window, RecurringWindow) else ""
            stranded.add(Stranding(gateway, declared.name, ended, state, True, declared.schedule.source))
            return (f"{declared.name} window from schedule {declared.schedule.name}: the last one ended at "
                    f"{ended.isoformat()} before the gateway finished ({state}); next occurrence of "
                    f"{recurring}: {_span(target)}")
    return declared.reason()
