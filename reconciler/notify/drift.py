"""``drift.corrected``: the daemon put back what someone changed outside git.

A pass cannot tell drift from an edit by looking at its own plan: starting a campaign is the same action
whether git just said ``running`` or someone stopped it in the backend's UI. So the daemon hands each pass
a ``DriftBaseline`` (``drift_baseline``): the resources whose declarations are unchanged since its
previous pass and whose actions did not fail then. A successful action on one of those that restores
observed state (create, update, start, stop, pause, restart, gateways, packages, distribution list) is a
drift correction, except what time or progress asks for with no edit: a run-state change at an active
period's edge, the stop of a halted rollout, the gateways of the next wave. An apply reports no drift.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from reconciler.actions import Verb
from reconciler.engine.execute import Outcome, OutcomeStatus
from reconciler.model import DesiredState, Kind, NotificationEvent, ResourceKey
from reconciler.notify.campaign_events import campaign_events
from reconciler.notify.event import MAX_LISTED, Event, Found, event_id, short
from reconciler.notify.facts import DriftBaseline, PassFacts
from reconciler.planner.timing import outside_active_period

RUN_STATE = frozenset({Verb.START_CAMPAIGN, Verb.STOP_CAMPAIGN, Verb.PAUSE_CAMPAIGN, Verb.RESTART_CAMPAIGN})
RESTORING = RUN_STATE | frozenset({
    Verb.CREATE_CAMPAIGN, Verb.UPDATE_CAMPAIGN, Verb.ADD_GATEWAYS, Verb.REMOVE_GATEWAYS,
    Verb.SET_GATEWAY_PACKAGES, Verb.SET_DISTRIBUTION_LIST, Verb.UPLOAD_PACKAGE,
})


def drift_events(facts: PassFacts, found: Found) -> None:
    """One event per resource whose drift this pass corrected (``campaign_events`` ran first: it knows
    which rollouts halted or advanced)."""
    kind = NotificationEvent.DRIFT_CORRECTED
    for key, outcomes in sorted(corrected_by_resource(facts, found).items()):
        verbs = sorted({o.action.verb.value for o in outcomes})
        campaign = key.name if key.kind is Kind.CAMPAIGN else None
        found.add(Event(kind, event_id(kind.value, key, *sorted(o.action.id for o in outcomes), facts.now.isoformat()),
                        f"drift corrected on {key}: {', '.join(verbs)}", campaign=campaign,
                        backend=outcomes[0].action.backend, resource=str(key), severity="warning",
                        details={"actions": [{"verb": o.action.verb.value, "reason": short(o.action.reason)}
                                             for o in outcomes[:MAX_LISTED]], "count": len(outcomes)}))


def corrected_by_resource(facts: PassFacts, found: Found) -> dict[ResourceKey, list[Outcome]]:
    """The pass's actions that corrected drift, by resource (none without a baseline: an apply)."""
    baseline = facts.drift
    corrected: dict[ResourceKey, list[Outcome]] = {}
    if baseline is None:
        return corrected
    for outcome in facts.outcomes():
        if outcome.status is OutcomeStatus.SUCCEEDED and outcome.key in baseline.resources \
                and _restores(facts, found, baseline, outcome):
            corrected.setdefault(outcome.key, []).append(outcome)
    return corrected


def drift_corrections(facts: PassFacts) -> tuple[Outcome, ...]:
    """The actions of one pass that corrected drift, for who counts them rather than notifies (the daemon's
    ``reconcile_drift_corrections_total`` and its ``action.done`` logs): the rule of the ``drift.corrected``
    event, so both agree. What it needs of ``campaign_events`` (rollouts halted, waves advanced in this pass)
    is learnt in a scratch ``Found`` whose events are dropped. A send the pass only steers, a wave's
    gateways, a run-state change at an active period's edge are not drift."""
    if facts.drift is None or facts.plan is None or not facts.outcomes():
        return ()
    found = Found()
    campaign_events(facts, found)
    return tuple(o for outcomes in corrected_by_resource(facts, found).values() for o in outcomes)


def _restores(facts: PassFacts, found: Found, baseline: DriftBaseline, outcome: Outcome) -> bool:
    verb, name = outcome.action.verb, outcome.key.name
    if verb not in RESTORING:
        return False
    if verb is Verb.ADD_GATEWAYS and name in found.advanced:
        return False
    if verb in RUN_STATE:
        if name in found.halted:
            return False
        before = outside_active_period(facts.desired, name, baseline.since)
        return bool(before) == bool(outside_active_period(facts.desired, name, facts.now))
    return True


def drift_baseline(*, previous: Mapping[str, str] | None, current: Mapping[str, str],
                   resources: Mapping[ResourceKey, str], desired: DesiredState, failing: Collection[ResourceKey],
                   since: datetime | None) -> DriftBaseline | None:
    """The daemon's baseline for its next pass: ``previous``/``current`` are the per-backend declaration
    prints of its last pass and of now (``daemon.scope.backend_prints``), ``resources`` the per-resource
    ones (``daemon.health.fingerprints``), ``failing`` the resources backing off or stalled. None before a
    first pass: nothing is known to be steady."""
    if previous is None or since is None:
        return None
    steady = {backend for backend, text in current.items() if previous.get(backend) == text}
    kept = frozenset(key for key in resources if _backend_of(desired, key) in steady and key not in failing)
    return DriftBaseline(kept, since)


def _backend_of(desired: DesiredState, key: ResourceKey) -> str | None:
    if key.kind is Kind.PACKAGE and key.name in desired.packages:
        return desired.packages[key.name].backend
    if key.kind is Kind.CAMPAIGN and key.name in desired.campaigns:
        return desired.campaigns[key.name].backend
    return None
