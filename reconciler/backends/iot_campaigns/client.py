"""The IoT campaign manager REST API, one async method per endpoint of the seed (plus login).

Every request goes through ``BackendHttp.call`` (limits, retries, error translation). Reads and
writes that are safe to repeat (full-value PUTs, state transitions, gateway set changes) are marked
idempotent; creating a campaign and uploading a package are not. Uploads stream the file from disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from reconciler.backends.http import BackendHttp, ListingBudget, fetch_in_order
from reconciler.backends.iot_campaigns.auth import IotTokenAuth
from reconciler.backends.iot_campaigns.replies import (
    CampaignCounts,
    CampaignStatusReport,
    CampaignSummary,
    DistributionListInfo,
    GatewayStatusReport,
    PackageProgress,
    Page,
    campaign_from,
    gateway_from,
    no_content,
    package_from,
    page_parser,
    parse_active_campaigns,
    parse_campaign,
    parse_campaign_counts,
    parse_campaign_status,
    parse_distribution_list,
    parse_download_progress,
    parse_execution_progress,
    parse_gateway_status,
    parse_package,
    parse_packages,
    parse_state,
    parse_token,
    parse_uuid,
)
from reconciler.observed import ObservedGateway, ObservedIotCampaign, ObservedIotPackage

T = TypeVar("T")
UPLOAD_CHUNK = 1 << 20
_campaign_page = page_parser("campaigns", campaign_from)
_package_page = page_parser("programs", package_from)
_gateway_page = page_parser("gateways", gateway_from)


def _id(value: str) -> str:
    return quote(str(value), safe="")


def _campaign(campaign_id: str) -> str:
    return f"/api/campaigns/{_id(campaign_id)}"


def _device(campaign_id: str, gateway_id: str) -> str:
    return f"{_campaign(campaign_id)}/devices/{_id(gateway_id)}"


def _campaign_spec(name: str, description: str, packages: Sequence[str],
                   settings: Mapping[str, str]) -> dict[str, Any]:
    return {"name": name, "description": description, "packages": list(packages),
            "campaignSettings": {"settings": dict(settings)}}


class FileChunks:
    """A file read from disk chunk by chunk, every time it is iterated (a resend after a 401 or a
    retry reads it again), so an upload never holds the whole file in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with self.path.open("rb") as file:
            while chunk := file.read(UPLOAD_CHUNK):
                yield chunk


