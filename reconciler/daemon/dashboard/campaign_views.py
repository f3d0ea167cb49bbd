"""View-model of one campaign's page: rollout waves (OTA), the delivery funnel and its chart (SMS), and
participant counts (SIM OTA). Pure functions of a ``DaemonSnapshot``.

Waves are drawn as the planner forms them (``rollout_gateways``): wave k holds the gateways up to
``ceil(share_k x declared)``; gateways already in the campaign come first, then the declared ones still
to join, each group in the planner's own joining order (a hash of campaign and gateway id).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.model import CampaignSpec, IotCampaignSpec, SimCampaignSpec, SmsCampaignSpec, SmsRunState
from reconciler.observed import ObservedGateway
from reconciler.planner.campaign_gateways import wave_sizes
from reconciler.traits import Lifecycle
from reconciler.daemon.dashboard.snapshot import DaemonSnapshot, SeriesPoint
from reconciler.daemon.dashboard.sync import iot_campaign, lifecycle, sim_campaign, sms_counts
from reconciler.daemon.dashboard.views import (ActionLine, CampaignRow, DaemonSummary, action_line, campaign_row,
                                               daemon_summary)

STRANDED_SHOWN = 50  # gateway ids listed; the rest are counted
NOT_ADDED = "not in the campaign yet"
ETA_WINDOW_S = 60.0  # the send rate behind the ETA: messages handed over during the last minute


@dataclass(frozen=True)
class Segment:
    """One part of a progress bar: its label is printed next to the colour, never colour alone."""

    label: str
    count: int
    css: str
    percent: float


@dataclass(frozen=True)
class WaveView:
    number: int
    share: str  # "10%"
    size: int  # gateways in this wave
    status: str  # finished | in progress | waiting
    segments: tuple[Segment, ...]
    states: tuple[tuple[str, int], ...]
    failure_rate: str


@dataclass(frozen=True)
class IotView:
    gateways: int
    failure_rate: str
    failure_percent: float
    max_failure_rate: str  # "" without a rollout
    max_failure_percent: float
    over_limit: bool
    success_threshold: str
    waves: tuple[WaveView, ...]
    stranded_count: int
    stranded_by_window: tuple[tuple[str, int], ...]
    stranded_since: str
    stranded_ids: tuple[str, ...]
    stranded_more: int
    undeclared: int  # gateways in the campaign that git no longer lists (closed ones stay)


@dataclass(frozen=True)
class ChartView:
    width: int
    height: int
    lines: tuple[tuple[str, str, str], ...]  # (label, css class, SVG points)
    y_max: str
    start: str
    end: str


@dataclass(frozen=True)
class SmsView:
    recipients: int
    handed_over: int  # past ``dispatching``: the backend has them
    funnel: tuple[Segment, ...]
    chart: ChartView | None
    eta: str
    rate: str


@dataclass(frozen=True)
class SimView:
    total: int
    states: tuple[Segment, ...]


@dataclass(frozen=True)
class CampaignPage:
    daemon: DaemonSummary
    row: CampaignRow
    description: str
    plan_reason: str
    outcomes: tuple[ActionLine, ...]
    iot: IotView | None = None
    sms: SmsView | None = None
    sim: SimView | None = None


def campaign_page(snapshot: DaemonSnapshot, name: str) -> CampaignPage | None:
    """The page of campaign ``name``; None when it is not declared (any more)."""
    spec = snapshot.desired.campaigns.get(name) if snapshot.desired else None
    if spec is None:
        return None
    key = f"Campaign/{name}"
    outcomes = tuple(action_line(o.get("verb", ""), key, o.get("outcome", ""), o.get("message", ""))
                     for o in snapshot.outcomes.get(key, ()))
    return CampaignPage(daemon=daemon_summary(snapshot), row=campaign_row(snapshot, spec),
                        description=getattr(spec, "description", ""), plan_reason=snapshot.reasons.get(key, ""),
                        outcomes=outcomes, iot=iot_view(snapshot, spec) if isinstance(spec, IotCampaignSpec) else None,
                        sms=sms_view(snapshot, spec) if isinstance(spec, SmsCampaignSpec) else None,
                        sim=sim_view(snapshot, spec) if isinstance(spec, SimCampaignSpec) else None)


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


# --- OTA rollouts ------------------------------------------------------------------------------------


def joining_order(campaign: str, gateways: Sequence[str]) -> list[str]:
    """The planner's order for gateways joining a rollout (stable whatever the backend lists)."""
    return sorted(gateways, key=lambda g: hashlib.sha256(f"{campaign}/{g}".encode()).hexdigest())


