"""Desired state as declared in ``campaigns.d/``: typed, frozen, free of I/O.

The loader builds these from validated YAML; the planner reads them. Observed state (what the
backends say) lives in ``reconciler.observed``. Every spec keeps ``source`` so a diagnostic raised
after loading can still point at the file, line and column where the resource was declared.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from reconciler.secrets import SecretRef


class Kind(StrEnum):
    BACKEND = "Backend"
    PACKAGE = "Package"
    CAMPAIGN = "Campaign"
    GATEWAY_ASSIGNMENT = "GatewayAssignment"
    SCHEDULE = "Schedule"
    NOTIFICATION = "Notification"


@dataclass(frozen=True, order=True)
class ResourceKey:
    """The identity of a declared resource: its kind and its name (unique per kind)."""

    kind: Kind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value}/{self.name}"


@dataclass(frozen=True)
class SourceRef:
    """Where a resource (or one of its fields) was declared; 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# --- Backend -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendLimits:
    """Client-side limits for one backend: in-flight requests, request rate, per-request timeout, and the
    bounds of what a reply may be (headers, raw body, decoded body, compression ratio) and of a paged
    listing (pages, items)."""

    concurrency: int = 16
    requests_per_second: float | None = None
    timeout_seconds: float = 10.0
    max_retries: int = 4
    max_header_bytes: int = 64 * 1024
    max_header_lines: int = 100
    max_body_bytes: int = 32 * 1024 * 1024
    max_decoded_bytes: int = 64 * 1024 * 1024
    max_compression_ratio: float = 200.0
    max_list_pages: int = 10_000
    max_list_items: int = 100_000


@dataclass(frozen=True)
class TlsSettings:
    """Certificate verification is on unless ``verify`` is false; ``ca_file`` trusts a private CA."""

    verify: bool = True
    ca_file: str | None = None


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend lives and how to authenticate.

    ``type`` is a registered backend type (``reconciler.backends.registry``; the loader checks it).
    ``auth`` holds plain strings (user names, public keys, instance ids) and ``SecretRef`` for secrets;
    which keys exist depends on ``type`` (its descriptor says). ``options`` carries adapter settings for
    behaviour the public docs leave open (e.g. YateOTA's auth header name, Ogangi's Base64 padding).
    """

    name: str
    type: str
    url: str
    auth: Mapping[str, str | SecretRef] = field(default_factory=dict)
    limits: BackendLimits = BackendLimits()
    tls: TlsSettings = TlsSettings()
    options: Mapping[str, object] = field(default_factory=dict)
    source: SourceRef | None = None


# --- Package -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageSpec:
    """A file in the repository, uploaded once per content hash (``sha256`` is computed at load)."""

    name: str
    backend: str
    file: str
    description: str = ""
    sha256: str = ""
    size: int = 0
    source: SourceRef | None = None
    program: str = ""  # an existing program this package is (``reconcile import``): matched by name, never uploaded

    @property
    def upload_name(self) -> str:
        """The program name in the backend: the declared name plus the content hash, so a changed
        file is a new package and an unchanged one is found again without any local state; or the
        existing program's name when ``program`` is declared."""
        return self.program or f"{self.name}-{self.sha256[:12]}"


# --- Campaigns ---------------------------------------------------------------------------------


