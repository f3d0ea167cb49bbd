"""The records the IoT campaign manager sandbox keeps (campaigns, gateways in them, programs), its
options, its error type, and their conversion to and from the JSON of ``/_sandbox/state``.

Records are mutable on purpose: they are the simulator's private working state, owned by one event
loop thread, never handed across a boundary (``snapshot()`` copies them into plain JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.model import CallbackKind
from reconciler.sandbox.iot_campaigns.agent import Checkpoint, GatewayState, Span, Window

MAX_DESCRIPTION = 128
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class CampaignStatus(StrEnum):
    CREATED = "CREATED"
    APPROVAL_NEEDED = "APPROVAL_NEEDED"
    APPROVED = "APPROVED"
    STARTED = "STARTED"
    STOPPED = "STOPPED"


class Permission(StrEnum):
    """The permission names of the seed, one per endpoint."""

    CREATE_CAMPAIGN = "Create Campaign"
    EDIT_CAMPAIGN = "Edit Campaign"
    DELETE_CAMPAIGN = "Delete Campaign"
    VIEW_CAMPAIGN = "View Campaign"
    START_CAMPAIGN = "Start Campaign"
    STOP_CAMPAIGN = "Stop Campaign"
    APPROVE_CAMPAIGN = "Approve Campaign"
    SCHEDULE_CAMPAIGN = "Schedule Campaign"
    VIEW_PACKAGE = "View Package"
    DELETE_PACKAGE = "Delete Package"
    CREATE_PACKAGE = "Create Package"


ALL_PERMISSIONS = frozenset(p.value for p in Permission)

_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    500: "INTERNAL_ERROR",
}


class ApiError(Exception):
    """An error reply: ``{"code": ..., "message": ...}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def code(self) -> str:
        return _ERROR_CODES.get(self.status, "ERROR")


@dataclass(frozen=True)
class IotSimOptions:
    """The simulator's settings (see the constructor of ``IotCampaignsSimulator``)."""

    approval_required: bool = False
    gateway_count: int = 10_000
    step_seconds: float = 60.0
    failure_rate: float = 0.0
    token_ttl_s: float = 3600.0
    max_upload_bytes: int = 1 << 30
    destinations: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Program:
    """An uploaded package: only its size and hash are kept, never its bytes."""

    id: str
    name: str
    description: str
    size: int
    sha256: str
    created_by: str
    created_on: float
    upload: str  # "multipart" | "streaming"


@dataclass(frozen=True)
class CallbackRegistration:
    kind: CallbackKind
    destination: str
    tracked_states: tuple[str, ...] = ()


@dataclass(frozen=True)
class DistributionListSetting:
    list_id: str
    interval_s: int | None


@dataclass
class GatewayRun:
    """One gateway in one campaign. ``at`` is a checkpoint, not necessarily the current state."""

    gateway_id: str
    at: Checkpoint
    added_at: float
    closed: bool = False
    packages: list[str] | None = None
    windows: dict[Window, Span] = field(default_factory=dict)
    notifications: int = 0
    version: int = 0  # bumped whenever ``at`` or ``windows`` change, so queued transitions go stale


@dataclass
class Campaign:
    id: str
    name: str
    description: str
    packages: list[str]
    settings: dict[str, str]
    status: CampaignStatus
    created: float
    modified: float
    paused_since: float  # when it last stopped running (its creation time if it never ran)
    gateways: dict[str, GatewayRun] = field(default_factory=dict)
    callbacks: dict[CallbackKind, CallbackRegistration] = field(default_factory=dict)
    distribution_list: DistributionListSetting | None = None
    run_epoch: int = 0  # bumped on every start and stop


def epoch_ms(moment: float) -> str:
    """Epoch milliseconds as the API writes times: a decimal string."""
    return str(int(round(moment * 1000)))


def _span_json(span: Span) -> dict[str, str]:
    return {"begin": epoch_ms(span.begin), "end": epoch_ms(span.end)}


def gateway_json(run: GatewayRun, current: Checkpoint, closed: bool) -> dict[str, Any]:
    return {
        "gatewayId": run.gateway_id,
        "state": current.state.value,
        "stateSince": epoch_ms(current.entered),
        "closed": closed,
        "packages": run.packages,
        "schedules": {w.value: _span_json(s) for w, s in run.windows.items()},
        "notifications": run.notifications,
        "checkpoint": {"state": run.at.state.value, "entered": run.at.entered, "closed": run.closed},
        "addedAt": run.added_at,
    }


def campaign_json(campaign: Campaign, gateways: list[dict[str, Any]]) -> dict[str, Any]:
    dl = campaign.distribution_list
    return {
        "id": campaign.id,
        "name": campaign.name,
        "description": campaign.description,
        "status": campaign.status.value,
        "packages": list(campaign.packages),
        "settings": dict(campaign.settings),
        "created": campaign.created,
        "modified": campaign.modified,
        "pausedSince": campaign.paused_since,
        "runEpoch": campaign.run_epoch,
        "distributionList": None if dl is None else {"id": dl.list_id, "reevaluationIntervalSeconds": dl.interval_s},
        "callbacks": {
            kind.value: {"destination": reg.destination, "trackedStates": list(reg.tracked_states)}
            for kind, reg in campaign.callbacks.items()
        },
        "gateways": gateways,
    }


def program_json(program: Program) -> dict[str, Any]:
    return {
        "id": program.id,
        "name": program.name,
        "description": program.description,
        "size": program.size,
        "sha256": program.sha256,
        "createdBy": program.created_by,
        "createdOn": program.created_on,
        "upload": program.upload,
    }


def program_from_json(data: Mapping[str, Any]) -> Program:
    return Program(
        id=data["id"],
        name=data["name"],
        description=data["description"],
        size=int(data["size"]),
        sha256=data["sha256"],
        created_by=data["createdBy"],
        created_on=float(data["createdOn"]),
        upload=data["upload"],
    )


def _span_from_json(data: Mapping[str, str]) -> Span:
    return Span(int(data["begin"]) / 1000, int(data["end"]) / 1000)


def gateway_from_json(data: Mapping[str, Any]) -> GatewayRun:
    checkpoint = data["checkpoint"]
    return GatewayRun(
        gateway_id=data["gatewayId"],
        at=Checkpoint(GatewayState(checkpoint["state"]), float(checkpoint["entered"])),
        added_at=float(data["addedAt"]),
        closed=bool(checkpoint["closed"]),
        packages=None if data["packages"] is None else list(data["packages"]),
        windows={Window(w): _span_from_json(s) for w, s in data["schedules"].items()},
        notifications=int(data["notifications"]),
    )


def campaign_from_json(data: Mapping[str, Any]) -> Campaign:
    dl = data["distributionList"]
    return Campaign(
        id=data["id"],
        name=data["name"],
        description=data["description"],
        packages=list(data["packages"]),
        settings=dict(data["settings"]),
        status=CampaignStatus(data["status"]),
        created=float(data["created"]),
        modified=float(data["modified"]),
        paused_since=float(data["pausedSince"]),
        run_epoch=int(data["runEpoch"]),
        distribution_list=None if dl is None else DistributionListSetting(dl["id"], dl["reevaluationIntervalSeconds"]),
        callbacks={
            CallbackKind(kind): CallbackRegistration(CallbackKind(kind), reg["destination"], tuple(reg["trackedStates"]))
            for kind, reg in data["callbacks"].items()
        },
        gateways={g["gatewayId"]: gateway_from_json(g) for g in data["gateways"]},
    )
