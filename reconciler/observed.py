"""Observed state: what the backends report, as typed frozen data.

Readers (one per backend) produce these; the planner compares them with the desired state. Fields
that an API cannot read back (IoT schedules and callbacks) are absent here on purpose: the state
store remembers what was last applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ObservedIotPackage:
    """A program (update package) in the IoT campaign manager."""

    id: str
    name: str
    description: str = ""
    created_on: str = ""


@dataclass(frozen=True)
class ObservedGateway:
    """A gateway in an IoT campaign; ``packages`` is its per-gateway override when it was read."""

    gateway_id: str
    state: str
    closed: bool = False
    packages: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ObservedIotCampaign:
    """An IoT campaign; ``packages`` are package ids; ``status`` one of CREATED, APPROVAL_NEEDED,
    APPROVED, STARTED, STOPPED (other strings are kept as they are)."""

    id: str
    name: str
    status: str
    description: str = ""
    packages: tuple[str, ...] = ()
    gateways: tuple[ObservedGateway, ...] = ()
    distribution_list_id: str | None = None
    distribution_list_interval: int | None = None
    creation_time: str = ""


@dataclass(frozen=True)
class ObservedParticipant:
    """A YateOTA participant (one SIM card in a campaign)."""

    participant_id: int
    campaign_id: int
    state: str
    msisdn: str = ""
    imsi: str = ""
    attempts: int = 0
    error: str = ""


@dataclass(frozen=True)
class ObservedSimCampaign:
    """A YateOTA campaign with its participants and per-state counts."""

    campaign_id: int
    name: str
    state: str  # started | paused | stopped | finished (others kept as they are)
    type: str = ""
    participants: tuple[ObservedParticipant, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedSmsPort:
    """An SMS gateway port and its registration state (e.g. REGISTER_OK, NO_SIM)."""

    port: int
    registered: bool
    state: str = ""


@dataclass(frozen=True)
class BackendObservation:
    """Everything one Reader saw in one pass. ``readable`` false means the backend could not be read
    (``error`` says why) and nothing destructive may be planned against it."""

    backend: str
    readable: bool = True
    error: str = ""
    iot_packages: tuple[ObservedIotPackage, ...] = ()
    iot_campaigns: tuple[ObservedIotCampaign, ...] = ()
    sim_campaigns: tuple[ObservedSimCampaign, ...] = ()
    sms_ports: tuple[ObservedSmsPort, ...] = ()


@dataclass(frozen=True)
class ObservedState:
    """One observation per backend name."""

    backends: Mapping[str, BackendObservation] = field(default_factory=dict)
