"""The planner's entry point: one pass over every declared backend.

Rules are chosen by what a backend can do (its ``BackendTraits.verbs``) and each rule plans the
campaign family it understands (campaigns this tool creates, campaigns adopted by id, SMS sends); never by
backend type, so a new backend of an existing family needs no change here.
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler.actions import Verb
from reconciler.cyclic_gc import cyclic_gc_paused
from reconciler.model import CampaignSpec, IotCampaignSpec, Kind, ResourceKey, SimCampaignSpec, SmsCampaignSpec
from reconciler.observed import BackendObservation
from reconciler.planner.adopted_campaigns import plan_adopted_campaigns
from reconciler.planner.created_campaigns import plan_created_campaigns
from reconciler.planner.plan import Plan, PlanBuilder, PlanInput
from reconciler.planner.sms_sends import plan_sms_sends

Rule = Callable[[PlanInput, PlanBuilder, str, BackendObservation], None]

#: (the campaign kind a rule plans, the verb a backend must support for it, the rule)
RULES: tuple[tuple[type, Verb, Rule], ...] = (
    (IotCampaignSpec, Verb.CREATE_CAMPAIGN, plan_created_campaigns),
    (SimCampaignSpec, Verb.RESTART_CAMPAIGN, plan_adopted_campaigns),
    (SmsCampaignSpec, Verb.SEND_SMS, plan_sms_sends),
)


def plan(inp: PlanInput) -> Plan:
    """Decide every action needed to make the observed state look like the desired state."""
    with cyclic_gc_paused():  # a plan is hundreds of thousands of new objects at 100k gateways, and no cycles
        return _plan(inp)


def _plan(inp: PlanInput) -> Plan:
    b = PlanBuilder()
    for backend in sorted(inp.desired.backends):
        observation = inp.observed.backends.get(backend)
        if observation is None or not observation.readable:
            why = observation.error if observation else "not observed"
            b.unreadable.append(backend)
            b.note(f"backend {backend} could not be read ({why}): nothing is planned for it")
            continue
        verbs = inp.traits[backend].verbs
        for campaign in inp.desired.campaigns_of(backend):
            if not any(isinstance(campaign, kind) and verb in verbs for kind, verb, _ in RULES):
                _unsupported(inp, b, backend, campaign)
        for _, verb, rule in RULES:
            if verb in verbs:
                rule(inp, b, backend, observation)
    return b.build()


def _unsupported(inp: PlanInput, b: PlanBuilder, backend: str, campaign: CampaignSpec) -> None:
    kind = inp.traits[backend].type
    b.error(ResourceKey(Kind.CAMPAIGN, campaign.name),
            f"backend {backend} ({kind}) cannot run a campaign of this kind", campaign.source)