class IotCampaignsClient:
    """Low-level client: one method per endpoint; lists also have ``all_*`` helpers over every page."""

    def __init__(self, *, http: BackendHttp, auth: IotTokenAuth, page_size: int = 100) -> None:
        self.http = http
        self._auth = auth
        self._page_size = page_size
        self._login_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"IotCampaignsClient(backend={self.http.backend!r}, auth={self._auth!r})"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, url: str, operation: str, parse: Callable[..., T], *,
                    idempotent: bool, **request: Any) -> T:
        return await self.http.call(method, url, operation=operation, idempotent=idempotent, parse=parse, **request)

    # --- auth --------------------------------------------------------------------------------------

    async def login(self) -> None:
        """Obtain a bearer token with HTTP Basic (``POST {tokenPath}``)."""
        token = await self._call("POST", str(self._auth.login_url()), "login", parse_token, idempotent=True,
                                 auth=self._auth.basic())
        self._auth.accept_token(token)

    async def ensure_token(self) -> None:
        """Log in once if no token is held yet, so concurrent first requests do not all log in."""
        async with self._login_lock:
            if not self._auth.has_token:
                await self.login()

    # --- campaigns ---------------------------------------------------------------------------------

    async def create_campaign(self, *, name: str, description: str = "", packages: Sequence[str] = (),
                              settings: Mapping[str, str] | None = None) -> str:
        body = _campaign_spec(name, description, packages, settings or {})
        return await self._call("POST", "/api/campaigns", "create-campaign", parse_uuid, idempotent=False, json=body)

    async def edit_campaign(self, campaign_id: str, *, name: str, description: str, packages: Sequence[str],
                            settings: Mapping[str, str]) -> str:
        body = {"updateSpec": _campaign_spec(name, description, packages, settings), "campaignId": campaign_id}
        return await self._call("PUT", _campaign(campaign_id), "edit-campaign", parse_uuid, idempotent=True,
                                json=body)

    async def delete_campaign(self, campaign_id: str) -> None:
        await self._call("DELETE", _campaign(campaign_id), "delete-campaign", no_content, idempotent=True)

    async def get_campaign(self, campaign_id: str) -> ObservedIotCampaign:
        return await self._call("GET", _campaign(campaign_id), "get-campaign", parse_campaign, idempotent=True)

    async def list_campaigns(self, *, page: int = 0, size: int | None = None,
                             filters: Mapping[str, str] | None = None) -> Page[CampaignSummary]:
        params = {**(filters or {}), "page.number": page, "page.size": size or self._page_size}
        return await self._call("GET", "/api/campaigns", "list-campaigns", _campaign_page, idempotent=True,
                                params=params)

    async def start_campaign(self, campaign_id: str) -> None:
        await self._transition(campaign_id, "start")

    async def stop_campaign(self, campaign_id: str) -> None:
        await self._transition(campaign_id, "stop")

    async def approve_campaign(self, campaign_id: str) -> None:
        await self._transition(campaign_id, "approve")

    async def _transition(self, campaign_id: str, verb: str) -> None:
        await self._call("PUT", f"{_campaign(campaign_id)}/{verb}", f"{verb}-campaign", no_content,
                         idempotent=True, json={"campaignId": campaign_id})

    async def get_campaign_status(self, campaign_id: str) -> CampaignStatusReport:
        return await self._call("GET", f"{_campaign(campaign_id)}/status", "campaign-status",
                                parse_campaign_status, idempotent=True)

    async def count_campaigns_by_status(self) -> CampaignCounts:
        return await self._call("GET", "/api/campaign-status/campaigns", "count-campaigns", parse_campaign_counts,
                                idempotent=True)

    # --- callbacks ---------------------------------------------------------------------------------

    async def register_completed_callback(self, campaign_id: str, destination: str) -> None:
        await self._callback(campaign_id, "completed", destination)

    async def register_wake_up_callback(self, campaign_id: str, destination: str) -> None:
        await self._callback(campaign_id, "wake-up", destination)

    async def register_state_change_callback(self, campaign_id: str, destination: str,
                                             tracked_states: Sequence[str] = ()) -> None:
        await self._callback(campaign_id, "state-change", destination, {"trackedStates": list(tracked_states)})

    async def register_execution_progress_callback(self, campaign_id: str, destination: str) -> None:
        await self._callback(campaign_id, "execution-progress", destination)

    async def register_download_progress_callback(self, campaign_id: str, destination: str) -> None:
        await self._callback(campaign_id, "download-progress", destination)

    async def _callback(self, campaign_id: str, kind: str, destination: str,
                        extra: Mapping[str, Any] | None = None) -> None:
        body = {"notificationDestinationId": destination, **(extra or {}), "campaignId": campaign_id}
        await self._call("PUT", f"{_campaign(campaign_id)}/callbacks/{kind}", f"callback-{kind}", no_content,
                         idempotent=True, json=body)

    # --- distribution list -------------------------------------------------------------------------

    async def set_distribution_list(self, campaign_id: str, list_id: str, interval_seconds: int | None) -> None:
        body: dict[str, Any] = {"distributionListId": list_id, "campaignId": campaign_id}
        if interval_seconds is not None:
            body["reevaluationIntervalSeconds"] = str(interval_seconds)
        await self._call("PUT", f"{_campaign(campaign_id)}/distribution-list", "set-distribution-list",
                         no_content, idempotent=True, json=body)

    async def get_distribution_list(self, campaign_id: str) -> DistributionListInfo:
        return await self._call("GET", f"{_campaign(campaign_id)}/distribution-list", "get-distribution-list",
                                parse_distribution_list, idempotent=True)

    # --- gateways in a campaign --------------------------------------------------------------------

    async def list_gateways(self, campaign_id: str, *, page: int = 0,
                            size: int | None = None) -> Page[ObservedGateway]:
        params = {"page.number": page, "page.size": size or self._page_size}
        return await self._call("GET", f"{_campaign(campaign_id)}/devices", "list-gateways", _gateway_page,
                                idempotent=True, params=params)

    async def add_gateways(self, campaign_id: str, gateway_ids: Sequence[str]) -> None:
        await self._call("POST", f"{_campaign(campaign_id)}/devices", "add-gateways", no_content, idempotent=True,
                         json={"gatewayIds": list(gateway_ids), "campaignId": campaign_id})

    async def remove_gateways(self, campaign_id: str, gateway_ids: Sequence[str]) -> None:
        await self._call("PUT", f"{_campaign(campaign_id)}/devices", "remove-gateways", no_content,
                         idempotent=True, json={"gatewayIds": list(gateway_ids), "campaignId": campaign_id})

    async def notify_gateway(self, campaign_id: str, gateway_id: str) -> None:
        await self._gateway_put(campaign_id, gateway_id, "notify")

    async def close_gateway(self, campaign_id: str, gateway_id: str) -> None:
        await self._gateway_put(campaign_id, gateway_id, "close")

    async def _gateway_put(self, campaign_id: str, gateway_id: str, verb: str) -> None:
        await self._call("PUT", f"{_device(campaign_id, gateway_id)}/{verb}", f"{verb}-gateway", no_content,
                         idempotent=True, json={"gatewayId": gateway_id, "campaignId": campaign_id})

    async def assign_gateway_packages(self, campaign_id: str, gateway_id: str, packages: Sequence[str]) -> None:
        body = {"gatewayId": gateway_id, "packages": list(packages), "campaignId": campaign_id}
        await self._call("PUT", f"{_device(campaign_id, gateway_id)}/packages", "set-gateway-packages",
                         no_content, idempotent=True, json=body)

    async def get_gateway_packages(self, campaign_id: str, gateway_id: str) -> tuple[str, ...]:
        return await self._call("GET", f"{_device(campaign_id, gateway_id)}/packages", "get-gateway-packages",
                                parse_packages, idempotent=True)

    async def schedule_download(self, campaign_id: str, gateway_id: str, begin_ms: int, end_ms: int) -> None:
        await self._schedule(campaign_id, gateway_id, "download", begin_ms, end_ms)

    async def schedule_activation(self, campaign_id: str, gateway_id: str, begin_ms: int, end_ms: int) -> None:
        await self._schedule(campaign_id, gateway_id, "activation", begin_ms, end_ms)

    async def schedule_execution(self, campaign_id: str, gateway_id: str, begin_ms: int, end_ms: int) -> None:
        await self._schedule(campaign_id, gateway_id, "execution", begin_ms, end_ms)

    async def _schedule(self, campaign_id: str, gateway_id: str, window: str, begin_ms: int, end_ms: int) -> None:
        await self._call("PUT", f"{_device(campaign_id, gateway_id)}/scheduled-{window}", f"schedule-{window}",
                         no_content, idempotent=True, json={"begin": str(int(begin_ms)), "end": str(int(end_ms))})

    async def get_gateway_state(self, campaign_id: str, gateway_id: str) -> str:
        return await self._call("GET", f"{_device(campaign_id, gateway_id)}/state", "gateway-state", parse_state,
                                idempotent=True)

    async def get_execution_progress(self, campaign_id: str, gateway_id: str) -> tuple[str, ...]:
        return await self._call("GET", f"{_device(campaign_id, gateway_id)}/progress/execution",
                                "execution-progress", parse_execution_progress, idempotent=True)

    async def get_download_progress(self, campaign_id: str, gateway_id: str) -> tuple[PackageProgress, ...]:
        return await self._call("GET", f"{_device(campaign_id, gateway_id)}/progress/download",
                                "download-progress", parse_download_progress, idempotent=True)

    async def get_gateway_status(self, campaign_id: str, gateway_id: str) -> GatewayStatusReport:
        return await self._call("GET", f"{_device(campaign_id, gateway_id)}/status", "gateway-status",
                                parse_gateway_status, idempotent=True)

    async def get_active_campaigns(self, gateway_id: str) -> tuple[str, ...]:
        return await self._call("GET", f"/api/devices/{_id(gateway_id)}/active-campaigns", "active-campaigns",
                                parse_active_campaigns, idempotent=True)

    # --- packages ("programs") -----------------------------------------------------------------------

    async def get_package_info(self, package_id: str) -> ObservedIotPackage:
        return await self._call("GET", f"/api/programs/{_id(package_id)}/file-info", "package-info", parse_package,
                                idempotent=True)

    async def list_packages(self, *, page: int = 0, size: int | None = None,
                            name: str | None = None) -> Page[ObservedIotPackage]:
        params: dict[str, Any] = {"page.number": page, "page.size": size or self._page_size}
        if name is not None:
            params["name"] = name
        return await self._call("GET", "/api/programs", "list-packages", _package_page, idempotent=True,
                                params=params)

    async def delete_package(self, package_id: str) -> None:
        await self._call("DELETE", f"/api/programs/{_id(package_id)}", "delete-package", no_content,
                         idempotent=True)

    async def upload_package_multipart(self, path: Path, *, name: str, description: str = "") -> str:
        """Multipart upload (field ``file`` named ``name``, optional ``description``), read from disk."""
        with path.open("rb") as file:
            return await self._call(
                "POST", "/api/programs/", "upload-package", parse_uuid, idempotent=False,
                files={"file": (name, file, "application/octet-stream")},
                data={"description": description} if description else None,
            )

    async def upload_package_streaming(self, path: Path, *, name: str, description: str = "") -> str:
        """Streaming upload: the body is the file; name and description travel as query parameters."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)}
        params = {"name": name, "description": description}
        return await self._call("POST", "/api/programs/", "upload-package", parse_uuid, idempotent=False,
                                params=params, content=FileChunks(path), headers=headers)

    # --- every page ----------------------------------------------------------------------------------

    async def all_campaigns(self) -> list[CampaignSummary]:
        return await self._all_pages(lambda page: self.list_campaigns(page=page), "list-campaigns")

    async def all_packages(self) -> list[ObservedIotPackage]:
        return await self._all_pages(lambda page: self.list_packages(page=page), "list-packages")

    async def all_gateways(self, campaign_id: str) -> list[ObservedGateway]:
        return await self._all_pages(lambda page: self.list_gateways(campaign_id, page=page), "list-gateways")

    async def _all_pages(self, fetch: Callable[[int], Awaitable[Page[T]]], operation: str) -> list[T]:
        """The first page, then the rest when the reply says how many there are, ``limits.concurrency``
        pages in flight at a time (else one by one until a short page); within ``limits.maxListPages``
        and ``maxListItems`` (a ``ReplyLimitError`` naming the backend when a listing goes, or says it
        goes, over either)."""
        budget = ListingBudget(self.http, operation)
        first = await fetch(0)
        budget.add(len(first.items))
        items = list(first.items)

        def take(page: Page[T]) -> None:
            budget.add(len(page.items))
            items.extend(page.items)

        if first.total_pages is not None:
            budget.claim(first.total_pages, len(first.items))
            await fetch_in_order(fetch, range(1, first.total_pages), self.http.limits.concurrency, take)
            return items
        page, number = first, 0
        while page.items and len(page.items) >= (page.page_size or self._page_size):
            number += 1
            page = await fetch(number)
            take(page)
        return items