class IotRunState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class Approval(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class CallbackKind(StrEnum):
    """The five callbacks of the IoT campaign manager; the value is the URL path segment."""

    COMPLETED = "completed"
    WAKE_UP = "wake-up"
    STATE_CHANGE = "state-change"
    EXECUTION_PROGRESS = "execution-progress"
    DOWNLOAD_PROGRESS = "download-progress"


@dataclass(frozen=True)
class Callback:
    destination: str
    tracked_states: tuple[str, ...] = ()


@dataclass(frozen=True)
class DistributionList:
    id: str
    reevaluation_interval_seconds: int | None = None


@dataclass(frozen=True)
class Rollout:
    """Progressive delivery: waves as fractions (0.05 = 5%), thresholds as fractions."""

    waves: tuple[float, ...]
    success_threshold: float = 0.95
    max_failure_rate: float = 0.05


@dataclass(frozen=True)
class IotCampaignSpec:
    """An OTA campaign for IoT gateways (IoT campaign manager)."""

    name: str
    backend: str
    description: str = ""
    packages: tuple[str, ...] = ()
    settings: Mapping[str, str] = field(default_factory=dict)
    state: IotRunState = IotRunState.RUNNING
    approval: Approval = Approval.AUTO
    distribution_list: DistributionList | None = None
    callbacks: Mapping[CallbackKind, Callback] = field(default_factory=dict)
    rollout: Rollout | None = None
    source: SourceRef | None = None


class SimRunState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class SimCampaignSpec:
    """A SIM OTA campaign on YateOTA, created elsewhere and adopted by ``campaign_id``."""

    name: str
    backend: str
    campaign_id: int
    state: SimRunState = SimRunState.RUNNING
    retry_failed_max_attempts: int | None = None
    cancel_msisdns: tuple[str, ...] = ()
    cancel_imsis: tuple[str, ...] = ()
    hurry_msisdns: tuple[str, ...] = ()
    source: SourceRef | None = None


class SmsRunState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"


class UnknownOutcomePolicy(StrEnum):
    SKIP = "skip"
    RESEND = "resend"


@dataclass(frozen=True)
class Recipient:
    """One addressee: the number and the values for ``#param#`` (first one) in the text."""

    number: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecipientSource:
    """Either a CSV file (streamed at send time, never loaded whole) or an inline list."""

    file: str | None = None
    inline: tuple[Recipient, ...] = ()
    count: int = 0  # counted by the loader while it checks the rows


@dataclass(frozen=True)
class SmsCampaignSpec:
    """An SMS campaign sent through Ogangi or an SMS gateway."""

    name: str
    backend: str
    text: str
    recipients: RecipientSource
    sender: str | None = None  # Ogangi "from"
    carrier: str | None = None  # Ogangi carrier; None = let the backend choose
    state: SmsRunState = SmsRunState.ACTIVE
    rate_per_second: float | None = None
    delivery_reports: bool = False
    on_unknown_outcome: UnknownOutcomePolicy = UnknownOutcomePolicy.SKIP
    encoding: str | None = None  # sms-gateway: "unicode" | "gsm-7bit"
    source: SourceRef | None = None


CampaignSpec = IotCampaignSpec | SimCampaignSpec | SmsCampaignSpec


# --- Assignments and schedules ------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayAssignmentSpec:
    """Gateways (with an optional package override) of an IoT campaign, or SIM ports of an SMS one."""

    name: str
    campaign: str
    gateways: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    source: SourceRef | None = None


@dataclass(frozen=True)
class TimeWindow:
    """A half-open period [begin, end) in absolute, time-zone-aware time."""

    begin: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.begin <= moment < self.end


#: the days a weekly window may start on, as written in YAML; the index is Python's ``date.weekday()``
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class RecurringWindow:
    """A window that recurs every day, or on some days of the week, at wall-clock hours in ``timezone``.

    ``start``/``end`` are ``"HH:MM"``; an ``end`` at or before ``start`` is on the next day (the window
    crosses midnight). ``days`` are the weekdays (0 = Monday, as ``date.weekday()``) an occurrence
    *starts* on; empty means every day. The planner turns it into the concrete occurrence that is
    current or next (``reconciler.planner.windows``), which is what the backend gets.
    """

    start: str
    end: str
    timezone: str
    days: tuple[int, ...] = ()

    @property
    def daily(self) -> bool:
        return not self.days

    def describe(self) -> str:
        """``daily 01:00-05:00 Europe/Berlin`` or ``sat,sun 02:00-04:00 America/New_York``."""
        when = "daily" if self.daily else ",".join(WEEKDAYS[d] for d in self.days)
        return f"{when} {self.start}-{self.end} {self.timezone}"


#: a schedule's download / activation / execution window: fixed instants, or recurring wall-clock hours
IotWindow = TimeWindow | RecurringWindow


@dataclass(frozen=True)
class QuietHours:
    """Daily hours (local wall clock in ``timezone``) during which no SMS is sent."""

    start: str  # "HH:MM"
    end: str  # "HH:MM"
    timezone: str


@dataclass(frozen=True)
class ScheduleSpec:
    """When things may happen: IoT windows per gateway (fixed or recurring), an active period, SMS quiet
    hours."""

    name: str
    campaign: str
    assignment: str | None = None
    download: IotWindow | None = None
    activation: IotWindow | None = None
    execution: IotWindow | None = None
    active: TimeWindow | None = None
    quiet_hours: QuietHours | None = None
    source: SourceRef | None = None


# --- Notifications -------------------------------------------------------------------------------


class NotificationEvent(StrEnum):
    """What a Notification can ask to be told about (``reconciler.notify.events`` derives them)."""

    APPLY_FAILED = "apply.failed"  # an action failed, or its outcome is unknown
    PASS_FAILED = "pass.failed"  # a backend could not be read, or the plan has errors
    ROLLOUT_WAVE_ADVANCED = "rollout.wave-advanced"
    ROLLOUT_HALTED = "rollout.halted"  # the failure rate crossed maxFailureRate
    CAMPAIGN_COMPLETED = "campaign.completed"
    DRIFT_CORRECTED = "drift.corrected"  # the daemon put back what was changed outside git
    SMS_UNKNOWN_OUTCOMES = "sms.unknown-outcomes"
    GATEWAYS_STRANDED = "gateways.stranded"


class NotificationFormat(StrEnum):
    JSON = "json"
    SLACK = "slack"


@dataclass(frozen=True)
class NotificationSpec:
    """A destination for events: ``url`` (a reference when the URL itself is a credential, as a Slack
    webhook's is), the body ``format``, the HMAC-SHA256 ``signing_secret`` and which events it wants;
    ``campaigns`` narrows them to some campaigns (empty: all)."""

    name: str
    url: str | SecretRef
    events: frozenset[NotificationEvent]
    format: NotificationFormat = NotificationFormat.JSON
    signing_secret: SecretRef | None = None
    campaigns: frozenset[str] = frozenset()
    timeout_seconds: float = 10.0
    source: SourceRef | None = None

    def wants(self, event: NotificationEvent, campaign: str | None) -> bool:
        """Whether an ``event`` about ``campaign`` (None: about no campaign) goes to this destination."""
        return event in self.events and (campaign is None or not self.campaigns or campaign in self.campaigns)


# --- The whole declared state -------------------------------------------------------------------


@dataclass(frozen=True)
class DesiredState:
    """Everything declared, keyed by name per kind; built only from a fully valid load."""

    backends: Mapping[str, BackendSpec] = field(default_factory=dict)
    packages: Mapping[str, PackageSpec] = field(default_factory=dict)
    campaigns: Mapping[str, CampaignSpec] = field(default_factory=dict)
    assignments: Mapping[str, GatewayAssignmentSpec] = field(default_factory=dict)
    schedules: Mapping[str, ScheduleSpec] = field(default_factory=dict)
    notifications: Mapping[str, NotificationSpec] = field(default_factory=dict)
    root: str = "."  # the repository root that relative file paths are resolved against

    def campaigns_of(self, backend: str) -> list[CampaignSpec]:
        return [c for c in self.campaigns.values() if c.backend == backend]

    def assignments_of(self, campaign: str) -> list[GatewayAssignmentSpec]:
        return [a for a in self.assignments.values() if a.campaign == campaign]

    def schedules_of(self, campaign: str) -> list[ScheduleSpec]:
        return [s for s in self.schedules.values() if s.campaign == campaign]

    def only_backends(self, names: Collection[str]) -> DesiredState:
        """What is declared for these backends alone: a pass over it reads, plans and writes nothing else."""
        campaigns = {n: c for n, c in self.campaigns.items() if c.backend in names}
        return DesiredState(
            backends={n: b for n, b in self.backends.items() if n in names},
            packages={n: p for n, p in self.packages.items() if p.backend in names},
            campaigns=campaigns,
            assignments={n: a for n, a in self.assignments.items() if a.campaign in campaigns},
            schedules={n: s for n, s in self.schedules.items() if s.campaign in campaigns},
            notifications=self.notifications,
            root=self.root,
        )
