"""Reply bodies of the IoT campaign manager sandbox, shaped exactly as the seed shows them.

Numbers that the seed writes as ``"string"`` are strings here too (counts, totals, times), so an
adapter that only works with JSON numbers fails against the sandbox as it would against the product.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox.iot_campaigns.agent import (
    Checkpoint,
    GatewayState,
    downloaded_bytes,
    execution_percent,
    has_reached,
)
from reconciler.sandbox.iot_campaigns.model import Campaign, CampaignStatus, GatewayRun, Program, epoch_ms
from reconciler.sandbox.iot_campaigns.state import IotCampaignsState


@dataclass(frozen=True)
class PageRequest:
    """A page of a list: ``number`` counts from 0; ``size`` is already capped."""

    number: int
    size: int

    def slice(self, items: Sequence[Any]) -> Sequence[Any]:
        start = self.number * self.size
        return items[start:start + self.size]

    def info(self, total: int) -> dict[str, Any]:
        """The ``pageInfo`` / ``pageResponse`` object: totals as strings, page and size as numbers."""
        return {
            "totalPages": str(math.ceil(total / self.size) if self.size else 0),
            "totalElements": str(total),
            "page": self.number,
            "pageSize": self.size,
        }


def campaign_view(campaign: Campaign) -> dict[str, Any]:
    """Get Campaign (and each item of List Campaigns)."""
    return {
        "status": campaign.status.value,
        "name": campaign.name,
        "creationTime": epoch_ms(campaign.created),
        "packages": {"packages": list(campaign.packages)},
        "id": campaign.id,
        "description": campaign.description,
    }


def program_view(program: Program) -> dict[str, Any]:
    """Get Package Information (and each item of List Packages)."""
    return {
        "description": program.description,
        "id": program.id,
        "createdBy": program.created_by,
        "createdOn": epoch_ms(program.created_on),
        "name": program.name,
    }


def gateway_item(state: IotCampaignsState, campaign: Campaign, run: GatewayRun, now: float) -> dict[str, Any]:
    at = state.position(campaign, run, now)
    return {"gatewayId": run.gateway_id, "state": at.state.value, "closed": state.is_closed(run, at)}


def download_progress(state: IotCampaignsState, campaign: Campaign, run: GatewayRun, at: Checkpoint,
                      now: float) -> dict[str, Any]:
    """Per package of the gateway: bytes downloaded (``progress``) of ``total``, as strings."""
    moment = state.effective_now(campaign, now)
    entries = []
    for package_id in state.effective_packages(campaign, run):
        program = state.programs.get(package_id)
        total = program.size if program else 0
        done = downloaded_bytes(at, moment, state.options.step_seconds, total)
        entries.append({"progress": str(done), "total": str(total), "id": package_id})
    return {"packagesProgress": entries}


def execution_progress(state: IotCampaignsState, campaign: Campaign, run: GatewayRun, at: Checkpoint,
                       now: float) -> list[str]:
    """One percentage string per package of the gateway; empty before execution started."""
    percent = execution_percent(at, state.effective_now(campaign, now), state.options.step_seconds)
    if percent is None:
        return []
    return [str(percent) for _ in state.effective_packages(campaign, run)]


def gateway_status(state: IotCampaignsState, campaign: Campaign, run: GatewayRun, now: float) -> dict[str, Any]:
    """Get Campaign Status Per Gateway; ``timestamp`` is when the gateway entered its state."""
    at = state.position(campaign, run, now)
    return {
        "campaignId": campaign.id,
        "campaignState": {"state": at.state.value},
        "timestamp": epoch_ms(at.entered),
        "downloadProgress": download_progress(state, campaign, run, at, now),
        "executionProgress": execution_progress(state, campaign, run, at, now),
        "gatewayId": run.gateway_id,
    }


def campaign_status(state: IotCampaignsState, campaign: Campaign, now: float) -> dict[str, Any]:
    """Get Overall Campaign Status. A gateway counts "in" a complete state once it has reached it
    (a gateway that is activated has also downloaded and executed)."""
    reached: Counter[GatewayState] = Counter()
    milestones = (GatewayState.DOWNLOAD_COMPLETE, GatewayState.EXECUTION_COMPLETE, GatewayState.ACTIVATION_COMPLETE)
    for run in campaign.gateways.values():
        at = state.position(campaign, run, now)
        for milestone in milestones:
            reached[milestone] += has_reached(at.state, milestone)
    return {
        "status": campaign.status.value,
        "name": campaign.name,
        "campaignId": campaign.id,
        "numberOfGatewaysInActivationCompleteState": str(reached[GatewayState.ACTIVATION_COMPLETE]),
        "numberOfGatewaysInExecutionCompleteState": str(reached[GatewayState.EXECUTION_COMPLETE]),
        "creationTime": epoch_ms(campaign.created),
        "modificationTime": epoch_ms(campaign.modified),
        "totalNumberOfGateways": str(len(campaign.gateways)),
        "totalNumberOfPackages": str(len(campaign.packages)),
        "numberOfGatewaysInDownloadCompleteState": str(reached[GatewayState.DOWNLOAD_COMPLETE]),
        "description": campaign.description,
    }


def counts_by_status(state: IotCampaignsState) -> dict[str, str]:
    """Get Campaign Count by Status (with the seed's spelling ``aprovedNotStartedCount``)."""
    counts = Counter(c.status for c in state.campaigns.values())
    return {
        "aprovedNotStartedCount": str(counts[CampaignStatus.APPROVED]),
        "startedCount": str(counts[CampaignStatus.STARTED]),
        "stoppedCount": str(counts[CampaignStatus.STOPPED]),
        "waitingApprovalCount": str(counts[CampaignStatus.APPROVAL_NEEDED]),
        "noApprovalNeededReadyToStartCount": str(counts[CampaignStatus.CREATED]),
    }
