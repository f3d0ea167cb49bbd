"""Campaign progress events: a rollout wave advanced or halted, a campaign completed, gateways stranded,
SMS outcomes unknown.

Read from what the pass observed (before it applied) and what it did: a wave advanced when the pass added
gateways that take the campaign into a later wave than its members were in; a rollout halted while its
failure rate is over ``maxFailureRate`` (the planner stops it); state names come from the backend's
traits (``Lifecycle``), never spelled here. Only campaigns on backends this pass read are looked at.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.actions import Verb
from reconciler.engine.execute import OutcomeStatus
from reconciler.model import (
    DesiredState, IotCampaignSpec, Kind, NotificationEvent, ResourceKey, SimCampaignSpec, SmsCampaignSpec,
)
from reconciler.notify.event import MAX_LISTED, Event, Found, condition_id, event_id
from reconciler.notify.facts import PassFacts
from reconciler.observed import BackendObservation, ObservedGateway, ObservedIotCampaign
from reconciler.planner.campaign_gateways import wave_sizes
from reconciler.planner.plan import SmsOutlook
from reconciler.traits import Lifecycle

UNKNOWN = "unknown"  # the send ledger's state of an SMS that may or may not have left
DISPATCHING = "dispatching"


def campaign_events(facts: PassFacts, found: Found) -> None:
    """Progress events of every campaign on a backend this pass read."""
    observed = facts.observed.backends if facts.observed is not None else {}
    declared = declared_gateways(facts.desired)
    by_name: dict[tuple[str, str], list[ObservedIotCampaign]] = {}
    for backend, observation in observed.items():
        for campaign in observation.iot_campaigns:
            by_name.setdefault((backend, campaign.name), []).append(campaign)
    for name, spec in sorted(facts.desired.campaigns.items()):
        if spec.backend not in facts.readable_backends or spec.backend not in observed:
            continue
        lifecycle = facts.traits[spec.backend].lifecycle if spec.backend in facts.traits else Lifecycle()
        if isinstance(spec, IotCampaignSpec):
            _iot_campaign(facts, found, spec, by_name.get((spec.backend, name), []), lifecycle,
                          declared.get(name, frozenset()))
        elif isinstance(spec, SimCampaignSpec):
            _sim_campaign(found, spec, observed[spec.backend], lifecycle)
        elif isinstance(spec, SmsCampaignSpec) and name in facts.sms:
            _sms_campaign(found, spec, facts.sms[name])
    _stranded(facts, found)


def _iot_campaign(facts: PassFacts, found: Found, spec: IotCampaignSpec, matches: list[ObservedIotCampaign],
                  lifecycle: Lifecycle, declared: frozenset[str]) -> None:
    """Halt, wave and completion of one IoT campaign (``matches``: the observed campaigns of its name)."""
    halted = NotificationEvent.ROLLOUT_HALTED
    subject = f"{halted.value}/{spec.name}"
    if len(matches) != 1:
        found.clear(subject)  # none (yet), or ambiguous (the plan says so): no rollout to speak of
        return
    campaign = matches[0]
    gateways = {g.gateway_id: g for g in campaign.gateways}
    if spec.rollout is not None and _halted(facts, found, spec, campaign, gateways, lifecycle):
        found.halted.add(spec.name)
    else:
        found.clear(subject)
        if spec.rollout is not None:
            _wave(facts, found, spec, campaign, declared & gateways.keys(), len(declared))
    if declared and all(g in gateways and gateways[g].state in lifecycle.member_succeeded for g in declared):
        kind = NotificationEvent.CAMPAIGN_COMPLETED
        found.add(Event(kind, event_id(kind.value, spec.name, spec.backend, campaign.id),
                        f"campaign {spec.name}: all {len(declared)} gateway(s) completed the update",
                        campaign=spec.name, backend=spec.backend, resource=_resource(spec.name),
                        details={"campaignId": campaign.id, "gateways": len(declared)}))


def declared_gateways(desired: DesiredState) -> dict[str, frozenset[str]]:
    """Every campaign's assigned gateways (one walk over the assignments, not one per campaign)."""
    found: dict[str, set[str]] = {}
    for assignment in desired.assignments.values():
        found.setdefault(assignment.campaign, set()).update(assignment.gateways)
    return {campaign: frozenset(gateways) for campaign, gateways in found.items()}


def _halted(facts: PassFacts, found: Found, spec: IotCampaignSpec, campaign: ObservedIotCampaign,
            gateways: Mapping[str, ObservedGateway], lifecycle: Lifecycle) -> bool:
    """``rollout.halted`` while the failure rate (failed / gateways in the campaign) is over the limit."""
    assert spec.rollout is not None
    failed = sum(1 for g in gateways.values() if g.state in lifecycle.member_failed)
    if not gateways or failed / len(gateways) <= spec.rollout.max_failure_rate:
        return False
    kind = NotificationEvent.ROLLOUT_HALTED
    subject = f"{kind.value}/{spec.name}"
    rate = failed / len(gateways)
    found.add(Event(kind, condition_id(kind, subject, facts.now),
                    f"rollout of {spec.name} halted: failure rate {rate:.0%} ({failed} of {len(gateways)} gateways) "
                    f"is over maxFailureRate {spec.rollout.max_failure_rate:.0%}; the campaign is stopped",
                    campaign=spec.name, backend=spec.backend, resource=_resource(spec.name), severity="error",
                    subject=subject,
                    details={"campaignId": campaign.id, "failed": failed, "gateways": len(gateways),
                             "failureRate": round(rate, 4), "maxFailureRate": spec.rollout.max_failure_rate}))
    return True


