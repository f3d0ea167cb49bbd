"""What the dashboard knows of the daemon at one moment, as frozen data.

The views (``views``, ``campaign_views``, ``sync``) are pure functions of a ``DaemonSnapshot``: they are
tested with snapshots built by hand, and the load benchmark feeds them a synthetic fleet. Only ``live``
reads the running daemon (``take_snapshot``) and the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler.model import DesiredState
from reconciler.observed import BackendObservation
from reconciler.planner.plan import SmsOutlook
from reconciler.state.history import HistoryEntry
from reconciler.traits import Lifecycle




@dataclass(frozen=True)
class ActionRecord:
    verb: str
    resource: str
    outcome: str
    message: str = ""
    drift: bool = False  # it put back what changed outside git (the daemon's rule, ``notify.drift``)


@dataclass(frozen=True)
class PassRecord:
    """One pass of this daemon (kept in memory: the store's history has only passes that acted)."""

    at: datetime
    reasons: tuple[str, ...]
    backends: tuple[str, ...] | None  # the backends it visited; None: all of them
    seconds: float
    ok: bool
    actions: tuple[ActionRecord, ...] = ()

    @property
    def drift_correction(self) -> bool:
        """The pass put back something changed outside git: the daemon's rule for its metric and its
        ``drift.corrected`` notifications (a send it steers, a wave step or a window edge is not drift)."""
        return any(a.drift for a in self.actions)


@dataclass(frozen=True)
class InvalidDeclarations:
    """The last declarations that did not validate (the daemon kept the last good ones)."""

    at: datetime
    revision: str
    diagnostics: tuple[str, ...]


@dataclass(frozen=True)
class RequestTally:
    """Requests to one backend since start, and over the recent window (``live.REQUEST_WINDOW_S``)."""

    total: int = 0
    errors: int = 0
    recent_total: int = 0
    recent_errors: int = 0


@dataclass(frozen=True)
class SeriesPoint:
    """Where an SMS campaign's messages stood at ``at`` (epoch seconds)."""

    at: float
    handed_over: int  # rows past ``dispatching``: the backend has them
    delivered: int
    failed: int


@dataclass(frozen=True)
class DaemonSnapshot:
    taken_at: datetime
    role: str = "starting"
    ready: bool = False
    passes: int = 0
    last_error: str = ""
    revision: str = ""
    desired: DesiredState | None = None
    lifecycles: Mapping[str, Lifecycle] = field(default_factory=dict)  # per backend: its state names (traits)
    #: per backend, what the last pass that visited it saw (not copied: the daemon replaces, never mutates)
    observed: Mapping[str, BackendObservation] = field(default_factory=dict)
    sms: Mapping[str, SmsOutlook] = field(default_factory=dict)  # per SMS campaign, as of the last pass
    ledger_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # per SMS campaign, now
    sending: frozenset[str] = frozenset()  # SMS campaigns with a send running in the background
    outcomes: Mapping[str, Sequence[Mapping[str, str]]] = field(default_factory=dict)  # "Campaign/x" -> last pass's
    reasons: Mapping[str, str] = field(default_factory=dict)  # "Campaign/x" -> why the last plan left it alone
    stranded: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # campaign -> StrandedGateways.as_json()
    stalled: Mapping[str, str] = field(default_factory=dict)  # campaign -> why it waits for a new declaration
    retry_at: Mapping[str, tuple[datetime, int]] = field(default_factory=dict)  # campaign -> (next try, failures)
    requests: Mapping[str, RequestTally] = field(default_factory=dict)  # per backend
    series: Mapping[str, tuple[SeriesPoint, ...]] = field(default_factory=dict)  # per SMS campaign
    passes_log: tuple[PassRecord, ...] = ()  # newest first
    history: tuple[HistoryEntry, ...] = ()  # from the store, newest first
    invalid: InvalidDeclarations | None = None
    invalid_now: bool = False  # the newest declarations are the invalid ones
    changed_at: Mapping[str, datetime] = field(default_factory=dict)  # campaign -> when its row last changed

    @property
    def now(self) -> datetime:
        return self.taken_at


def utc_now() -> datetime:
    return datetime.now(UTC)
