"""The dashboard's side of the running daemon: what it is told, what it samples, and when pages change.

``WatchService`` tells it about passes and invalid declarations (``pass_done``, ``declarations_invalid``);
every ``TICK_S`` it reads the send ledger's counts (and, while a page is open, the store's history), takes a
``DaemonSnapshot`` and, when anything a page shows may have changed, bumps ``version``: each open event
stream then renders its page again and sends it if its HTML changed. One tick per second keeps a page
within about a second of the daemon (the goal is 2 s), and costs one ``GROUP BY`` per SMS campaign.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from reconciler.daemon.dashboard.snapshot import (ActionRecord, DaemonSnapshot, InvalidDeclarations, PassRecord,
                                                  RequestTally, SeriesPoint)
from reconciler.daemon.dashboard.views import campaign_row
from reconciler.diagnostics import Diagnostic
from reconciler.backends.registry import adapter_for
from reconciler.model import DesiredState, Kind, SmsCampaignSpec
from reconciler.state.history import HistoryEntry
from reconciler.traits import Lifecycle

log = structlog.get_logger("reconciler.daemon.dashboard")

TICK_S = 1.0
PASSES_KEPT = 200
HISTORY_ROWS = 50
DIAGNOSTICS_KEPT = 50
REQUEST_WINDOW_S = 300.0
SERIES_POINTS = 600  # per SMS campaign; older points are thinned to every other one, never dropped
MESSAGE_CHARS = 500


class DaemonState(Protocol):
    """What the dashboard reads of ``WatchService`` (a protocol: the service imports this package)."""

    role: str
    passes: int
    last_error: str
    declarations_invalid: bool
    last_good: Any
    seen: Any
    stranded: dict[str, dict[str, Any]]
    health: Any
    sends: Any
    store: Any
    metrics: Any
    git: Any

    def ready(self) -> tuple[bool, str]: ...


class SeriesBuffer:
    """Points of one SMS campaign, at most ``SERIES_POINTS``: when full, every other point goes and the
    spacing doubles, so the chart always spans the whole send at a coarser grain."""

    def __init__(self, limit: int = SERIES_POINTS) -> None:
        self.limit = limit
        self.spacing = TICK_S
        self.points: list[SeriesPoint] = []

    def add(self, point: SeriesPoint, *, moving: bool) -> None:
        """Record ``point``; unless ``moving`` (a send runs), only when something changed."""
        last = self.points[-1] if self.points else None
        if last is not None and not moving and (last.handed_over, last.delivered, last.failed) == \
                (point.handed_over, point.delivered, point.failed):
            return
        if last is not None and len(self.points) > 1 and point.at - self.points[-2].at < self.spacing:
            self.points[-1] = point  # the newest values, at the current grain
        else:
            self.points.append(point)
        if len(self.points) > self.limit:
            self.points = self.points[:-1:2] + [self.points[-1]]
            self.spacing *= 2


def point_from(counts: Mapping[str, int], at: float) -> SeriesPoint:
    handed = sum(n for state, n in counts.items() if state != "dispatching")
    return SeriesPoint(at=at, handed_over=handed, delivered=counts.get("delivered", 0),
                       failed=counts.get("failed", 0) + counts.get("undelivered", 0))


def is_error_status(status: str) -> bool:
    """A request that failed for reasons of the backend or the network: 5xx, 408, 429, or no reply at all
    (the exception's name). Other 4xx are answers (a lookup that found nothing)."""
    if not status.isdigit():
        return True
    code = int(status)
    return code >= 500 or code in (408, 429)


def request_totals(metrics: Any) -> dict[str, tuple[int, int]]:
    """Per backend, (requests, failed requests) since start, from the daemon's Prometheus counter."""
    totals: dict[str, tuple[int, int]] = {}
    for family in metrics.requests.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            backend, status = sample.labels["backend"], sample.labels["status"]
            total, errors = totals.get(backend, (0, 0))
            count = int(sample.value)
            totals[backend] = (total + count, errors + (count if is_error_status(status) else 0))
    return totals


class RequestWindow:
    """Request totals sampled each tick, so the error rate can be told over the last ``REQUEST_WINDOW_S``."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, dict[str, tuple[int, int]]]] = deque()

    def tally(self, totals: dict[str, tuple[int, int]], now: float) -> dict[str, RequestTally]:
        self.samples.append((now, totals))
        while len(self.samples) > 1 and self.samples[1][0] <= now - REQUEST_WINDOW_S:
            self.samples.popleft()
        before = self.samples[0][1]
        out = {}
        for backend, (total, errors) in totals.items():
            then_total, then_errors = before.get(backend, (0, 0))
            out[backend] = RequestTally(total=total, errors=errors, recent_total=total - then_total,
                                        recent_errors=errors - then_errors)
        return out


class DashboardFeed:
    """What the service tells the dashboard: its passes (kept in memory, newest first) and its last
    invalid declarations."""

    def __init__(self) -> None:
        self.passes: deque[PassRecord] = deque(maxlen=PASSES_KEPT)
        self.invalid: InvalidDeclarations | None = None

    def pass_done(self, result: Any, reasons: Iterable[str], seconds: float, scope: Iterable[str] | None,
                  corrected: Collection[str] = ()) -> None:
        """Remember a pass; ``corrected`` are the ids of its actions that were drift corrections."""
        outcomes = result.report.outcomes if result.report is not None else ()
        actions = tuple(ActionRecord(o.action.verb.value, str(o.key), o.status.value, o.message[:MESSAGE_CHARS],
                                     drift=o.action.id in corrected) for o in outcomes)
        self.passes.appendleft(PassRecord(at=datetime.now(UTC), reasons=tuple(sorted(reasons)),
                                          backends=tuple(sorted(scope)) if scope is not None else None,
                                          seconds=seconds, ok=bool(result.ok), actions=actions))

    def declarations_invalid(self, diagnostics: Iterable[Diagnostic], revision: str) -> None:
        found = tuple(d.format()[:MESSAGE_CHARS] for d in diagnostics)
        self.invalid = InvalidDeclarations(at=datetime.now(UTC), revision=revision,
                                           diagnostics=found[:DIAGNOSTICS_KEPT])


class LiveState:
    """The newest snapshot and its version; streams wait on ``changed``."""

    def __init__(self, daemon: DaemonState, feed: DashboardFeed) -> None:
        self.daemon = daemon
        self.feed = feed
        self.series: dict[str, SeriesBuffer] = {}
        self.requests = RequestWindow()
        self.changed_at: dict[str, datetime] = {}
        self._rows: dict[str, tuple[str, str, str]] = {}
        self.snapshot = DaemonSnapshot(taken_at=datetime.now(UTC))
        self.version = 0
        self.refreshed = 0.0  # monotonic time of the last refresh
        self.watchers = 0  # open event streams: the store's history is read only while someone looks
        self.changed = asyncio.Condition()
        self._signature: object = None
        self._history: tuple[HistoryEntry, ...] = ()
        self._lock = asyncio.Lock()

    async def refresh(self, *, history: bool) -> None:
        """Read what changes between passes, take a snapshot, and bump the version if anything moved."""
        async with self._lock:
            counts, entries = await asyncio.to_thread(self._read_store, history)
            if entries is not None:
                self._history = entries
            changed = self._take(counts)
            self.refreshed = time.monotonic()
        if changed:
            await self.wake()

    def _sms_campaigns(self) -> list[SmsCampaignSpec]:
        desired = self.daemon.last_good
        return [c for c in desired.campaigns.values() if isinstance(c, SmsCampaignSpec)] if desired else []

    def _read_store(self, history: bool) -> tuple[dict[str, dict[str, int]], tuple[HistoryEntry, ...] | None]:
        store = self.daemon.store
        if store is None:
            return {}, None
        counts = {spec.name: store.ledger.counts(spec.backend, spec.name) for spec in self._sms_campaigns()}
        return counts, tuple(store.history.entries(limit=HISTORY_ROWS)) if history else None

    def _take(self, counts: dict[str, dict[str, int]]) -> bool:
        """Sample, and take a new snapshot if anything a page shows may have moved (True then)."""
        daemon, now = self.daemon, time.time()
        sending = frozenset(name for name in counts if daemon.sends.sending(name))
        for name, by_state in counts.items():
            self.series.setdefault(name, SeriesBuffer()).add(point_from(by_state, now), moving=name in sending)
        requests = self.requests.tally(request_totals(daemon.metrics), now)
        signature = (daemon.passes, daemon.role, daemon.ready()[0], daemon.last_error, daemon.declarations_invalid,
                     sorted((n, sorted(c.items())) for n, c in counts.items()), sending, id(daemon.stranded),
                     len(self.feed.passes), self.feed.invalid, [(e.at, len(e.actions)) for e in self._history],
                     sorted((b, t.total, t.errors) for b, t in requests.items()), _health_signature(daemon.health))
        if signature == self._signature:
            return False
        self._signature = signature
        snapshot = self._snapshot(counts, sending, requests)
        self._note_changes(snapshot)
        self.snapshot = replace(snapshot, changed_at=dict(self.changed_at))
        return True

    async def wake(self) -> None:
        """A new version for every stream to look at (a new snapshot, or the daemon stopping)."""
        self.version += 1
        async with self.changed:
            self.changed.notify_all()

    def _snapshot(self, counts: dict[str, dict[str, int]], sending: frozenset[str],
                  requests: dict[str, RequestTally]) -> DaemonSnapshot:
        daemon = self.daemon
        seen, health = daemon.seen, daemon.health
        taken = datetime.now(UTC)
        stalled = {k.name: reason for k, (_, reason) in health.stalled.items() if k.kind is Kind.CAMPAIGN}
        retry = {k.name: (datetime.fromtimestamp(t, UTC), health.failures.get(k, 0))
                 for k, t in health.retry_at.items() if k.kind is Kind.CAMPAIGN}
        return DaemonSnapshot(
            taken_at=taken, role=daemon.role, ready=daemon.ready()[0], passes=daemon.passes,
            last_error=daemon.last_error, revision=self._revision(), desired=daemon.last_good,
            lifecycles=lifecycles(daemon.last_good),
            observed=dict(seen.observed), sms=dict(seen.sms), ledger_counts=counts, sending=sending,
            outcomes=dict(seen.outcomes), reasons=dict(seen.reasons), stranded=dict(daemon.stranded),
            stalled=stalled, retry_at=retry, requests=requests,
            series={name: tuple(buffer.points) for name, buffer in self.series.items()},
            passes_log=tuple(self.feed.passes), history=self._history, invalid=self.feed.invalid,
            invalid_now=daemon.declarations_invalid, changed_at=dict(self.changed_at))

    def _revision(self) -> str:
        """The git revision applied: the one followed with ``--git``, else the newest this daemon recorded."""
        if self.daemon.git is not None:
            return str(self.daemon.git.revision)
        return next((e.revision for e in self._history if e.command == "reconcile watch" and e.revision), "")

    def _note_changes(self, snapshot: DaemonSnapshot) -> None:
        """When each campaign's row (observed state, progress, sync) last changed, as this daemon saw it."""
        if snapshot.desired is None:
            return
        for spec in snapshot.desired.campaigns.values():
            row = campaign_row(snapshot, spec)
            now = (row.observed, row.progress, row.sync.kind.value)
            if self._rows.get(spec.name) != now:
                self._rows[spec.name] = now
                self.changed_at[spec.name] = snapshot.taken_at

    async def wait_change(self, version: int, timeout: float) -> bool:
        """Until the version moves past ``version`` (True) or ``timeout`` passes (False)."""
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(lambda: self.version != version), timeout)
            except TimeoutError:
                return False
        return True


def lifecycles(desired: DesiredState | None) -> dict[str, Lifecycle]:
    """Per declared backend, its state names, from its adapter's traits."""
    if desired is None:
        return {}
    return {name: adapter_for(spec.type).traits.lifecycle for name, spec in desired.backends.items()}


def _health_signature(health: Any) -> tuple[Any, ...]:
    return (tuple(sorted((str(k), r) for k, (_, r) in health.stalled.items())),
            tuple(sorted((str(k), t) for k, t in health.retry_at.items())))


async def run_ticks(state: LiveState, stop: asyncio.Event, *, scrub: Callable[[str], str]) -> None:
    """Refresh every ``TICK_S`` until ``stop``; a failed refresh is logged (scrubbed) and tried again next
    tick (the dashboard must never take the daemon down)."""
    while not stop.is_set():
        try:
            await state.refresh(history=state.watchers > 0)
        except Exception as exc:  # noqa: BLE001  (anything: the daemon goes on)
            log.warning("dashboard.refresh_failed", error=scrub(f"{type(exc).__name__}: {exc}")[:300])
        try:
            await asyncio.wait_for(stop.wait(), timeout=TICK_S)
        except TimeoutError:
            pass

