"""What a YateOTA node has that git does not declare, as declarations (``reconcile import``).

YateOTA campaigns are created elsewhere and declared by ``campaignId``, so every listed campaign whose id
no declared Campaign of this backend adopts becomes a Campaign with that id and its run state; its name is
free (made from the backend's campaign name). The Reader's listing is all it takes: no further request.
Participants need no declaration: what to do with them (retry, cancel, hurry) is a decision, not a state.
"""

from __future__ import annotations

from reconciler.backends.exported import Adoption, ExportedResource, ExportResult
from reconciler.escape import escape
from reconciler.model import DesiredState, Kind, SimCampaignSpec
from reconciler.observed import BackendObservation, ObservedSimCampaign

#: campaign.schema.json's bounds of ``campaignId``
MAX_CAMPAIGN_ID = 9_007_199_254_740_991
#: the declared run state that asks nothing of a campaign in each backend state
RUN_STATES = {"started": "running", "paused": "paused", "stopped": "stopped"}


class YateOtaExporter:
    """Exports the campaigns of one YateOTA node that ``desired`` does not adopt."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def __repr__(self) -> str:
        return f"YateOtaExporter(backend={self.backend!r})"

    async def aclose(self) -> None:
        return None

    async def export(self, desired: DesiredState, observation: BackendObservation) -> ExportResult:
        declared = {c.campaign_id for c in desired.campaigns_of(self.backend) if isinstance(c, SimCampaignSpec)}
        listed: dict[int, ObservedSimCampaign] = {}
        for campaign in sorted(observation.sim_campaigns, key=lambda c: (c.campaign_id, c.state, c.name)):
            listed.setdefault(campaign.campaign_id, campaign)  # a node may list one twice
        resources: list[ExportedResource] = []
        skipped: list[str] = []
        for campaign_id, campaign in listed.items():
            if campaign_id in declared:
                continue
            if not 1 <= campaign_id <= MAX_CAMPAIGN_ID:
                skipped.append(f"Campaign {campaign_id}: not an id a declaration can hold (1 to {MAX_CAMPAIGN_ID})")
                continue
            resources.append(self._campaign(campaign))
        return ExportResult(tuple(resources), tuple(skipped))

    def _campaign(self, campaign: ObservedSimCampaign) -> ExportedResource:
        state = RUN_STATES.get(campaign.state, "stopped")
        kind = f" (type {escape(campaign.type)})" if campaign.type else ""
        participants = campaign.counts.get("participants")
        comments = [f"Imported from backend {self.backend}: campaign {campaign.campaign_id} "
                    f"{campaign.name!r}{kind}, {escape(campaign.state) or 'no state'} in the backend"
                    + (f", {participants} participant(s)." if participants is not None else ".")]
        if campaign.state == "finished":
            comments.append("It is finished: the backend accepts no further action, whatever is declared.")
        elif campaign.state not in RUN_STATES:
            comments.append(f"State {campaign.state!r} is not one this tool drives; declared stopped.")
        return ExportedResource(
            ref=f"campaign/{campaign.campaign_id}", kind=Kind.CAMPAIGN, name_from=campaign.name,
            spec={"backend": self.backend, "campaignId": campaign.campaign_id, "state": state},
            fallback=f"campaign-{campaign.campaign_id}", comments=tuple(comments),
            summary=f"campaign {campaign.campaign_id} {campaign.name!r} ({escape(campaign.state)})",
            adoptions=(Adoption("campaign", str(campaign.campaign_id)),))
