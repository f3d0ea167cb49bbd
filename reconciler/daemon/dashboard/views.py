"""View-models of the overview and history pages: plain frozen data the templates print as they are.

Pure functions of a ``DaemonSnapshot`` (no I/O, no clock: the snapshot carries its time). Texts are
printed through the template environment's ``finalize``, which masks phone numbers and scrubs secrets,
so nothing here needs to remember to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.backends.registry import find as find_backend_type
from reconciler.model import CampaignSpec, IotCampaignSpec, SimCampaignSpec, SmsCampaignSpec
from reconciler.daemon.dashboard.snapshot import DaemonSnapshot, PassRecord, RequestTally
from reconciler.daemon.dashboard.sync import (Sync, SyncStatus, campaign_sync, final_states, iot_campaign, lifecycle,
                                              observed_state, sim_campaign, sms_counts)

MESSAGE_CHARS = 300  # an action's message as shown (the full one is in the logs)
#: a recent error rate above this marks a backend as degraded (and any error in a failed read as down)
DEGRADED_ERROR_RATE = 0.05


def clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%S") if moment is not None else ""


def stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else ""


def shorten(text: str, limit: int = MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class DaemonSummary:
    role: str
    ready: bool
    passes: int
    revision: str
    last_error: str
    as_of: str  # HH:MM:SS (UTC) of the snapshot: what "showing state of" names when the stream drops
    as_of_full: str


@dataclass(frozen=True)
class CampaignRow:
    name: str
    kind: str
    backend: str
    declared: str
    observed: str
    progress: str
    sync: SyncStatus
    last_change: str


@dataclass(frozen=True)
class BackendRow:
    name: str
    type: str
    status: str  # reachable | unreachable | degraded | not read yet
    css: str
    detail: str
    requests: str
    error_rate: str


@dataclass(frozen=True)
class InvalidView:
    at: str
    revision: str
    diagnostics: tuple[str, ...]
    current: bool


@dataclass(frozen=True)
class Overview:
    daemon: DaemonSummary
    campaigns: tuple[CampaignRow, ...]
    backends: tuple[BackendRow, ...]
    invalid: InvalidView | None
    by_sync: tuple[tuple[str, str, int], ...]  # (label, css class, campaigns)


def daemon_summary(snapshot: DaemonSnapshot) -> DaemonSummary:
    return DaemonSummary(role=snapshot.role, ready=snapshot.ready, passes=snapshot.passes,
                         revision=snapshot.revision, last_error=shorten(snapshot.last_error),
                         as_of=clock(snapshot.taken_at), as_of_full=stamp(snapshot.taken_at))


def campaign_kind(snapshot: DaemonSnapshot, spec: CampaignSpec) -> str:
    backend = snapshot.desired.backends.get(spec.backend) if snapshot.desired else None
    descriptor = find_backend_type(backend.type) if backend is not None else None  # its descriptor names it
    return descriptor.campaign_label if descriptor is not None else ""


def progress_text(snapshot: DaemonSnapshot, spec: CampaignSpec) -> str:
    """One short line of where the campaign stands (the campaign page has the detail)."""
    if isinstance(spec, IotCampaignSpec):
        found = iot_campaign(snapshot, spec)
        if found is None:
            return ""
        final = final_states(lifecycle(snapshot, spec.backend))
        done = sum(1 for g in found.gateways if g.state in final)
        declared = {g for a in (snapshot.desired.assignments_of(spec.name) if snapshot.desired else ())
                    for g in a.gateways}
        total = len(declared | {g.gateway_id for g in found.gateways})
        return f"{done:,}/{total:,} gateways finished ({len(found.gateways):,} in the campaign)"
    if isinstance(spec, SimCampaignSpec):
        sim = sim_campaign(snapshot, spec)
        if sim is None:
            return ""
        total = int(sim.counts.get("participants", 0)) or len(sim.participants)
        return f"{int(sim.counts.get('finished', 0)):,}/{total:,} participants finished"
    to_send, counts = sms_counts(snapshot, spec)
    handed = sum(n for state, n in counts.items() if state != "dispatching")
    return f"{handed:,}/{to_send + sum(counts.values()):,} messages handed over"


def campaign_row(snapshot: DaemonSnapshot, spec: CampaignSpec) -> CampaignRow:
    return CampaignRow(name=spec.name, kind=campaign_kind(snapshot, spec), backend=spec.backend,
                       declared=spec.state.value, observed=observed_state(snapshot, spec),
                       progress=progress_text(snapshot, spec), sync=_shortened(campaign_sync(snapshot, spec)),
                       last_change=stamp(snapshot.changed_at.get(spec.name)))


def _shortened(status: SyncStatus) -> SyncStatus:
    return SyncStatus(status.kind, shorten(status.reason))


def error_rate(tally: RequestTally) -> tuple[str, float]:
    """The recent error rate as text (the whole run's when nothing was asked recently) and as a number."""
    if tally.recent_total:
        rate = tally.recent_errors / tally.recent_total
        return f"{rate:.1%} of {tally.recent_total:,} (last 5 min)", rate
    if tally.total:
        rate = tally.errors / tally.total
        return f"{rate:.1%} of {tally.total:,} (since start)", rate
    return "no requests yet", 0.0


def backend_row(snapshot: DaemonSnapshot, name: str, type_: str) -> BackendRow:
    observation = snapshot.observed.get(name)
    tally = snapshot.requests.get(name, RequestTally())
    rate_text, rate = error_rate(tally)
    if observation is None:
        status, css, detail = "not read yet", "unknown", ""
    elif not observation.readable:
        status, css, detail = "unreachable", "error", shorten(observation.error)
    elif rate > DEGRADED_ERROR_RATE:
        status, css, detail = "degraded", "held", "reachable, but many requests fail"
    else:
        status, css, detail = "reachable", "synced", ""
    return BackendRow(name=name, type=type_, status=status, css=css, detail=detail, requests=f"{tally.total:,}",
                      error_rate=rate_text)


def overview(snapshot: DaemonSnapshot) -> Overview:
    desired = snapshot.desired
    campaigns = tuple(campaign_row(snapshot, spec) for spec in sorted(desired.campaigns.values(),
                                                                       key=lambda c: c.name)) if desired else ()
    backends = tuple(backend_row(snapshot, name, str(spec.type))
                     for name, spec in sorted(desired.backends.items())) if desired else ()
    invalid = None
    if snapshot.invalid is not None:
        invalid = InvalidView(at=stamp(snapshot.invalid.at), revision=snapshot.invalid.revision,
                              diagnostics=tuple(shorten(d, 500) for d in snapshot.invalid.diagnostics),
                              current=snapshot.invalid_now)
    tally = Counter(row.sync.kind for row in campaigns)
    by_sync = tuple((kind.value, kind.value.lower(), tally[kind]) for kind in Sync if tally[kind])
    return Overview(daemon=daemon_summary(snapshot), campaigns=campaigns, backends=backends, invalid=invalid,
                    by_sync=by_sync)


# --- history ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionLine:
    verb: str
    resource: str
    outcome: str
    css: str
    message: str


@dataclass(frozen=True)
class PassRow:
    at: str
    trigger: str
    backends: str
    seconds: str
    ok: bool
    drift: bool
    actions: tuple[ActionLine, ...]


@dataclass(frozen=True)
class AppliedRow:
    at: str
    who: str
    command: str
    revision: str
    seconds: str
    ok: bool
    actions: tuple[ActionLine, ...]


@dataclass(frozen=True)
class HistoryPage:
    daemon: DaemonSummary
    passes: tuple[PassRow, ...]  # those that acted or failed, newest first
    quiet: int  # passes kept that found nothing to do (a resync every minute would drown the others)
    last_quiet: str
    drift: tuple[PassRow, ...]
    applied: tuple[AppliedRow, ...]


OUTCOME_CSS = {"succeeded": "synced", "failed": "error", "unknown": "held", "skipped": "outofsync"}


def action_line(verb: str, resource: str, outcome: str, message: str) -> ActionLine:
    return ActionLine(verb=verb, resource=resource, outcome=outcome, css=OUTCOME_CSS.get(outcome, "unknown"),
                      message=shorten(message))


def pass_row(record: PassRecord) -> PassRow:
    return PassRow(at=stamp(record.at), trigger=", ".join(record.reasons),
                   backends="all" if record.backends is None else ", ".join(record.backends) or "none",
                   seconds=f"{record.seconds:.2f} s", ok=record.ok, drift=record.drift_correction,
                   actions=tuple(action_line(a.verb, a.resource, a.outcome, a.message) for a in record.actions))


def history_page(snapshot: DaemonSnapshot) -> HistoryPage:
    eventful = [p for p in snapshot.passes_log if p.actions or not p.ok]
    quiet = [p for p in snapshot.passes_log if not (p.actions or not p.ok)]
    passes = tuple(pass_row(p) for p in eventful)
    applied = tuple(AppliedRow(at=e.at.replace("T", " ").replace("+00:00", " UTC"), who=e.who, command=e.command,
                               revision=e.revision[:12], seconds=f"{e.seconds:.2f} s", ok=e.ok,
                               actions=_entry_actions(e.actions))
                    for e in snapshot.history)
    return HistoryPage(daemon=daemon_summary(snapshot), passes=passes, quiet=len(quiet),
                       last_quiet=stamp(quiet[0].at) if quiet else "", drift=tuple(p for p in passes if p.drift),
                       applied=applied)


def _entry_actions(actions: Sequence[object]) -> tuple[ActionLine, ...]:
    lines = []
    for action in actions:
        if isinstance(action, dict):
            lines.append(action_line(str(action.get("verb", "")), str(action.get("resource", "")),
                                     str(action.get("outcome", "")), str(action.get("message", ""))))
    return tuple(lines)
