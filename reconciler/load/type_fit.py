"""Which fields apply to which backend type, and the check that a resource's fields fit its backend.

The schemas accept the union of all fields (a Campaign's backend is named, not embedded, so its type
is only known across documents); these tables say, per backend type, what applies, what is required
and which run states exist. Each field's schema description names the same types (a test keeps the
two in step).
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.load.declared import Declared, Report
from reconciler.model import BackendType

IOT, YATE, OGANGI, GATEWAY = BackendType.IOT_CAMPAIGNS, BackendType.YATEOTA, BackendType.OGANGI, BackendType.SMS_GATEWAY
ALL = frozenset(BackendType)
SMS = frozenset({OGANGI, GATEWAY})

BACKEND_AUTH: Mapping[BackendType, tuple[str, ...]] = {
    YATE: ("secret",),
    IOT: ("username", "password"),
    OGANGI: ("instanceId", "publicKey", "privateKey"),
    GATEWAY: ("username", "password"),
}
BACKEND_OPTIONS: Mapping[str, frozenset[BackendType]] = {
    "authHeader": frozenset({YATE}),
    "pageSize": frozenset({YATE, IOT}),
    "path": frozenset({YATE}),
    "tokenPath": frozenset({IOT}),
    "base64Padding": frozenset({OGANGI}),
    "carrier": frozenset({OGANGI}),
    "method": frozenset({OGANGI}),
    "authScheme": frozenset({GATEWAY}),
    "approvalRequired": frozenset({IOT}),
    "uploadMode": frozenset({IOT}),
    "inFlight": frozenset({OGANGI, GATEWAY}),
}
CAMPAIGN_FIELDS: Mapping[str, frozenset[BackendType]] = {
    "backend": ALL,
    "state": ALL,
    "description": frozenset({IOT}),
    "packages": frozenset({IOT}),
    "settings": frozenset({IOT}),
    "approval": frozenset({IOT}),
    "distributionList": frozenset({IOT}),
    "callbacks": frozenset({IOT}),
    "rollout": frozenset({IOT}),
    "campaignId": frozenset({YATE}),
    "participants": frozenset({YATE}),
    "text": SMS,
    "recipients": SMS,
    "rate": SMS,
    "deliveryReports": SMS,
    "onUnknownOutcome": SMS,
    "from": frozenset({OGANGI}),
    "carrier": frozenset({OGANGI}),
    "encoding": frozenset({GATEWAY}),
}
CAMPAIGN_REQUIRED: Mapping[BackendType, tuple[str, ...]] = {
    IOT: (),
    YATE: ("campaignId",),
    OGANGI: ("text", "recipients", "from"),
    GATEWAY: ("text", "recipients"),
}
CAMPAIGN_STATES: Mapping[BackendType, tuple[str, ...]] = {
    IOT: ("running", "stopped"),
    YATE: ("running", "paused", "stopped"),
    OGANGI: ("active", "paused", "stopped"),
    GATEWAY: ("active", "paused", "stopped"),
}
ASSIGNMENT_FIELDS: Mapping[str, frozenset[BackendType]] = {
    "campaign": frozenset({IOT, GATEWAY}),
    "gateways": frozenset({IOT}),
    "gatewaysFile": frozenset({IOT}),
    "packages": frozenset({IOT}),
    "ports": frozenset({GATEWAY}),
}
SCHEDULE_FIELDS: Mapping[str, frozenset[BackendType]] = {
    "campaign": ALL,
    "assignment": frozenset({IOT}),
    "download": frozenset({IOT}),
    "activation": frozenset({IOT}),
    "execution": frozenset({IOT}),
    "active": ALL,
    "quietHours": SMS,
}


def types_text(types: frozenset[BackendType]) -> str:
    ordered = [t.value for t in BackendType if t in types]
    return ordered[0] if len(ordered) == 1 else ", ".join(ordered[:-1]) + " and " + ordered[-1]


def check_backend_fit(item: Declared, kind: BackendType, report: Report) -> None:
    """A Backend's ``auth`` keys and ``options`` must be those of its type."""
    wanted = BACKEND_AUTH[kind]
    auth = item.spec.get("auth")
    if isinstance(auth, dict) and item.usable("spec", "type"):
        for key in auth:
            if key not in wanted and item.usable("spec", "auth", key):
                report.error(item, ("spec", "auth", key), f"auth key `{key}` does not apply to {kind.value} backends; "
                             f"expected: {', '.join(wanted)}", at_key=True)
        for key in wanted:
            if key not in auth and item.usable("spec", "auth"):
                report.error(item, ("spec", "auth"), f"spec.auth: missing `{key}`, required for {kind.value} backends "
                             f"(which take {', '.join(wanted)})", at_key=True)
    options = item.spec.get("options")
    if isinstance(options, dict):
        for key in options:
            types = BACKEND_OPTIONS.get(key)
            if types is not None and kind not in types and item.usable("spec", "options", key):
                report.error(item, ("spec", "options", key), f"option `{key}` applies to {types_text(types)} "
                             f"backends; this backend is of type {kind.value}", at_key=True)


def check_fields_fit(item: Declared, table: Mapping[str, frozenset[BackendType]], kind: BackendType,
                     backend: str, noun: str, report: Report) -> None:
    """Each field of ``item.spec`` must apply to the backend type ``kind``."""
    for key in item.spec:
        types = table.get(key)
        if types is not None and kind not in types and item.usable("spec", key):
            report.error(item, ("spec", key), f"`{key}` applies to {types_text(types)} {noun}; backend `{backend}` "
                         f"is of type {kind.value}", at_key=True)


def check_campaign_fit(item: Declared, kind: BackendType, backend: str, report: Report) -> None:
    check_fields_fit(item, CAMPAIGN_FIELDS, kind, backend, "campaigns", report)
    spec = item.spec
    for key in CAMPAIGN_REQUIRED[kind]:
        if key not in spec and item.usable("spec", key):
            report.error(item, ("spec",), f"spec: missing `{key}`, required for {kind.value} campaigns (backend "
                         f"`{backend}` is of type {kind.value})", at_key=True)
    state = item.get("spec", "state")
    if isinstance(state, str) and state not in CAMPAIGN_STATES[kind]:
        report.error(item, ("spec", "state"), f"spec.state: `{state}` is not a state of {kind.value} campaigns; "
                     f"expected one of: {', '.join(CAMPAIGN_STATES[kind])}")