def wave_members(spec: IotCampaignSpec, declared: Sequence[str], members: Sequence[str]) -> list[list[str]]:
    """The declared gateways per wave (one wave of all of them without a rollout)."""
    inside = set(members)
    ordered = joining_order(spec.name, [g for g in declared if g in inside])
    ordered += joining_order(spec.name, [g for g in declared if g not in inside])
    sizes = wave_sizes(spec.rollout.waves, len(ordered)) if spec.rollout else [len(ordered)]
    waves, start = [], 0
    for size in sizes:
        waves.append(ordered[start:size])
        start = max(start, size)
    return waves


def wave_view(number: int, share: float, gateways: Sequence[str], seen: Mapping[str, ObservedGateway],
              names: Lifecycle) -> WaveView:
    states = Counter(seen[g].state if g in seen else NOT_ADDED for g in gateways)
    done = sum(n for s, n in states.items() if s in names.member_succeeded)
    failed = sum(n for s, n in states.items() if s in names.member_failed)
    waiting = states.get(NOT_ADDED, 0)
    working = len(gateways) - done - failed - waiting
    size = len(gateways)
    segments = tuple(Segment(label, n, css, percent(n, size)) for label, n, css in (
        ("finished", done, "synced"), ("failed", failed, "error"), ("in progress", working, "progressing"),
        (NOT_ADDED, waiting, "unknown")) if n)
    members = size - waiting
    status = ("waiting" if members == 0 else "finished" if done + failed == size else "in progress")
    return WaveView(number=number, share=f"{share:.0%}", size=size, status=status, segments=segments,
                    states=tuple(sorted(states.items())),
                    failure_rate=f"{failed / members:.1%}" if members else "–")


def iot_view(snapshot: DaemonSnapshot, spec: IotCampaignSpec) -> IotView:
    found = iot_campaign(snapshot, spec)
    seen = {g.gateway_id: g for g in found.gateways} if found else {}
    declared = sorted({g for a in (snapshot.desired.assignments_of(spec.name) if snapshot.desired else ())
                       for g in a.gateways})
    names = lifecycle(snapshot, spec.backend)
    shares = spec.rollout.waves if spec.rollout else (1.0,)
    waves = tuple(wave_view(i + 1, share, gateways, seen, names)
                  for i, (share, gateways) in enumerate(zip(shares, wave_members(spec, declared, list(seen)))))
    failed = sum(1 for g in seen.values() if g.state in names.member_failed)
    rate = failed / len(seen) if seen else 0.0
    limit = spec.rollout.max_failure_rate if spec.rollout else None
    stranded = snapshot.stranded.get(spec.name) or {}
    ids = tuple(str(g) for g in (stranded.get("gateways") or ()))
    return IotView(gateways=len(set(declared) | set(seen)), failure_rate=f"{rate:.1%}",
                   failure_percent=round(rate * 100, 2),
                   max_failure_rate=f"{limit:.1%}" if limit is not None else "",
                   max_failure_percent=round(limit * 100, 2) if limit is not None else 0.0,
                   over_limit=limit is not None and rate > limit,
                   success_threshold=f"{spec.rollout.success_threshold:.0%}" if spec.rollout else "",
                   waves=waves, stranded_count=int(stranded.get("count") or 0),
                   stranded_by_window=tuple(sorted(dict(stranded.get("by_window") or {}).items())),
                   stranded_since=str(stranded.get("since") or ""), stranded_ids=ids[:STRANDED_SHOWN],
                   stranded_more=max(len(ids) - STRANDED_SHOWN, 0),
                   undeclared=len(set(seen) - set(declared)))


# --- SMS ---------------------------------------------------------------------------------------------

FUNNEL = (("to send", "unknown"), ("dispatching", "progressing"), ("accepted", "progressing"),
          ("sent", "progressing"), ("delivered", "synced"), ("failed", "error"), ("unknown", "held"))