def wave_of(members: int, sizes: list[int]) -> int:
    """The wave (0-based) a campaign with ``members`` gateways is in: the first whose size holds them."""
    return next((i for i, size in enumerate(sizes) if members <= size), len(sizes) - 1)


def _wave(facts: PassFacts, found: Found, spec: IotCampaignSpec, campaign: ObservedIotCampaign,
          members: frozenset[str], declared: int) -> None:
    """``rollout.wave-advanced`` when this pass added gateways that take a started rollout into a later
    wave (the first wave's gateways are the start, not an advance)."""
    assert spec.rollout is not None
    key = ResourceKey(Kind.CAMPAIGN, spec.name)
    added = sum(len(o.action.params.get("gateway_ids", ())) for o in facts.outcomes()
                if o.key == key and o.action.verb is Verb.ADD_GATEWAYS and o.status is OutcomeStatus.SUCCEEDED)
    if not members or not added or not declared:
        return
    sizes = wave_sizes(spec.rollout.waves, declared)
    before, after = wave_of(len(members), sizes), wave_of(len(members) + added, sizes)
    if after <= before:
        return
    kind = NotificationEvent.ROLLOUT_WAVE_ADVANCED
    waves = len(sizes)
    found.advanced.add(spec.name)
    found.add(Event(kind, event_id(kind.value, spec.name, spec.backend, campaign.id, after),
                    f"rollout of {spec.name} advanced to wave {after + 1} of {waves} "
                    f"({spec.rollout.waves[after]:.0%}: {len(members) + added} of {declared} gateways)",
                    campaign=spec.name, backend=spec.backend, resource=_resource(spec.name),
                    details={"campaignId": campaign.id, "wave": after + 1, "waves": waves,
                             "share": spec.rollout.waves[after], "gateways": len(members) + added,
                             "declared": declared, "added": added}))


def _sim_campaign(found: Found, spec: SimCampaignSpec, observation: BackendObservation, lifecycle: Lifecycle) -> None:
    campaign = next((c for c in observation.sim_campaigns if c.campaign_id == spec.campaign_id), None)
    if campaign is None or not lifecycle.finished or campaign.state != lifecycle.finished:
        return
    kind = NotificationEvent.CAMPAIGN_COMPLETED
    found.add(Event(kind, event_id(kind.value, spec.name, spec.backend, spec.campaign_id),
                    f"campaign {spec.name} ({spec.campaign_id}) finished", campaign=spec.name, backend=spec.backend,
                    resource=_resource(spec.name),
                    details={"campaignId": spec.campaign_id, "participants": dict(campaign.counts)}))


def _sms_campaign(found: Found, spec: SmsCampaignSpec, outlook: SmsOutlook) -> None:
    """``sms.unknown-outcomes`` each time more become unknown; ``campaign.completed`` once every recipient
    was handed over (nothing left to send, nothing in flight)."""
    counts = dict(outlook.counts)
    if outlook.history_unknown:
        return
    unknown = counts.get(UNKNOWN, 0)
    if unknown:
        kind = NotificationEvent.SMS_UNKNOWN_OUTCOMES
        found.add(Event(kind, event_id(kind.value, spec.name, spec.backend, unknown),
                        f"campaign {spec.name}: {unknown} SMS may or may not have been sent (the backend cannot "
                        f"tell); onUnknownOutcome: {spec.on_unknown_outcome.value}",
                        campaign=spec.name, backend=spec.backend, resource=_resource(spec.name), severity="warning",
                        details={"unknown": unknown, "recipients": outlook.recipients, "counts": counts}))
    if outlook.recipients and not outlook.to_send and not counts.get(DISPATCHING, 0):
        kind = NotificationEvent.CAMPAIGN_COMPLETED
        found.add(Event(kind, event_id(kind.value, spec.name, spec.backend, outlook.recipients),
                        f"campaign {spec.name}: all {outlook.recipients} SMS handed to the backend",
                        campaign=spec.name, backend=spec.backend, resource=_resource(spec.name),
                        details={"recipients": outlook.recipients, "counts": counts}))


def _stranded(facts: PassFacts, found: Found) -> None:
    """``gateways.stranded`` while a campaign has stranded gateways; over when a pass over its backend
    finds none."""
    assert facts.plan is not None
    kind = NotificationEvent.GATEWAYS_STRANDED
    stranded = {s.campaign: s for s in facts.plan.stranded}
    for name, spec in sorted(facts.desired.campaigns.items()):
        if not isinstance(spec, IotCampaignSpec) or spec.backend not in facts.readable_backends:
            continue
        subject = f"{kind.value}/{name}"
        entry = stranded.get(name)
        if entry is None:
            found.clear(subject)
            continue
        windows = ", ".join(entry.by_window) or "schedule"
        found.add(Event(kind, condition_id(kind, subject, facts.now),
                        f"campaign {name}: {entry.count} gateway(s) stranded: their {windows} window ended "
                        f"before they finished", campaign=name, backend=entry.backend, resource=_resource(name),
                        severity="warning", subject=subject,
                        details={"count": entry.count, "byWindow": dict(entry.by_window),
                                 "byState": dict(entry.by_state), "since": entry.since,
                                 "rescheduled": entry.rescheduled, "gateways": list(entry.gateways[:MAX_LISTED])}))


def _resource(campaign: str) -> str:
    return str(ResourceKey(Kind.CAMPAIGN, campaign))
