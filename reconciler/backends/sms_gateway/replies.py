"""Typed data of the SMS gateway API (seed 003) and the tolerant parsing of what the gateway sends:
query replies and the pushes it POSTs to us.

Shared by replies and pushes because both carry the same items. Parsing is tolerant where real
gateways are sloppy (numbers as strings, stray spaces in values such as ``" 10086"``, line breaks
inside timestamps, a missing ``user_id``) and strict where a mistake would mislead us: a missing or
misspelt key, an unknown status, a non-integer port.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

T = TypeVar("T")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIME_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


class ItemFormatError(ValueError):
    """One item of a reply or push does not have the documented shape (the message says where)."""


class GatewayPushError(ValueError):
    """A payload POSTed to our push receiver is not one of the gateway's three push forms."""


class SmsStatus(StrEnum):
    SENDING = "SENDING"
    SENT_OK = "SENT_OK"
    FAILED = "FAILED"
    DELIVERED = "DELIVERED"


@dataclass(frozen=True)
class OutgoingSms:
    """One recipient of a ``send_sms``: ``user_id`` is our idempotency key, ``text_param`` fills
    ``#param#`` in the text."""

    number: str
    user_id: int
    text_param: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendReceipt:
    """The gateway accepted a batch as task ``task_id``; ``sms_in_queue`` is its whole queue."""

    task_id: int
    sn: str
    sms_in_queue: int


@dataclass(frozen=True)
class SmsResult:
    """The sending state of one message. ``ref_id`` is ``None`` while the message is still queued."""

    port: int
    number: str
    user_id: int | None
    time: datetime
    status: SmsStatus
    count: int
    succ_count: int
    ref_id: int | None
    imsi: str


@dataclass(frozen=True)
class DeliverStatus:
    """A delivery report: ``status_code`` 0 delivered, 32-63 temporary failure, 64-255 permanent."""

    port: int
    number: str
    time: datetime
    ref_id: int
    status_code: int
    imsi: str

    @property
    def delivered(self) -> bool:
        return self.status_code == 0

    @property
    def permanent_failure(self) -> bool:
        return self.status_code >= 64


@dataclass(frozen=True)
class IncomingSms:
    incoming_sms_id: int
    port: int
    number: str
    smsc: str
    timestamp: datetime
    text: str
    imsi: str


@dataclass(frozen=True)
class PortInfo:
    """One SIM port; ``reg`` as the gateway spells it (``REGISTER_OK``, ``NO_SIM``, ...)."""

    port: int
    reg: str
    type: str = ""
    imei: str = ""
    imsi: str = ""
    iccid: str = ""
    smsc: str = ""

    @property
    def registered(self) -> bool:
        return self.reg == "REGISTER_OK"


class PushKind(StrEnum):
    RESULTS = "results"
    DELIVER_STATUS = "deliver_status"
    INCOMING = "incoming"


@dataclass(frozen=True)
class GatewayPush:
    """One push; only the tuple that matches ``kind`` is filled."""

    kind: PushKind
    sn: str
    results: tuple[SmsResult, ...] = ()
    deliver_statuses: tuple[DeliverStatus, ...] = ()
    incoming: tuple[IncomingSms, ...] = ()


# --- fields ----------------------------------------------------------------------------------------


def _field(item: Mapping[str, Any], key: str) -> Any:
    if key not in item:
        raise ItemFormatError(f"missing key {key!r} (keys: {', '.join(sorted(map(str, item)))})")
    return item[key]


def _int(item: Mapping[str, Any], key: str) -> int:
    value = _field(item, key)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ItemFormatError(f"{key} must be an integer, not {value!r}")
    return value


def _optional_int(item: Mapping[str, Any], key: str) -> int | None:
    """A key that may be absent or null (``user_id``: the seed's push example has none)."""
    return None if item.get(key) is None else _int(item, key)


def _nullable_int(item: Mapping[str, Any], key: str) -> int | None:
    """A key that must be present but may be null (``ref_id`` of a message not sent yet)."""
    return None if _field(item, key) is None else _int(item, key)


def _text(item: Mapping[str, Any], key: str) -> str:
    value = _field(item, key)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ItemFormatError(f"{key} must be a string, not {value!r}")
    return str(value).strip()


