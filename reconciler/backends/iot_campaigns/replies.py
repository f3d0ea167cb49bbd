"""Reading the IoT campaign manager's replies into typed values, tolerantly.

The product writes many numbers as strings (the seed shows ``"totalPages": "string"``) and pages
lists under ``pageInfo`` or ``pageResponse``: both forms are accepted everywhere. A body that is not
the documented shape raises ``MalformedReplyError``; errors come as HTTP statuses, which
``BackendHttp`` translates before any parser runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from reconciler.errors import MalformedReplyError
from reconciler.observed import ObservedGateway, ObservedIotCampaign, ObservedIotPackage

T = TypeVar("T")


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object; an empty body counts as ``{}`` (the seed's ``Response {}``)."""
    if not response.content.strip():
        return {}
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise MalformedReplyError(f"reply is not JSON: {exc}", status=response.status_code) from exc
    if not isinstance(body, dict):
        raise MalformedReplyError("reply is not a JSON object", status=response.status_code)
    return body


def no_content(response: httpx.Response) -> None:
    """For calls whose reply is ``{}``: it must still be readable."""
    json_object(response)


def _field(body: Mapping[str, Any], key: str) -> Any:
    if key not in body:
        raise MalformedReplyError(f"reply lacks {key!r}")
    return body[key]


