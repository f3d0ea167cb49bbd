"""The gateway-level endpoints of the IoT campaign manager sandbox: gateways in a campaign, their
packages, schedules, state, progress and status, notify and close, and a gateway's active campaigns.
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox.iot_campaigns.agent import Window
from reconciler.sandbox.iot_campaigns.requests import (
    ApiCall,
    Handler,
    check_path_ids,
    json_body,
    page_request,
    string_list,
    window_span,
)
from reconciler.sandbox.iot_campaigns.state import IotCampaignsState
from reconciler.sandbox.iot_campaigns.views import (
    download_progress,
    execution_progress,
    gateway_item,
    gateway_status,
)

EMPTY: dict[str, Any] = {}


class GatewayEndpoints:
    """Handlers for ``/api/campaigns/{campaign_id}/devices...`` and ``/api/devices/...``."""

    def __init__(self, state: IotCampaignsState) -> None:
        self._state = state

    async def list_gateways(self, call: ApiCall) -> dict[str, Any]:
        campaign = self._state.campaign(call.path("campaign_id"))
        page = page_request(call.request)
        runs = list(campaign.gateways.values())
        items = [gateway_item(self._state, campaign, run, call.now) for run in page.slice(runs)]
        return {"pageResponse": page.info(len(runs)), "gateways": items}

    async def add_gateways(self, call: ApiCall) -> dict[str, Any]:
        campaign_id = call.path("campaign_id")
        body = await json_body(call.request, required=True)
        check_path_ids(body, campaignId=campaign_id)
        self._state.add_gateways(campaign_id, string_list(body, "gatewayIds"), call.now)
        return EMPTY

    async def remove_gateways(self, call: ApiCall) -> dict[str, Any]:
        campaign_id = call.path("campaign_id")
        body = await json_body(call.request, required=True)
        check_path_ids(body, campaignId=campaign_id)
        self._state.remove_gateways(campaign_id, string_list(body, "gatewayIds"), call.now)
        return EMPTY

    async def notify(self, call: ApiCall) -> dict[str, Any]:
        campaign_id, gateway_id = await self._ids_checked(call)
        self._state.notify_gateway(campaign_id, gateway_id, call.now)
        return EMPTY

    async def close(self, call: ApiCall) -> dict[str, Any]:
        campaign_id, gateway_id = await self._ids_checked(call)
        self._state.close_gateway(campaign_id, gateway_id, call.now)
        return EMPTY

    async def set_packages(self, call: ApiCall) -> dict[str, Any]:
        campaign_id, gateway_id = call.path("campaign_id"), call.path("gateway_id")
        body = await json_body(call.request, required=True)
        check_path_ids(body, campaignId=campaign_id, gatewayId=gateway_id)
        self._state.set_gateway_packages(campaign_id, gateway_id, string_list(body, "packages"))
        return EMPTY

    async def get_packages(self, call: ApiCall) -> dict[str, Any]:
        """The gateway's override when one is assigned, else the campaign's packages."""
        campaign = self._state.campaign(call.path("campaign_id"))
        run = self._state.gateway(campaign, call.path("gateway_id"))
        return {"packages": self._state.effective_packages(campaign, run)}

    def schedule(self, window: Window) -> Handler:
        async def put_schedule(call: ApiCall) -> dict[str, Any]:
            campaign_id, gateway_id = call.path("campaign_id"), call.path("gateway_id")
            body = await json_body(call.request, required=True)
            check_path_ids(body, campaignId=campaign_id, gatewayId=gateway_id)
            self._state.schedule(campaign_id, gateway_id, window, window_span(body), call.now)
            return EMPTY

        return put_schedule

    async def get_state(self, call: ApiCall) -> dict[str, Any]:
        campaign = self._state.campaign(call.path("campaign_id"))
        run = self._state.gateway(campaign, call.path("gateway_id"))
        return {"state": self._state.position(campaign, run, call.now).state.value}

    async def execution_progress(self, call: ApiCall) -> dict[str, Any]:
        campaign = self._state.campaign(call.path("campaign_id"))
        run = self._state.gateway(campaign, call.path("gateway_id"))
        at = self._state.position(campaign, run, call.now)
        return {"progress": execution_progress(self._state, campaign, run, at, call.now)}

    async def download_progress(self, call: ApiCall) -> dict[str, Any]:
        campaign = self._state.campaign(call.path("campaign_id"))
        run = self._state.gateway(campaign, call.path("gateway_id"))
        at = self._state.position(campaign, run, call.now)
        return download_progress(self._state, campaign, run, at, call.now)

    async def status(self, call: ApiCall) -> dict[str, Any]:
        campaign = self._state.campaign(call.path("campaign_id"))
        run = self._state.gateway(campaign, call.path("gateway_id"))
        return gateway_status(self._state, campaign, run, call.now)

    async def active_campaigns(self, call: ApiCall) -> dict[str, Any]:
        return {"campaignId": self._state.active_campaigns(call.path("gateway_id"), call.now)}

    async def _ids_checked(self, call: ApiCall) -> tuple[str, str]:
        """Path ids, after checking that ids repeated in an optional body match them."""
        campaign_id, gateway_id = call.path("campaign_id"), call.path("gateway_id")
        body = await json_body(call.request)
        check_path_ids(body, campaignId=campaign_id, gatewayId=gateway_id)
        return campaign_id, gateway_id
