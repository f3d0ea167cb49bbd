"""Actions: one backend call (or a small batch of them) that the planner decides and a Writer performs.

An action's ``params`` are JSON-able data. A value may be a ``Produced`` reference to what an earlier
action returned (e.g. the id of a campaign created in the same plan); the executor substitutes it
before the Writer sees the action, so Writers only ever see concrete values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.model import ResourceKey


class Verb(StrEnum):
    """Every write the reconciler can issue. The value is what the plan prints."""

    # IoT campaign manager
    UPLOAD_PACKAGE = "upload-package"  # params: file (absolute path), name, description -> {package_id}
    DELETE_PACKAGE = "delete-package"  # params: package_id
    CREATE_CAMPAIGN = "create-campaign"  # params: name, description, packages[ids], settings -> {campaign_id}
    UPDATE_CAMPAIGN = "update-campaign"  # params: campaign_id, name, description, packages[ids], settings
    DELETE_CAMPAIGN = "delete-campaign"  # params: campaign_id
    APPROVE_CAMPAIGN = "approve-campaign"  # params: campaign_id
    START_CAMPAIGN = "start-campaign"  # params: campaign_id
    STOP_CAMPAIGN = "stop-campaign"  # params: campaign_id
    ADD_GATEWAYS = "add-gateways"  # params: campaign_id, gateway_ids[]
    REMOVE_GATEWAYS = "remove-gateways"  # params: campaign_id, gateway_ids[]
    SET_GATEWAY_PACKAGES = "set-gateway-packages"  # params: campaign_id, gateway_id, packages[ids]
    SCHEDULE_GATEWAY = "schedule-gateway"  # params: campaign_id, gateway_id, window, begin_ms, end_ms
    SET_CALLBACK = "set-callback"  # params: campaign_id, callback (CallbackKind value), destination, tracked_states[]
    SET_DISTRIBUTION_LIST = "set-distribution-list"  # params: campaign_id, distribution_list_id, interval
    CLOSE_GATEWAY = "close-gateway"  # params: campaign_id, gateway_id
    ADOPT_CAMPAIGN = "adopt-campaign"  # params: campaign_id, name; recorded in the inventory, no backend call
    # YateOTA
    PAUSE_CAMPAIGN = "pause-campaign"  # params: campaign_id
    RESTART_CAMPAIGN = "restart-campaign"  # params: campaign_id
    RETRY_PARTICIPANT = "retry-participant"  # params: participant_id
    CANCEL_PARTICIPANT = "cancel-participant"  # params: participant_id
    HURRY_PARTICIPANT = "hurry-participant"  # params: participant_id
    # SMS (performed through the send ledger, never a plain Writer call)
    SEND_SMS = "send-sms"
    STOP_SMS_TASK = "stop-sms-task"  # params: task_id


@dataclass(frozen=True)
class Produced:
    """A reference to a value another action of the same plan returns (``action_id``'s ``field``)."""

    action_id: str
    field: str


@dataclass(frozen=True)
class Action:
    """One write. ``id`` is unique and stable within a plan; ``depends_on`` lists action ids that must
    succeed first (if one fails, this one is skipped); ``destructive`` marks what cannot be undone: what
    ``--prune`` and ``--allow-replace`` gate, and gateways removed from a STARTED campaign (shown as such)."""

    id: str
    verb: Verb
    key: ResourceKey
    backend: str
    params: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    reason: str = ""
    destructive: bool = False
