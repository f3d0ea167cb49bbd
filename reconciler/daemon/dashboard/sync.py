"""A campaign's sync status, as an operator asks it: is it as declared, getting there, or stuck, and why.

Argo CD answers with Synced / OutOfSync and a health; a rollout also needs "halted by its own guard",
"gateways stranded by their window" and "held by a schedule". The first that applies wins, in this order:
Error, Halted, Stranded, Held, OutOfSync, Progressing, Synced. Pure: a function of the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from reconciler.model import CampaignSpec, IotCampaignSpec, IotRunState, SimCampaignSpec, SmsCampaignSpec, SmsRunState
from reconciler.observed import ObservedIotCampaign, ObservedSimCampaign
from reconciler.planner.adopted_campaigns import run_state_name
from reconciler.planner.timing import outside_active_period, sending_hold
from reconciler.traits import Lifecycle
from reconciler.daemon.dashboard.snapshot import DaemonSnapshot

PENDING_PARTICIPANTS = ("pending_build", "pending_send", "waiting_por")
#: ledger states still on their way (the rest is final or given up on)
SMS_IN_FLIGHT = ("dispatching", "accepted")


class Sync(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    PROGRESSING = "Progressing"
    HELD = "Held"
    HALTED = "Halted"
    STRANDED = "Stranded"
    ERROR = "Error"


@dataclass(frozen=True)
class SyncStatus:
    kind: Sync
    reason: str

    @property
    def css(self) -> str:
        return self.kind.value.lower()


def lifecycle(snapshot: DaemonSnapshot, backend: str) -> Lifecycle:
    """The backend's state names (its traits): the dashboard never spells a backend's states itself."""
    return snapshot.lifecycles.get(backend) or Lifecycle()


def final_states(names: Lifecycle) -> frozenset[str]:
    """Member states after which nothing more happens to a gateway or SIM card."""
    return names.member_final | names.member_succeeded | names.member_failed


def iot_campaign(snapshot: DaemonSnapshot, spec: IotCampaignSpec) -> ObservedIotCampaign | None:
    observation = snapshot.observed.get(spec.backend)
    if observation is None:
        return None
    return next((c for c in observation.iot_campaigns if c.name == spec.name), None)


def sim_campaign(snapshot: DaemonSnapshot, spec: SimCampaignSpec) -> ObservedSimCampaign | None:
    observation = snapshot.observed.get(spec.backend)
    if observation is None:
        return None
    return next((c for c in observation.sim_campaigns if c.campaign_id == spec.campaign_id), None)


def sms_counts(snapshot: DaemonSnapshot, spec: SmsCampaignSpec) -> tuple[int, dict[str, int]]:
    """(recipients not yet handed to the ledger, ledger rows by state), live when the ledger was read."""
    outlook = snapshot.sms.get(spec.name)
    counts = dict(snapshot.ledger_counts.get(spec.name) or (outlook.counts if outlook else {}))
    recipients = outlook.recipients if outlook is not None else spec.recipients.count
    return max(recipients - sum(counts.values()), 0), counts


def failure_rate(campaign: ObservedIotCampaign | None, names: Lifecycle) -> float:
    """Failed gateways over the gateways in the campaign (the rollout guard's own measure)."""
    if campaign is None or not campaign.gateways:
        return 0.0
    return sum(1 for g in campaign.gateways if g.state in names.member_failed) / len(campaign.gateways)


def observed_state(snapshot: DaemonSnapshot, spec: CampaignSpec) -> str:
    """The campaign's state as the backend (or, for SMS, the send ledger) tells it."""
    observation = snapshot.observed.get(spec.backend)
    if observation is None:
        return "not read yet"
    if not observation.readable:
        return "unreadable"
    if isinstance(spec, IotCampaignSpec):
        found = iot_campaign(snapshot, spec)
        return found.status if found else "absent"
    if isinstance(spec, SimCampaignSpec):
        sim = sim_campaign(snapshot, spec)
        return sim.state if sim else "absent"
    to_send, counts = sms_counts(snapshot, spec)
    if spec.name in snapshot.sending:
        return "sending"
    return "all handled" if not to_send and not any(counts.get(s) for s in SMS_IN_FLIGHT) else "not sending"


def campaign_sync(snapshot: DaemonSnapshot, spec: CampaignSpec) -> SyncStatus:
    return (_error(snapshot, spec) or _halted(snapshot, spec) or _stranded(snapshot, spec) or _held(snapshot, spec)
            or _by_kind(snapshot, spec))


def _error(snapshot: DaemonSnapshot, spec: CampaignSpec) -> SyncStatus | None:
    observation = snapshot.observed.get(spec.backend)
    if observation is not None and not observation.readable:
        return SyncStatus(Sync.ERROR, f"backend {spec.backend} could not be read: {observation.error}")
    if spec.name in snapshot.stalled:
        return SyncStatus(Sync.ERROR, f"stalled until its declaration changes: {snapshot.stalled[spec.name]}")
    failed = [o for o in snapshot.outcomes.get(f"Campaign/{spec.name}", ()) if o.get("outcome") == "failed"]
    if failed:
        return SyncStatus(Sync.ERROR, f"{failed[0].get('verb', 'action')} failed: {failed[0].get('message', '')}")
    if isinstance(spec, SimCampaignSpec) and observation is not None and sim_campaign(snapshot, spec) is None:
        return SyncStatus(Sync.ERROR, f"campaign {spec.campaign_id} does not exist on backend {spec.backend}")
    return None


def _halted(snapshot: DaemonSnapshot, spec: CampaignSpec) -> SyncStatus | None:
    if not isinstance(spec, IotCampaignSpec) or spec.rollout is None:
        return None
    rate = failure_rate(iot_campaign(snapshot, spec), lifecycle(snapshot, spec.backend))
    if rate > spec.rollout.max_failure_rate:
        return SyncStatus(Sync.HALTED, f"failure rate {rate:.1%} is over maxFailureRate "
                                       f"{spec.rollout.max_failure_rate:.1%}: the campaign is stopped")
    return None


def _stranded(snapshot: DaemonSnapshot, spec: CampaignSpec) -> SyncStatus | None:
    found = snapshot.stranded.get(spec.name) or {}
    count = int(found.get("count") or 0)
    if not count:
        return None
    windows: Mapping[str, int] = found.get("by_window") or {}
    where = ", ".join(f"{window} {n}" for window, n in sorted(windows.items()))
    since = f" since {found['since']}" if found.get("since") else ""
    return SyncStatus(Sync.STRANDED, f"{count} gateway(s) stranded: their window ended before they finished"
                                     f"{f' ({where})' if where else ''}{since}")


def _held(snapshot: DaemonSnapshot, spec: CampaignSpec) -> SyncStatus | None:
    if spec.name in snapshot.retry_at:
        when, failures = snapshot.retry_at[spec.name]
        if when > snapshot.now:
            return SyncStatus(Sync.HELD, f"backing off after {failures} failed attempt(s); next try at "
                                         f"{when.strftime('%H:%M:%S')} UTC")
    if snapshot.desired is None:
        return None
    if isinstance(spec, SmsCampaignSpec):
        if spec.state is not SmsRunState.ACTIVE or not sms_counts(snapshot, spec)[0]:
            return None
        held, _ = sending_hold(snapshot.desired, spec.name, snapshot.now)
    else:
        held = outside_active_period(snapshot.desired, spec.name, snapshot.now)
    return SyncStatus(Sync.HELD, held) if held else None


def _by_kind(snapshot: DaemonSnapshot, spec: CampaignSpec) -> SyncStatus:
    if spec.backend not in snapshot.observed:
        return SyncStatus(Sync.OUT_OF_SYNC, "not read yet: the first pass over its backend has not finished")
    if isinstance(spec, IotCampaignSpec):
        return _iot(snapshot, spec)
    if isinstance(spec, SimCampaignSpec):
        return _sim(snapshot, spec)
    return _sms(snapshot, spec)


def _iot(snapshot: DaemonSnapshot, spec: IotCampaignSpec) -> SyncStatus:
    found = iot_campaign(snapshot, spec)
    if found is None:
        return SyncStatus(Sync.OUT_OF_SYNC, "declared in git, not in the backend")
    names = lifecycle(snapshot, spec.backend)
    started = found.status == names.started
    if started != (spec.state is IotRunState.RUNNING):
        return SyncStatus(Sync.OUT_OF_SYNC, f"declared {spec.state.value}, is {found.status}")
    declared = {g for a in (snapshot.desired.assignments_of(spec.name) if snapshot.desired else ()) for g in a.gateways}
    members = {g.gateway_id for g in found.gateways}
    final = final_states(names)
    done = sum(1 for g in found.gateways if g.state in final)
    if started and (done < len(found.gateways) or declared - members):
        total = len(declared | members)
        return SyncStatus(Sync.PROGRESSING, f"{done:,} of {total:,} gateway(s) finished"
                                            + (f"; {len(declared - members):,} not in the campaign yet"
                                               if declared - members else ""))
    return SyncStatus(Sync.SYNCED, snapshot.reasons.get(f"Campaign/{spec.name}", "in sync"))


def _sim(snapshot: DaemonSnapshot, spec: SimCampaignSpec) -> SyncStatus:
    found = sim_campaign(snapshot, spec)
    assert found is not None  # _error reported a missing one
    names = lifecycle(snapshot, spec.backend)
    wanted = run_state_name(spec.state, names)
    if names.finished and found.state == names.finished:
        return SyncStatus(Sync.SYNCED, "finished: the backend accepts no further action")
    if found.state != wanted:
        return SyncStatus(Sync.OUT_OF_SYNC, f"declared {wanted}, is {found.state}")
    pending = sum(int(found.counts.get(state, 0)) for state in PENDING_PARTICIPANTS)
    if pending and found.state == names.started:
        total = int(found.counts.get("participants", 0)) or len(found.participants)
        return SyncStatus(Sync.PROGRESSING, f"{pending:,} of {total:,} participant(s) pending")
    unfinished = [p for p in found.participants if p.state not in final_states(names)]
    if unfinished and found.state == names.started and not found.counts:
        return SyncStatus(Sync.PROGRESSING, f"{len(unfinished):,} participant(s) pending")
    return SyncStatus(Sync.SYNCED, f"in sync ({found.state})")


def _sms(snapshot: DaemonSnapshot, spec: SmsCampaignSpec) -> SyncStatus:
    to_send, counts = sms_counts(snapshot, spec)
    in_flight = sum(counts.get(s, 0) for s in SMS_IN_FLIGHT)
    if spec.name in snapshot.sending:
        verb = "sending" if spec.state is SmsRunState.ACTIVE else f"{spec.state.value}: the send is stopping"
        return SyncStatus(Sync.PROGRESSING, f"{verb}; {to_send:,} to send, {in_flight:,} in flight")
    if spec.state is SmsRunState.PAUSED:
        return SyncStatus(Sync.SYNCED, f"paused: {to_send:,} recipient(s) are sent when it resumes")
    if spec.state is SmsRunState.STOPPED:
        return SyncStatus(Sync.SYNCED, f"stopped: {to_send:,} recipient(s) will not be sent")
    if to_send or counts.get("dispatching"):
        return SyncStatus(Sync.OUT_OF_SYNC, f"{to_send:,} recipient(s) not sent yet; the next pass sends them")
    if counts.get("accepted"):
        return SyncStatus(Sync.PROGRESSING, f"{counts['accepted']:,} message(s) queued at the backend")
    return SyncStatus(Sync.SYNCED, "every recipient handled")