def _time(item: Mapping[str, Any], key: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` in the gateway's clock, any run of whitespace as the separator. (Checked
    by shape, then read by ``fromisoformat``: ``strptime`` cost more than the rest of a reply together.)"""
    value = " ".join(_text(item, key).split())
    try:
        if TIME_SHAPE.fullmatch(value):
            return datetime.fromisoformat(value)
    except ValueError:
        pass
    raise ItemFormatError(f'{key} must look like "YYYY-MM-DD HH:MM:SS", not {value!r}')


def format_time(moment: datetime) -> str:
    """A query bound as the gateway expects it."""
    return moment.strftime(TIME_FORMAT)


# --- items -----------------------------------------------------------------------------------------


def parse_sms_result(item: Mapping[str, Any]) -> SmsResult:
    status = _text(item, "status")
    try:
        parsed_status = SmsStatus(status)
    except ValueError:
        raise ItemFormatError(f"unknown status {status!r}") from None
    return SmsResult(
        port=_int(item, "port"), number=_text(item, "number"), user_id=_optional_int(item, "user_id"),
        time=_time(item, "time"), status=parsed_status, count=_int(item, "count"),
        succ_count=_int(item, "succ_count"), ref_id=_nullable_int(item, "ref_id"), imsi=_text(item, "imsi"),
    )


def parse_deliver_status(item: Mapping[str, Any]) -> DeliverStatus:
    return DeliverStatus(
        port=_int(item, "port"), number=_text(item, "number"), time=_time(item, "time"),
        ref_id=_int(item, "ref_id"), status_code=_int(item, "status_code"), imsi=_text(item, "imsi"),
    )


def parse_incoming_sms(item: Mapping[str, Any]) -> IncomingSms:
    return IncomingSms(
        incoming_sms_id=_int(item, "incoming_sms_id"), port=_int(item, "port"),
        number=_text(item, "number"), smsc=_text(item, "smsc"), timestamp=_time(item, "timestamp"),
        text=str(_field(item, "text")), imsi=_text(item, "imsi"),
    )


def parse_port_info(item: Mapping[str, Any]) -> PortInfo:
    optional = {key: _text(item, key) for key in ("type", "imei", "imsi", "iccid", "smsc") if key in item}
    return PortInfo(port=_int(item, "port"), reg=_text(item, "reg"), **optional)


def parse_items(items: object, parse: Callable[[Mapping[str, Any]], T], where: str) -> list[T]:
    """Parse a JSON array with ``parse``; ``ItemFormatError`` names the array and the index."""
    if not isinstance(items, list):
        raise ItemFormatError(f"{where} must be an array")
    parsed = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ItemFormatError(f"{where}[{index}] must be an object")
        try:
            parsed.append(parse(item))
        except ItemFormatError as exc:
            raise ItemFormatError(f"{where}[{index}]: {exc}") from None
    return parsed


# --- pushes ----------------------------------------------------------------------------------------

def _results_push(sn: str, items: object) -> GatewayPush:
    return GatewayPush(PushKind.RESULTS, sn, results=tuple(parse_items(items, parse_sms_result, "sms_result")))


def _deliver_status_push(sn: str, items: object) -> GatewayPush:
    statuses = tuple(parse_items(items, parse_deliver_status, "sms_deliver_status"))
    return GatewayPush(PushKind.DELIVER_STATUS, sn, deliver_statuses=statuses)


def _incoming_push(sn: str, items: object) -> GatewayPush:
    return GatewayPush(PushKind.INCOMING, sn, incoming=tuple(parse_items(items, parse_incoming_sms, "sms")))


#: the key that tells a push's kind, and how to read that kind
_PUSH_FORMS: Mapping[str, Callable[[str, object], GatewayPush]] = MappingProxyType({
    "sms_result": _results_push,
    "sms_deliver_status": _deliver_status_push,
    "sms": _incoming_push,
})


def parse_push(payload: Mapping[str, Any]) -> GatewayPush:
    """One of ``{"sn", "sms_result": [...]}``, ``{"sn", "sms_deliver_status": [...]}`` or
    ``{"sn", "sms": [...]}``; anything else raises ``GatewayPushError`` saying what is wrong."""
    if not isinstance(payload, Mapping):
        raise GatewayPushError("a gateway push must be a JSON object")
    forms = [key for key in _PUSH_FORMS if key in payload]
    if len(forms) != 1:
        raise GatewayPushError(
            "a gateway push carries exactly one of sms_result, sms_deliver_status, sms; "
            f"this one has keys: {', '.join(sorted(map(str, payload))) or 'none'}"
        )
    try:
        return _PUSH_FORMS[forms[0]](_text(payload, "sn"), payload[forms[0]])
    except ItemFormatError as exc:
        raise GatewayPushError(f"gateway push: {exc}") from None
