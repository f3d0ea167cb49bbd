"""Campaign progress as the backends report it (``reconcile status``): pure, from observed state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.model import DesiredState, IotCampaignSpec, SimCampaignSpec, SmsCampaignSpec
from reconciler.observed import ObservedState
from reconciler.planner.plan import SmsOutlook


@dataclass(frozen=True)
class CampaignProgress:
    campaign: str
    backend: str
    state: str  # as the backend says, or "absent" / "unreadable"
    counts: dict[str, int] = field(default_factory=dict)
    detail: str = ""


def campaign_progress(desired: DesiredState, observed: ObservedState,
                      sms: Mapping[str, SmsOutlook] | None = None) -> list[CampaignProgress]:
    rows = []
    for spec in sorted(desired.campaigns.values(), key=lambda c: c.name):
        observation = observed.backends.get(spec.backend)
        if observation is None or not observation.readable:
            rows.append(CampaignProgress(spec.name, spec.backend, "unreadable",
                                         detail=observation.error if observation else ""))
        elif isinstance(spec, IotCampaignSpec):
            found = [c for c in observation.iot_campaigns if c.name == spec.name]
            if not found:
                rows.append(CampaignProgress(spec.name, spec.backend, "absent"))
                continue
            states = Counter(g.state for g in found[0].gateways)
            closed = sum(1 for g in found[0].gateways if g.closed)
            rows.append(CampaignProgress(spec.name, spec.backend, found[0].status, dict(sorted(states.items())),
                                         f"{len(found[0].gateways)} gateways, {closed} closed"))
        elif isinstance(spec, SimCampaignSpec):
            sims = [c for c in observation.sim_campaigns if c.campaign_id == spec.campaign_id]
            if not sims:
                rows.append(CampaignProgress(spec.name, spec.backend, "absent"))
                continue
            rows.append(CampaignProgress(spec.name, spec.backend, sims[0].state, dict(sims[0].counts),
                                         f"campaign {spec.campaign_id}"))
        elif isinstance(spec, SmsCampaignSpec):
            outlook = (sms or {}).get(spec.name) or SmsOutlook(spec.recipients.count, spec.recipients.count)
            counts = {"to-send": outlook.to_send, **dict(sorted(outlook.counts.items()))}
            rows.append(CampaignProgress(spec.name, spec.backend, spec.state.value, counts,
                                         f"{outlook.recipients} recipients (from the send ledger)"))
    return rows
