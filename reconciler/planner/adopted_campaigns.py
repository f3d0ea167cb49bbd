"""Planning rules for campaigns created elsewhere and adopted by id (SIM OTA on YateOTA is one such
backend): run state and participants. The state names come from the backend's traits (``lifecycle``).

Campaigns are adopted, so there is no create, delete or prune here:
- run state: started / paused / stopped are reached with restart / pause / stop; finished is final;
- ``retryFailed.maxAttempts`` counts every attempt, the first included: a failed participant is retried
  while the retries this tool made (remembered in the state store) are fewer than ``maxAttempts - 1``;
- ``cancel`` lists participants (by MSISDN or IMSI) to cancel while not final; ``hurry`` those to hurry
  while pending (the backend refuses to hurry failed or waiting_por participants).
"""

from __future__ import annotations

from reconciler.actions import Action, Verb
from reconciler.model import Kind, ResourceKey, SimCampaignSpec, SimRunState
from reconciler.observed import BackendObservation, ObservedSimCampaign
from reconciler.planner import memory
from reconciler.planner.campaign_gateways import first_by
from reconciler.planner.plan import PlanBuilder, PlanInput
from reconciler.planner.timing import outside_active_period
from reconciler.traits import Lifecycle


def transitions(lifecycle: Lifecycle) -> dict[tuple[SimRunState, str], Verb]:
    """(declared run state, observed state) -> the verb that gets there; states the backend lacks are left
    out (an empty name never matches an observed state)."""
    table = {
        (SimRunState.RUNNING, lifecycle.paused): Verb.RESTART_CAMPAIGN,
        (SimRunState.RUNNING, lifecycle.stopped): Verb.RESTART_CAMPAIGN,
        (SimRunState.PAUSED, lifecycle.started): Verb.PAUSE_CAMPAIGN,
        (SimRunState.STOPPED, lifecycle.started): Verb.STOP_CAMPAIGN,
        (SimRunState.STOPPED, lifecycle.paused): Verb.STOP_CAMPAIGN,
    }
    return {key: verb for key, verb in table.items() if key[1]}


def run_state_name(wanted: SimRunState, lifecycle: Lifecycle) -> str:
    """The backend's name for a declared run state (``running`` is ``started`` on YateOTA)."""
    names = {SimRunState.RUNNING: lifecycle.started, SimRunState.PAUSED: lifecycle.paused,
             SimRunState.STOPPED: lifecycle.stopped}
    return names[wanted] or wanted.value


def plan_adopted_campaigns(inp: PlanInput, b: PlanBuilder, backend: str, observation: BackendObservation) -> None:
    by_id = first_by(observation.sim_campaigns, lambda c: c.campaign_id, lambda c: (c.campaign_id, c.state, c.name))
    specs = sorted((c for c in inp.desired.campaigns_of(backend) if isinstance(c, SimCampaignSpec)),
                   key=lambda c: c.name)
    for spec in specs:
        key = ResourceKey(Kind.CAMPAIGN, spec.name)
        observed = by_id.get(spec.campaign_id)
        if observed is None:
            known = ", ".join(str(i) for i in sorted(by_id)) or "none"
            b.error(key, f"campaign {spec.campaign_id} does not exist on backend {backend} "
                         f"(campaigns there: {known})", spec.source)
            continue
        _plan_campaign(inp, b, backend, spec, observed, key)
        if not b.has_actions_for(key):
            b.noop(key, f"in sync ({observed.state})")


def _plan_campaign(inp: PlanInput, b: PlanBuilder, backend: str, spec: SimCampaignSpec,
                   observed: ObservedSimCampaign, key: ResourceKey) -> None:
    lifecycle = inp.traits[backend].lifecycle
    if lifecycle.finished and observed.state == lifecycle.finished:
        b.noop(key, f"{observed.state}: the backend accepts no further action")
        return
    hold = outside_active_period(inp.desired, spec.name, inp.now)
    wanted = SimRunState.PAUSED if hold and spec.state is SimRunState.RUNNING else spec.state
    if hold:
        b.noop(key, hold)
    verb = transitions(lifecycle).get((wanted, observed.state))
    if verb is not None:
        b.add(Action(f"{backend}/campaign/{spec.name}/{verb.value}", verb, key, backend,
                     {"campaign_id": spec.campaign_id},
                     reason=f"declared {run_state_name(wanted, lifecycle)}, is {observed.state}"))
    elif wanted is SimRunState.PAUSED and lifecycle.stopped and observed.state == lifecycle.stopped:
        b.warn(key, "declared paused but the campaign is stopped; only a started campaign can be paused",
               spec.source)
    if wanted is SimRunState.RUNNING:
        _plan_participants(inp, b, backend, spec, observed, key)


def _plan_participants(inp: PlanInput, b: PlanBuilder, backend: str, spec: SimCampaignSpec,
                       observed: ObservedSimCampaign, key: ResourceKey) -> None:
    lifecycle = inp.traits[backend].lifecycle
    cancel = set(spec.cancel_msisdns) | set(spec.cancel_imsis)
    hurry = set(spec.hurry_msisdns)
    exhausted = 0
    once = first_by(observed.participants, lambda p: p.participant_id,  # a backend may list one twice
                    lambda p: (p.participant_id, p.state, p.msisdn, p.imsi, p.attempts, p.error))
    for participant in sorted(once.values(), key=lambda p: p.participant_id):
        pid = participant.participant_id
        base = f"{backend}/campaign/{spec.name}/participant/{pid}"
        if (participant.msisdn in cancel or participant.imsi in cancel) and \
                participant.state not in lifecycle.member_final:
            b.add(Action(f"{base}/cancel", Verb.CANCEL_PARTICIPANT, key, backend, {"participant_id": pid},
                         reason="listed under participants.cancel"))
        elif participant.msisdn in hurry and participant.state in lifecycle.member_hurriable:
            b.add(Action(f"{base}/hurry", Verb.HURRY_PARTICIPANT, key, backend, {"participant_id": pid},
                         reason="listed under participants.hurry"))
        elif participant.state in lifecycle.member_failed and spec.retry_failed_max_attempts is not None:
            done = inp.store.attempts.get((backend, memory.participant_key(spec.campaign_id, pid)), 0)
            if done < spec.retry_failed_max_attempts - 1:
                b.add(Action(f"{base}/retry", Verb.RETRY_PARTICIPANT, key, backend,
                             {"participant_id": pid, "campaign_id": spec.campaign_id},
                             reason=f"failed; attempt {done + 2} of {spec.retry_failed_max_attempts}"))
            else:
                exhausted += 1
    if exhausted:
        b.noop(key, f"{exhausted} failed participant(s) used all {spec.retry_failed_max_attempts} attempts")
