"""What one backend type is, in one place: the registry entry every type-specific question is answered from.

A ``BackendDescriptor`` says which ``Backend.spec.type`` it serves, which campaign family its campaigns belong
to (what the planner decides about), which ``auth`` keys and ``options`` a Backend of the type takes, which
Campaign, GatewayAssignment and Schedule fields apply and which campaign states exist, the largest SMS it
may be given, how to read what it pushes to the daemon, and where its adapter lives. The loader, the
daemon's webhook route and the CLI ask the registry (``reconciler.backends.registry``) for descriptors;
none of them names a backend type.

Each backend package defines ``DESCRIPTOR`` in its ``__init__``, which stays cheap to import: the adapter
(and httpx) is imported only when a backend of the type is connected, so ``reconcile validate`` never loads
one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from reconciler.backends.protocol import MessageBound, SmsFate

if TYPE_CHECKING:
    from reconciler.backends.protocol import BackendAdapter


class CampaignFamily(StrEnum):
    """What the planner decides about a backend's campaigns; each family has one campaign spec type."""

    CREATED = "created"  # campaigns this tool creates on a gateway fleet (``IotCampaignSpec``)
    ADOPTED = "adopted"  # campaigns created elsewhere and adopted by id (``SimCampaignSpec``)
    SMS = "sms"  # SMS sends through the send ledger (``SmsCampaignSpec``)


#: Campaign fields every family has (``backend``, ``state``) and those of each family.
COMMON_CAMPAIGN_FIELDS = frozenset({"backend", "state"})
CREATED_CAMPAIGN_FIELDS = frozenset({"description", "packages", "settings", "approval", "distributionList",
                                     "callbacks", "rollout"})
ADOPTED_CAMPAIGN_FIELDS = frozenset({"campaignId", "participants"})
SMS_CAMPAIGN_FIELDS = frozenset({"text", "recipients", "rate", "deliveryReports", "onUnknownOutcome"})
#: Schedule fields of every family, and the per-gateway windows and SMS quiet hours.
COMMON_SCHEDULE_FIELDS = frozenset({"campaign", "active"})
GATEWAY_WINDOW_FIELDS = frozenset({"assignment", "download", "activation", "execution"})
SMS_SCHEDULE_FIELDS = frozenset({"quietHours"})


class PushError(ValueError):
    """A push body that cannot be understood (the receiver answers 400 with this message)."""


@dataclass(frozen=True)
class PushedFate:
    """One message's fate as a push reports it, by the send ledger's key (our idempotency key)."""

    key: int
    fate: SmsFate
    note: str = ""


@dataclass(frozen=True)
class PushReport:
    """What one push from a backend asks of the daemon, as data: ledger rows to settle (``fates``; None for a
    push that never carries any, such as a callback: the reply then says nothing of settling), whether a pass
    should run now (``wake``: the reason shown, or None), and a few bounded fields for the log event."""

    fates: tuple[PushedFate, ...] | None = None
    wake: str | None = None
    log: Mapping[str, str] = field(default_factory=dict)


#: reads a push body (bytes as received, at most the receiver's size limit); raises ``PushError``
PushParser = Callable[[bytes], PushReport]


@dataclass(frozen=True)
class BackendDescriptor:
    """Everything type-specific about one backend type (see the module docstring).

    - ``type``: the value of ``Backend.spec.type``; ``family``: what its campaigns are.
    - ``title``: the product, for people (``IoT campaigns``); ``campaign_label``: what its campaigns are,
      for people (``OTA (IoT)``).
    - ``adapter``: returns the adapter (``BackendAdapter``), importing it on first use.
    - ``auth``: the ``auth`` keys a Backend of this type must have (and the only ones it may have).
    - ``options``: the ``options`` keys that apply.
    - ``campaign_fields``: the Campaign ``spec`` fields that apply (``backend`` and ``state`` always do);
      ``campaign_required``: those a campaign must have; ``campaign_states``: its ``state`` values, the
      first being the default.
    - ``packages``: Packages may name a backend of this type (its campaigns take them).
    - ``assignment_fields``: the GatewayAssignment fields that apply (empty: its campaigns take none);
      ``assignment_needs``: an assignment must have one of these.
    - ``schedule_fields``: the Schedule fields that apply (``campaign`` and ``active`` always do).
    - ``message_bound``: SMS backends: the largest message one recipient may get (checked at load time).
    - ``push``: reads what the backend POSTs to ``/webhooks/<type>/<token>`` (None: it pushes nothing);
      ``push_paths``: further path segments that reach the same receiver (URLs already handed out).
    - ``schema``: JSON Schema fragments of ``auth`` keys and ``options`` the Backend schema file lacks
      (``{"auth": {key: fragment}, "options": {key: fragment}}``): a plug-in's own settings.
    """

    type: str
    family: CampaignFamily
    adapter: Callable[[], BackendAdapter]
    auth: tuple[str, ...]
    title: str = ""
    campaign_label: str = ""
    options: frozenset[str] = frozenset()
    campaign_fields: frozenset[str] = frozenset()
    campaign_required: tuple[str, ...] = ()
    campaign_states: tuple[str, ...] = ()
    packages: bool = False
    assignment_fields: frozenset[str] = frozenset()
    assignment_needs: tuple[str, ...] = ()
    schedule_fields: frozenset[str] = frozenset()
    message_bound: MessageBound | None = None
    push: PushParser | None = None
    push_paths: tuple[str, ...] = ()
    schema: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.campaign_states:
            raise ValueError(f"backend type {self.type!r}: campaign_states must name at least the default state")

    def takes_campaign_field(self, name: str) -> bool:
        return name in COMMON_CAMPAIGN_FIELDS or name in self.campaign_fields

    def takes_schedule_field(self, name: str) -> bool:
        return name in COMMON_SCHEDULE_FIELDS or name in self.schedule_fields


def module_attribute(module: str, name: str) -> Callable[[], Any]:
    """A loader of ``module.name`` that imports ``module`` only when first called (for ``adapter``)."""

    def load() -> Any:
        return getattr(importlib.import_module(module), name)

    return load


def lazy_push(module: str, name: str) -> PushParser:
    """A ``PushParser`` that imports ``module`` (which may import httpx) only when a push arrives."""

    def parse(body: bytes) -> PushReport:
        parser: PushParser = getattr(importlib.import_module(module), name)
        return parser(body)

    return parse
