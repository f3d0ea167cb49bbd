"""The route table of the IoT campaign manager sandbox and its campaign- and package-level endpoints.

Paths are the seed's (the two it writes without a leading slash are served with one); each route
names the permission the seed requires. ``POST /api/tokens`` is ours (see ``auth``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.model import CallbackKind
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.iot_campaigns.agent import Window
from reconciler.sandbox.iot_campaigns.auth import TokenBook
from reconciler.sandbox.iot_campaigns.model import (
    ApiError,
    CallbackRegistration,
    Campaign,
    CampaignStatus,
    DistributionListSetting,
    Permission,
    Program,
    epoch_ms,
)
from reconciler.sandbox.iot_campaigns.requests import (
    ApiCall,
    Handler,
    campaign_fields,
    check_path_ids,
    description,
    endpoint,
    error_response,
    json_body,
    optional_interval,
    page_request,
    required_string,
    sort_order,
)
from reconciler.sandbox.iot_campaigns.routes_gateways import EMPTY, GatewayEndpoints
from reconciler.sandbox.iot_campaigns.state import IotCampaignsState
from reconciler.sandbox.iot_campaigns.uploads import read_multipart_upload, read_streaming_upload
from reconciler.sandbox.iot_campaigns.views import (
    campaign_status,
    campaign_view,
    counts_by_status,
    program_view,
)

CAMPAIGN = "/api/campaigns/{campaign_id}"
DEVICE = CAMPAIGN + "/devices/{gateway_id}"

_CAMPAIGN_SORT = {
    "creationTime": lambda c: c.created,
    "name": lambda c: c.name,
    "status": lambda c: c.status.value,
}
_PROGRAM_SORT = {"createdOn": lambda p: p.created_on, "name": lambda p: p.name}


class CampaignEndpoints:
    """Handlers for campaigns, their lifecycle, callbacks, distribution list and the packages."""

    def __init__(self, state: IotCampaignsState) -> None:
        self._state = state

    async def create(self, call: ApiCall) -> dict[str, Any]:
        body = await json_body(call.request, required=True)
        campaign = self._state.create_campaign(campaign_fields(body, creating=True), call.now)
        return {"uuid": campaign.id}

    async def edit(self, call: ApiCall) -> dict[str, Any]:
        campaign_id = call.path("campaign_id")
        body = await json_body(call.request, required=True)
        check_path_ids(body, campaignId=campaign_id)
        spec = body.get("updateSpec")
        if not isinstance(spec, dict):
            raise ApiError(400, "updateSpec (an object) is required")
        campaign = self._state.edit_campaign(campaign_id, campaign_fields(spec, creating=False), call.now)
        return {"uuid": campaign.id}

    async def delete(self, call: ApiCall) -> dict[str, Any]:
        self._state.delete_campaign(call.path("campaign_id"))
        return EMPTY

    async def get(self, call: ApiCall) -> dict[str, Any]:
        return campaign_view(self._state.campaign(call.path("campaign_id")))

    async def list_campaigns(self, call: ApiCall) -> dict[str, Any]:
        page = page_request(call.request)
        key, reverse = sort_order(call.request, _CAMPAIGN_SORT)
        found = sorted(filter(self._campaign_filter(call.request), self._state.campaigns.values()),
                       key=key, reverse=reverse)
        return {"pageInfo": page.info(len(found)), "campaigns": [campaign_view(c) for c in page.slice(found)]}

    def _campaign_filter(self, request: Request) -> Callable[[Campaign], bool]:
        """Filters of List Campaigns (exact matches; ``packages``: uses any of the comma-separated
        ids). ``preDeliveryCallback`` / ``postDeliveryCallback`` are accepted and match everything."""
        query = request.query_params
        status = query.get("status")
        if status and status not in CampaignStatus.__members__:
            raise ApiError(400, f"unknown status {status!r}")
        wanted_packages = set(filter(None, query.get("packages", "").split(",")))

        def keep(campaign: Campaign) -> bool:
            return all((
                query.get("id") in (None, campaign.id),
                query.get("name") in (None, campaign.name),
                status in (None, "", campaign.status.value),
                query.get("description") in (None, campaign.description),
                query.get("creationTime") in (None, epoch_ms(campaign.created)),
                not wanted_packages or bool(wanted_packages & set(campaign.packages)),
            ))

        return keep

    def transition(self, verb: str) -> Handler:
        """Start, stop or approve (the body, when sent, repeats the campaign id)."""
        operations = {"start": self._state.start, "stop": self._state.stop, "approve": self._state.approve}
        operation = operations[verb]

        async def put_transition(call: ApiCall) -> dict[str, Any]:
            campaign_id = call.path("campaign_id")
            check_path_ids(await json_body(call.request), campaignId=campaign_id)
            operation(campaign_id, call.now)
            return EMPTY

        return put_transition

    def callback(self, kind: CallbackKind) -> Handler:
        async def put_callback(call: ApiCall) -> dict[str, Any]:
            campaign_id = call.path("campaign_id")
            body = await json_body(call.request, required=True)
            check_path_ids(body, campaignId=campaign_id)
            tracked = body.get("trackedStates") or []
            if not isinstance(tracked, list) or not all(isinstance(s, str) for s in tracked):
                raise ApiError(400, "trackedStates must be a list of state names")
            registration = CallbackRegistration(kind, required_string(body, "notificationDestinationId"),
                                                tuple(tracked))
            self._state.register_callback(campaign_id, registration, call.now)
            return EMPTY

        return put_callback

    async def set_distribution_list(self, call: ApiCall) -> dict[str, Any]:
        campaign_id = call.path("campaign_id")
        body = await json_body(call.request, required=True)
        check_path_ids(body, campaignId=campaign_id)
        setting = DistributionListSetting(required_string(body, "distributionListId"), optional_interval(body))
        self._state.set_distribution_list(campaign_id, setting, call.now)
        return EMPTY

    async def get_distribution_list(self, call: ApiCall) -> dict[str, Any]:
        """The list, or nulls when none was set."""
        campaign = self._state.campaign(call.path("campaign_id"))
        setting = campaign.distribution_list
        interval = None if setting is None or setting.interval_s is None else str(setting.interval_s)
        return {"distributionListId": None if setting is None else setting.list_id,
                "reevaluationIntervalSeconds": interval, "campaignId": campaign.id}

    async def status(self, call: ApiCall) -> dict[str, Any]:
        return campaign_status(self._state, self._state.campaign(call.path("campaign_id")), call.now)

    async def counts(self, call: ApiCall) -> dict[str, Any]:
        return counts_by_status(self._state)

    # --- packages ("programs") ------------------------------------------------------------------

    async def package_info(self, call: ApiCall) -> dict[str, Any]:
        return program_view(self._state.program(call.path("uuid")))

    async def list_packages(self, call: ApiCall) -> dict[str, Any]:
        page = page_request(call.request)
        key, reverse = sort_order(call.request, _PROGRAM_SORT)
        name = call.request.query_params.get("name")
        found = sorted((p for p in self._state.programs.values() if name in (None, p.name)), key=key,
                       reverse=reverse)
        return {"pageInfo": page.info(len(found)), "programs": [program_view(p) for p in page.slice(found)]}

    async def delete_package(self, call: ApiCall) -> dict[str, Any]:
        self._state.delete_program(call.path("uuid"))
        return EMPTY

    async def upload(self, call: ApiCall) -> dict[str, Any]:
        """Multipart (``file`` + ``description``, limited) or streaming (the body is the file)."""
        content_type = call.request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/"):
            received = await read_multipart_upload(call.request, limit=self._state.options.max_upload_bytes)
            kind = "multipart"
        else:
            received = await read_streaming_upload(call.request)
            kind = "streaming"
        program: Program = self._state.add_program(
            name=received.name, description=description(received.description), size=received.size,
            sha256=received.sha256, user=call.user.name, upload=kind, now=call.now)
        return {"uuid": program.id}


def api_routes(*, state: IotCampaignsState, tokens: TokenBook, clock: SimClock) -> list[BaseRoute]:
    """Every seed endpoint (37) and the token endpoint."""
    c = CampaignEndpoints(state)
    g = GatewayEndpoints(state)
    P = Permission  # noqa: N806 (short alias keeps the table readable)

    def route(path: str, method: str, permission: Permission, handler: Handler) -> Route:
        return Route(path, endpoint(handler, permission=permission, tokens=tokens, clock=clock), methods=[method])

    callbacks = [route(f"{CAMPAIGN}/callbacks/{kind.value}", "PUT", P.EDIT_CAMPAIGN, c.callback(kind))
                 for kind in CallbackKind]
    schedules = [route(f"{DEVICE}/scheduled-{window.value}", "PUT", P.SCHEDULE_CAMPAIGN, g.schedule(window))
                 for window in Window]
    return [
        Route("/api/tokens", _token_endpoint(tokens, clock), methods=["POST"]),
        route("/api/campaigns", "POST", P.CREATE_CAMPAIGN, c.create),
        route("/api/campaigns", "GET", P.VIEW_CAMPAIGN, c.list_campaigns),
        route("/api/campaign-status/campaigns", "GET", P.VIEW_CAMPAIGN, c.counts),
        route(CAMPAIGN, "GET", P.VIEW_CAMPAIGN, c.get),
        route(CAMPAIGN, "PUT", P.EDIT_CAMPAIGN, c.edit),
        route(CAMPAIGN, "DELETE", P.DELETE_CAMPAIGN, c.delete),
        route(f"{CAMPAIGN}/start", "PUT", P.START_CAMPAIGN, c.transition("start")),
        route(f"{CAMPAIGN}/stop", "PUT", P.STOP_CAMPAIGN, c.transition("stop")),
        route(f"{CAMPAIGN}/approve", "PUT", P.APPROVE_CAMPAIGN, c.transition("approve")),
        route(f"{CAMPAIGN}/status", "GET", P.VIEW_CAMPAIGN, c.status),
        route(f"{CAMPAIGN}/distribution-list", "PUT", P.EDIT_CAMPAIGN, c.set_distribution_list),
        route(f"{CAMPAIGN}/distribution-list", "GET", P.VIEW_CAMPAIGN, c.get_distribution_list),
        *callbacks,
        route(f"{CAMPAIGN}/devices", "GET", P.VIEW_CAMPAIGN, g.list_gateways),
        route(f"{CAMPAIGN}/devices", "POST", P.EDIT_CAMPAIGN, g.add_gateways),
        route(f"{CAMPAIGN}/devices", "PUT", P.EDIT_CAMPAIGN, g.remove_gateways),
        route(f"{DEVICE}/notify", "PUT", P.EDIT_CAMPAIGN, g.notify),
        route(f"{DEVICE}/packages", "PUT", P.EDIT_CAMPAIGN, g.set_packages),
        route(f"{DEVICE}/packages", "GET", P.VIEW_CAMPAIGN, g.get_packages),
        *schedules,
        route(f"{DEVICE}/close", "PUT", P.EDIT_CAMPAIGN, g.close),
        route(f"{DEVICE}/state", "GET", P.VIEW_CAMPAIGN, g.get_state),
        route(f"{DEVICE}/progress/execution", "GET", P.VIEW_CAMPAIGN, g.execution_progress),
        route(f"{DEVICE}/progress/download", "GET", P.VIEW_CAMPAIGN, g.download_progress),
        route(f"{DEVICE}/status", "GET", P.VIEW_CAMPAIGN, g.status),
        route("/api/devices/{gateway_id}/active-campaigns", "GET", P.VIEW_CAMPAIGN, g.active_campaigns),
        route("/api/programs/{uuid}/file-info", "GET", P.VIEW_PACKAGE, c.package_info),
        route("/api/programs", "GET", P.VIEW_PACKAGE, c.list_packages),
        route("/api/programs/{uuid}", "DELETE", P.DELETE_PACKAGE, c.delete_package),
        route("/api/programs/", "POST", P.CREATE_PACKAGE, c.upload),
        route("/api/programs", "POST", P.CREATE_PACKAGE, c.upload),
    ]


def _token_endpoint(tokens: TokenBook, clock: SimClock) -> Callable[[Request], Awaitable[Response]]:
    async def post_token(request: Request) -> Response:
        try:
            token = tokens.login(request.headers.get("authorization"), clock.now())
        except ApiError as exc:
            return error_response(exc)
        return JSONResponse({"accessToken": token.value, "tokenType": "Bearer", "expiresIn": int(tokens.ttl_s)})

    return post_token