def sms_view(snapshot: DaemonSnapshot, spec: SmsCampaignSpec) -> SmsView:
    to_send, counts = sms_counts(snapshot, spec)
    recipients = to_send + sum(counts.values())
    values = {"to send": to_send, **counts}
    values["failed"] = counts.get("failed", 0) + counts.get("undelivered", 0)
    funnel = tuple(Segment(label + (" (incl. undelivered)" if label == "failed" and counts.get("undelivered") else ""),
                           values.get(label, 0), css, percent(values.get(label, 0), recipients))
                   for label, css in FUNNEL)
    series = snapshot.series.get(spec.name, ())
    handed = sum(n for state, n in counts.items() if state != "dispatching")
    return SmsView(recipients=recipients, handed_over=handed, funnel=funnel, chart=chart(series, recipients),
                   eta=eta_text(snapshot, spec, series, recipients - handed),
                   rate=f"{spec.rate_per_second:g}/s declared" if spec.rate_per_second else "as fast as the backend takes")


def send_rate(series: Sequence[SeriesPoint], window_s: float = ETA_WINDOW_S) -> float:
    """Messages handed over per second during the last ``window_s`` of the series (0 without two points)."""
    if len(series) < 2:
        return 0.0
    last = series[-1]
    first = next((p for p in series if p.at >= last.at - window_s), series[0])
    if first is last:
        first = series[-2]
    elapsed = last.at - first.at
    return max(last.handed_over - first.handed_over, 0) / elapsed if elapsed > 0 else 0.0


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def eta_text(snapshot: DaemonSnapshot, spec: SmsCampaignSpec, series: Sequence[SeriesPoint], to_send: int) -> str:
    """When the messages not yet handed over (``to_send``, dispatching included) will be."""
    if not to_send:
        return "nothing left to send"
    if spec.state is not SmsRunState.ACTIVE:
        return f"{to_send:,} left; no estimate while {spec.state.value}"
    rate = send_rate(series) if spec.name in snapshot.sending else 0.0
    if rate > 0:
        left = to_send / rate
        done_at = datetime.fromtimestamp(snapshot.now.timestamp() + left, UTC)
        return f"about {duration(left)} left at {rate:,.1f}/s (done about {done_at:%H:%M:%S} UTC)"
    if spec.rate_per_second:
        return f"about {duration(to_send / spec.rate_per_second)} at the declared {spec.rate_per_second:g}/s"
    return f"{to_send:,} left"


CHART_W, CHART_H = 640, 200
CHART_LINES = (("handed over", "progressing", "handed_over"), ("delivered", "synced", "delivered"),
               ("failed", "error", "failed"))


def chart(series: Sequence[SeriesPoint], recipients: int) -> ChartView | None:
    """Messages over time as SVG polylines (drawn by the server: no script, no library)."""
    if len(series) < 2:
        return None
    start, end = series[0].at, series[-1].at
    span = max(end - start, 1e-6)
    top = max(recipients, max(p.handed_over for p in series), 1)

    def points(field: str) -> str:
        return " ".join(f"{(p.at - start) / span * CHART_W:.1f},{CHART_H - getattr(p, field) / top * CHART_H:.1f}"
                        for p in series)

    return ChartView(width=CHART_W, height=CHART_H, lines=tuple((label, css, points(field))
                                                                for label, css, field in CHART_LINES),
                     y_max=f"{top:,}", start=f"{datetime.fromtimestamp(start, UTC):%H:%M:%S}",
                     end=f"{datetime.fromtimestamp(end, UTC):%H:%M:%S} UTC")


# --- SIM OTA -----------------------------------------------------------------------------------------

PARTICIPANT_STATES = (("pending_build", "unknown"), ("pending_send", "progressing"), ("waiting_por", "progressing"),
                      ("finished", "synced"), ("failed", "error"), ("canceled", "held"))


def sim_view(snapshot: DaemonSnapshot, spec: SimCampaignSpec) -> SimView | None:
    sim = sim_campaign(snapshot, spec)
    if sim is None:
        return None
    counts = {k: int(v) for k, v in sim.counts.items()} or dict(Counter(p.state for p in sim.participants))
    total = counts.get("participants") or sum(v for k, v in counts.items() if k != "participants")
    return SimView(total=total, states=tuple(Segment(state.replace("_", " "), counts.get(state, 0), css,
                                                     percent(counts.get(state, 0), total))
                                             for state, css in PARTICIPANT_STATES))
