"""The typed desired state, built from documents that passed every check.

Nothing here validates: it runs only when the load found no error, so it maps fields one to one
(camelCase YAML to the model's snake_case, percentages to fractions, date-times to aware datetimes,
file paths to paths relative to the repository root).
"""

from __future__ import annotations

from typing import Any, assert_never

from reconciler.backends.descriptor import CampaignFamily
from reconciler.backends.registry import descriptor_for
from reconciler.load.declared import Declared
from reconciler.load.notifications import build_notification
from reconciler.load.rules import Facts, parse_moment, percent
from reconciler.model import (
    WEEKDAYS, Approval, BackendLimits, BackendSpec, Callback, CallbackKind, CampaignSpec, DesiredState,
    DistributionList, GatewayAssignmentSpec, IotCampaignSpec, IotRunState, IotWindow, Kind, PackageSpec, QuietHours,
    Recipient, RecipientSource, RecurringWindow, Rollout, ScheduleSpec, SimCampaignSpec, SimRunState,
    SmsCampaignSpec, SmsRunState, TimeWindow, TlsSettings, UnknownOutcomePolicy,
)
from reconciler.secrets import SecretRef

CALLBACKS = {
    "completed": CallbackKind.COMPLETED,
    "wakeUp": CallbackKind.WAKE_UP,
    "stateChange": CallbackKind.STATE_CHANGE,
    "executionProgress": CallbackKind.EXECUTION_PROGRESS,
    "downloadProgress": CallbackKind.DOWNLOAD_PROGRESS,
}


def build_desired_state(items: list[Declared], facts: Facts, *, root: str) -> DesiredState:
    backends = {i.name: _backend(i, facts) for i in items if i.kind is Kind.BACKEND and i.name}
    types = {name: spec.type for name, spec in backends.items()}
    return DesiredState(
        backends=backends,
        packages={i.name: _package(i, facts) for i in items if i.kind is Kind.PACKAGE and i.name},
        campaigns={i.name: _campaign(i, facts, types) for i in items if i.kind is Kind.CAMPAIGN and i.name},
        assignments={i.name: _assignment(i, facts) for i in items if i.kind is Kind.GATEWAY_ASSIGNMENT and i.name},
        schedules={i.name: _schedule(i) for i in items if i.kind is Kind.SCHEDULE and i.name},
        notifications={i.name: build_notification(i, facts) for i in items if i.kind is Kind.NOTIFICATION and i.name},
        root=root,
    )


#: the ``limits`` fields that bound replies and listings: schema key -> (BackendLimits field, type)
REPLY_LIMITS: dict[str, tuple[str, type]] = {
    "maxHeaderBytes": ("max_header_bytes", int),
    "maxHeaderLines": ("max_header_lines", int),
    "maxBodyBytes": ("max_body_bytes", int),
    "maxDecodedBytes": ("max_decoded_bytes", int),
    "maxCompressionRatio": ("max_compression_ratio", float),
    "maxListPages": ("max_list_pages", int),
    "maxListItems": ("max_list_items", int),
}


def _backend(item: Declared, facts: Facts) -> BackendSpec:
    spec = item.spec
    auth: dict[str, str | SecretRef] = {}
    for key, value in spec.get("auth", {}).items():
        if isinstance(value, dict):
            if "env" in value:
                auth[key] = SecretRef(env=value["env"])
            else:
                auth[key] = SecretRef(file=facts.files[(item, ("spec", "auth", key, "file"))].relative)
        else:
            auth[key] = str(value)
    limits = spec.get("limits", {})
    tls = spec.get("tls", {})
    return BackendSpec(
        name=item.name or "",
        type=spec["type"],
        url=spec["url"],
        auth=auth,
        limits=BackendLimits(
            concurrency=int(limits.get("concurrency", 16)),
            requests_per_second=float(limits["requestsPerSecond"]) if "requestsPerSecond" in limits else None,
            timeout_seconds=float(limits.get("timeoutSeconds", 10.0)),
            max_retries=int(limits.get("maxRetries", 4)),
            **{field: kind(limits[key]) for key, (field, kind) in REPLY_LIMITS.items() if key in limits},
        ),
        tls=TlsSettings(
            verify=tls.get("verify", True),
            ca_file=facts.files[(item, ("spec", "tls", "caFile"))].relative if "caFile" in tls else None,
        ),
        options=dict(spec.get("options", {})),
        source=item.source(),
    )


def _package(item: Declared, facts: Facts) -> PackageSpec:
    spec = item.spec
    found = facts.files[(item, ("spec", "file"))]
    sha256, size = facts.hashes[found.real]
    return PackageSpec(name=item.name or "", backend=spec["backend"], file=found.relative,
                       description=spec.get("description", ""), sha256=sha256, size=size, source=item.source(),
                       program=spec.get("program", ""))


def _campaign(item: Declared, facts: Facts, types: dict[str, str]) -> CampaignSpec:
    """The campaign spec of its backend type's family (``CampaignFamily``): one spec type per family."""
    family = descriptor_for(types[item.spec["backend"]]).family
    if family is CampaignFamily.CREATED:
        return _created_campaign(item)
    if family is CampaignFamily.ADOPTED:
        return _adopted_campaign(item)
    if family is CampaignFamily.SMS:
        return _sms_campaign(item, facts)
    assert_never(family)