def _text(value: Any, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise MalformedReplyError(f"{key!r} is not a string: {type(value).__name__}")


def _number(value: Any, key: str) -> int:
    """An integer sent as a JSON number or as a string of digits."""
    if isinstance(value, bool):
        raise MalformedReplyError(f"{key!r} is not a number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MalformedReplyError(f"{key!r} is not a number: {value!r}") from None


def _texts(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedReplyError(f"{key!r} is not a list")
    return tuple(_text(v, key) for v in value)


def _object(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedReplyError(f"{key!r} is not an object")
    return value


# --- single values ---------------------------------------------------------------------------------


def parse_uuid(response: httpx.Response) -> str:
    """``{"uuid": ...}`` (create campaign, edit campaign, upload package)."""
    value = _text(_field(json_object(response), "uuid"), "uuid")
    if not value:
        raise MalformedReplyError("reply has an empty 'uuid'")
    return value


def parse_token(response: httpx.Response) -> str:
    """The bearer token of a login reply: ``accessToken``, ``access_token`` or ``token``."""
    body = json_object(response)
    for key in ("accessToken", "access_token", "token"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    raise MalformedReplyError("login reply holds no token (accessToken, access_token or token)")


def parse_packages(response: httpx.Response) -> tuple[str, ...]:
    """``{"packages": [...]}`` (per-gateway packages)."""
    return _texts(_field(json_object(response), "packages"), "packages")


def parse_state(response: httpx.Response) -> str:
    return _text(_field(json_object(response), "state"), "state")


def parse_execution_progress(response: httpx.Response) -> tuple[str, ...]:
    return _texts(_field(json_object(response), "progress"), "progress")


def parse_active_campaigns(response: httpx.Response) -> tuple[str, ...]:
    return _texts(_field(json_object(response), "campaignId"), "campaignId")


# --- campaigns and packages ------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignSummary:
    """A List Campaigns item; ``packages_known`` is false when the item carried no ``packages``."""

    campaign: ObservedIotCampaign
    packages_known: bool


def campaign_from(item: Mapping[str, Any]) -> CampaignSummary:
    """Get Campaign / a List Campaigns item; ``packages`` nested (``{"packages": [...]}``) or flat."""
    packages = item.get("packages")
    if isinstance(packages, dict):
        packages = packages.get("packages")
    campaign = ObservedIotCampaign(
        id=_text(item.get("id") or item.get("campaignId") or item.get("uuid"), "id"),
        name=_text(item.get("name"), "name"),
        status=_text(item.get("status"), "status"),
        description=_text(item.get("description"), "description"),
        packages=_texts(packages, "packages"),
        creation_time=_text(item.get("creationTime"), "creationTime"),
    )
    if not campaign.id:
        raise MalformedReplyError("campaign without an id")
    return CampaignSummary(campaign, packages is not None)


def parse_campaign(response: httpx.Response) -> ObservedIotCampaign:
    return campaign_from(json_object(response)).campaign


def package_from(item: Mapping[str, Any]) -> ObservedIotPackage:
    package = ObservedIotPackage(
        id=_text(item.get("id") or item.get("uuid"), "id"),
        name=_text(item.get("name"), "name"),
        description=_text(item.get("description"), "description"),
        created_on=_text(item.get("createdOn"), "createdOn"),
    )
    if not package.id:
        raise MalformedReplyError("package without an id")
    return package


def parse_package(response: httpx.Response) -> ObservedIotPackage:
    return package_from(json_object(response))


def gateway_from(item: Mapping[str, Any]) -> ObservedGateway:
    gateway_id = _text(item.get("gatewayId") or item.get("id"), "gatewayId")
    if not gateway_id:
        raise MalformedReplyError("gateway without a gatewayId")
    closed = item.get("closed", False)
    return ObservedGateway(gateway_id, _text(item.get("state"), "state"),
                           closed in (True, "true", "True", "TRUE"))


# --- pages -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list. ``total_pages`` is ``None`` when the reply did not say."""

    items: tuple[T, ...]
    number: int
    total_pages: int | None
    total_elements: int | None
    page_size: int | None


def page_parser(items_key: str, item: Callable[[Mapping[str, Any]], T]) -> Callable[[httpx.Response], Page[T]]:
    """A parser for a paged list under ``items_key`` (or Spring's ``content``), with ``pageInfo`` or
    ``pageResponse``. A bare object with an ``id`` (how the seed shows List Packages) is a page of one."""

    def parse(response: httpx.Response) -> Page[T]:
        body = json_object(response)
        raw = body.get(items_key, body.get("content"))
        if raw is None and "id" in body:
            raw = [body]
        if not isinstance(raw, list):
            raise MalformedReplyError(f"reply lacks the list {items_key!r}")
        info = body.get("pageInfo") or body.get("pageResponse") or {}
        info = _object(info, "pageInfo")
        items = tuple(item(_object(entry, items_key)) for entry in raw)
        return Page(
            items=items,
            number=_number(info.get("page", 0), "page"),
            total_pages=None if info.get("totalPages") is None else _number(info["totalPages"], "totalPages"),
            total_elements=(None if info.get("totalElements") is None
                            else _number(info["totalElements"], "totalElements")),
            page_size=None if info.get("pageSize") is None else _number(info["pageSize"], "pageSize"),
        )

    return parse


# --- reports ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributionListInfo:
    list_id: str | None
    interval_seconds: int | None


def parse_distribution_list(response: httpx.Response) -> DistributionListInfo:
    """Get Campaign Distribution List; nulls or empty strings mean "none set"."""
    body = json_object(response)
    list_id = _text(body.get("distributionListId"), "distributionListId") or None
    interval = body.get("reevaluationIntervalSeconds")
    return DistributionListInfo(list_id, None if interval in (None, "") else _number(interval, "interval"))


@dataclass(frozen=True)
class PackageProgress:
    package_id: str
    progress: int
    total: int


def _packages_progress(value: Any) -> tuple[PackageProgress, ...]:
    body = _object(value, "downloadProgress")
    entries = body.get("packagesProgress") or []
    if not isinstance(entries, list):
        raise MalformedReplyError("'packagesProgress' is not a list")
    return tuple(
        PackageProgress(_text(e.get("id"), "id"), _number(e.get("progress", 0), "progress"),
                        _number(e.get("total", 0), "total"))
        for e in (_object(x, "packagesProgress") for x in entries)
    )


def parse_download_progress(response: httpx.Response) -> tuple[PackageProgress, ...]:
    return _packages_progress(json_object(response))


@dataclass(frozen=True)
class GatewayStatusReport:
    campaign_id: str
    gateway_id: str
    state: str
    timestamp: str
    download: tuple[PackageProgress, ...]
    execution: tuple[str, ...]


def parse_gateway_status(response: httpx.Response) -> GatewayStatusReport:
    body = json_object(response)
    state = body.get("campaignState") or {}
    return GatewayStatusReport(
        campaign_id=_text(body.get("campaignId"), "campaignId"),
        gateway_id=_text(body.get("gatewayId"), "gatewayId"),
        state=_text(_object(state, "campaignState").get("state"), "state"),
        timestamp=_text(body.get("timestamp"), "timestamp"),
        download=_packages_progress(body.get("downloadProgress") or {}),
        execution=_texts(body.get("executionProgress"), "executionProgress"),
    )


@dataclass(frozen=True)
class CampaignStatusReport:
    campaign_id: str
    name: str
    status: str
    description: str
    creation_time: str
    modification_time: str
    total_gateways: int
    total_packages: int
    download_complete: int
    execution_complete: int
    activation_complete: int


def parse_campaign_status(response: httpx.Response) -> CampaignStatusReport:
    body = json_object(response)

    def count(key: str) -> int:
        return _number(body.get(key, 0), key)

    return CampaignStatusReport(
        campaign_id=_text(body.get("campaignId"), "campaignId"),
        name=_text(body.get("name"), "name"),
        status=_text(body.get("status"), "status"),
        description=_text(body.get("description"), "description"),
        creation_time=_text(body.get("creationTime"), "creationTime"),
        modification_time=_text(body.get("modificationTime"), "modificationTime"),
        total_gateways=count("totalNumberOfGateways"),
        total_packages=count("totalNumberOfPackages"),
        download_complete=count("numberOfGatewaysInDownloadCompleteState"),
        execution_complete=count("numberOfGatewaysInExecutionCompleteState"),
        activation_complete=count("numberOfGatewaysInActivationCompleteState"),
    )


@dataclass(frozen=True)
class CampaignCounts:
    approved_not_started: int
    started: int
    stopped: int
    waiting_approval: int
    ready_to_start: int


def parse_campaign_counts(response: httpx.Response) -> CampaignCounts:
    """Get Campaign Count by Status (the product spells it ``aprovedNotStartedCount``)."""
    body = json_object(response)
    approved = body.get("aprovedNotStartedCount", body.get("approvedNotStartedCount", 0))
    return CampaignCounts(
        approved_not_started=_number(approved, "aprovedNotStartedCount"),
        started=_number(body.get("startedCount", 0), "startedCount"),
        stopped=_number(body.get("stoppedCount", 0), "stoppedCount"),
        waiting_approval=_number(body.get("waitingApprovalCount", 0), "waitingApprovalCount"),
        ready_to_start=_number(body.get("noApprovalNeededReadyToStartCount", 0), "noApprovalNeededReadyToStartCount"),
    )