def _created_campaign(item: Declared) -> IotCampaignSpec:
    spec = item.spec
    name, backend, source = item.name or "", spec["backend"], item.source()
    listed = spec.get("distributionList")
    rollout = spec.get("rollout")
    return IotCampaignSpec(
        name=name, backend=backend, source=source,
        description=spec.get("description", ""),
        packages=tuple(spec.get("packages", ())),
        settings=dict(spec.get("settings", {})),
        state=IotRunState(spec.get("state", "running")),
        approval=Approval(spec.get("approval", "auto")),
        distribution_list=_distribution_list(listed),
        callbacks={CALLBACKS[key]: _callback(value) for key, value in spec.get("callbacks", {}).items()},
        rollout=Rollout(
            waves=tuple(percent(w) for w in rollout["waves"]),
            success_threshold=percent(rollout.get("successThreshold", "95%")),
            max_failure_rate=percent(rollout.get("maxFailureRate", "5%")),
        ) if rollout else None,
    )


def _adopted_campaign(item: Declared) -> SimCampaignSpec:
    spec = item.spec
    name, backend, source = item.name or "", spec["backend"], item.source()
    participants = spec.get("participants", {})
    return SimCampaignSpec(
        name=name, backend=backend, source=source,
        campaign_id=int(spec["campaignId"]),
        state=SimRunState(spec.get("state", "running")),
        retry_failed_max_attempts=_int_or_none(participants.get("retryFailed", {}).get("maxAttempts")),
        cancel_msisdns=tuple(participants.get("cancel", {}).get("msisdn", ())),
        cancel_imsis=tuple(participants.get("cancel", {}).get("imsi", ())),
        hurry_msisdns=tuple(participants.get("hurry", {}).get("msisdn", ())),
    )


def _sms_campaign(item: Declared, facts: Facts) -> SmsCampaignSpec:
    spec = item.spec
    name, backend, source = item.name or "", spec["backend"], item.source()
    return SmsCampaignSpec(
        name=name, backend=backend, source=source,
        text=spec["text"],
        recipients=_recipients(item, facts),
        sender=spec.get("from"),
        carrier=spec.get("carrier"),
        state=SmsRunState(spec.get("state", "active")),
        rate_per_second=float(spec["rate"]["perSecond"]) if "rate" in spec else None,
        delivery_reports=spec.get("deliveryReports", False),
        on_unknown_outcome=UnknownOutcomePolicy(spec.get("onUnknownOutcome", "skip")),
        encoding=spec.get("encoding"),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _distribution_list(value: dict[str, Any] | None) -> DistributionList | None:
    if not value:
        return None
    return DistributionList(value["id"], _int_or_none(value.get("reevaluationIntervalSeconds")))


def _callback(value: Any) -> Callback:
    if isinstance(value, str):
        return Callback(value)
    return Callback(value["destination"], tuple(value.get("trackedStates", ())))


def _recipients(item: Declared, facts: Facts) -> RecipientSource:
    recipients = item.spec["recipients"]
    if "file" in recipients:
        found = facts.files[(item, ("spec", "recipients", "file"))]
        return RecipientSource(file=found.relative, count=facts.recipient_counts[item])
    inline = tuple(
        Recipient(entry) if isinstance(entry, str) else Recipient(entry["number"], tuple(entry.get("params", ())))
        for entry in recipients["inline"]
    )
    return RecipientSource(inline=inline, count=len(inline))


def _assignment(item: Declared, facts: Facts) -> GatewayAssignmentSpec:
    spec = item.spec
    gateways = tuple(spec.get("gateways", ()))
    if item in facts.gateway_files:
        gateways = tuple(facts.gateway_files[item][0])
    return GatewayAssignmentSpec(name=item.name or "", campaign=spec["campaign"], gateways=gateways,
                                 packages=tuple(spec.get("packages", ())), ports=tuple(int(p) for p in spec.get("ports", ())),
                                 source=item.source())


def _window(value: dict[str, str] | None, begin: str = "begin", end: str = "end") -> TimeWindow | None:
    return TimeWindow(parse_moment(value[begin]), parse_moment(value[end])) if value else None


def _iot_window(value: dict[str, Any] | None) -> IotWindow | None:
    """A fixed window (``begin``/``end``) or a recurring one (``daily`` or ``weekly``, with ``timezone``)."""
    if not value:
        return None
    if "begin" in value:
        return _window(value)
    if "daily" in value:
        start, end = value["daily"].split("-")
        return RecurringWindow(start, end, value["timezone"])
    start, end = value["weekly"]["time"].split("-")
    days = tuple(sorted(WEEKDAYS.index(day) for day in value["weekly"]["days"]))
    return RecurringWindow(start, end, value["timezone"], days)


def _schedule(item: Declared) -> ScheduleSpec:
    spec = item.spec
    quiet = spec.get("quietHours")
    return ScheduleSpec(
        name=item.name or "", campaign=spec["campaign"], assignment=spec.get("assignment"),
        download=_iot_window(spec.get("download")),
        activation=_iot_window(spec.get("activation")),
        execution=_iot_window(spec.get("execution")),
        active=_window(spec.get("active"), "from", "until"),
        quiet_hours=QuietHours(quiet["from"], quiet["to"], quiet["timezone"]) if quiet else None,
        source=item.source(),
    )
