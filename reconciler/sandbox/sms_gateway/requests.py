"""Validation of the SMS gateway simulator's request bodies and query strings into typed requests.

The gateway answers every problem with HTTP 200 and a code in the body (``error_code`` 400 for a bad
format, 413 for too many numbers or too long a text); this module decides which code a request earns,
so the endpoints in ``sms_gateway.py`` only deal with valid requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.sandbox.sms_gateway.store import MessageFilter
from reconciler.sandbox.sms_gateway.text import Encoding, parse_time

MAX_SEND_NUMBERS = 128
MAX_QUERY_NUMBERS = 32
MAX_TEXT_BYTES = 1500
MAX_NUMBER_BYTES = 24
HIGHEST_PORT = 31
PORT_INFO_FIELDS = ("type", "imei", "imsi", "iccid", "smsc", "reg")


class GatewayRequestError(Exception):
    """A request the gateway refuses with ``error_code`` (and a short ``reason``, ours)."""

    def __init__(self, error_code: int, reason: str) -> None:
        super().__init__(reason)
        self.error_code = error_code
        self.reason = reason


class PortAction(StrEnum):
    """The ``action`` values of ``set_port_info``."""

    SLOT = "slot"
    RESET = "reset"
    POWER = "power"
    IMEI = "imei"


@dataclass(frozen=True)
class SendParam:
    number: str
    text_param: tuple[str, ...] = ()
    user_id: int | None = None


@dataclass(frozen=True)
class SendRequest:
    text: str
    params: tuple[SendParam, ...]
    ports: tuple[int, ...] | None = None
    encoding: Encoding | None = None
    status_report: bool = False


@dataclass(frozen=True)
class PortInfoRequest:
    ports: tuple[int, ...] | None
    fields: tuple[str, ...]


@dataclass(frozen=True)
class PortChange:
    port: int
    action: PortAction
    param: str


def _bad(reason: str) -> GatewayRequestError:
    return GatewayRequestError(400, reason)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(body: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(_is_int(item) for item in value):
        raise _bad(f"{key} must be an array of integers")
    return tuple(value)


def _number(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or len(value.encode("utf-8")) > MAX_NUMBER_BYTES:
        raise _bad(f"{where} must be a string of 1 to {MAX_NUMBER_BYTES} bytes")
    return value


def _ports(value: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if value is not None and not all(0 <= port <= HIGHEST_PORT for port in value):
        raise _bad(f"ports range from 0 to {HIGHEST_PORT}")
    return value


def parse_send_request(body: object) -> SendRequest:
    """``POST /api/send_sms``: 413 before 400, as a gateway counts before it reads each entry."""
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    text, params = body.get("text"), body.get("param")
    if not isinstance(text, str):
        raise _bad("text must be a string")
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise GatewayRequestError(413, f"text is longer than {MAX_TEXT_BYTES} bytes")
    if not isinstance(params, list) or not params:
        raise _bad("param must be a non-empty array")
    if len(params) > MAX_SEND_NUMBERS:
        raise GatewayRequestError(413, f"more than {MAX_SEND_NUMBERS} numbers")
    encoding = body.get("encoding")
    if encoding is not None and encoding not in {e.value for e in Encoding}:
        raise _bad("encoding must be unicode or gsm-7bit")
    report = body.get("request_status_report", False)
    if not isinstance(report, bool):
        raise _bad("request_status_report must be a boolean")
    return SendRequest(
        text=text,
        params=tuple(_send_param(item, position) for position, item in enumerate(params)),
        ports=_ports(_int_list(body, "port")),
        encoding=None if encoding is None else Encoding(encoding),
        status_report=report,
    )


def _send_param(item: object, position: int) -> SendParam:
    if not isinstance(item, dict):
        raise _bad(f"param[{position}] must be an object")
    text_param = item.get("text_param", [])
    if not isinstance(text_param, list) or not all(isinstance(value, str) for value in text_param):
        raise _bad(f"param[{position}].text_param must be an array of strings")
    user_id = item.get("user_id")
    if user_id is not None and not _is_int(user_id):
        raise _bad(f"param[{position}].user_id must be an integer")
    return SendParam(_number(item.get("number"), f"param[{position}].number"), tuple(text_param), user_id)


def parse_message_filter(body: object, *, with_user_id: bool) -> MessageFilter:
    """The body of ``query_sms_result`` (``with_user_id``) or ``query_sms_deliver_status``."""
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    numbers = body.get("number")
    if numbers is not None and not isinstance(numbers, list):
        raise _bad("number must be an array of strings")
    user_ids = _int_list(body, "user_id") if with_user_id else None
    if len(numbers or ()) > MAX_QUERY_NUMBERS or len(user_ids or ()) > MAX_QUERY_NUMBERS:
        raise GatewayRequestError(413, f"more than {MAX_QUERY_NUMBERS} numbers or user ids")
    ports = _ports(_int_list(body, "port"))
    return MessageFilter(
        numbers=None if numbers is None else frozenset(_number(n, "number[]") for n in numbers),
        ports=None if ports is None else frozenset(ports),
        user_ids=None if user_ids is None else frozenset(user_ids),
        time_after=_time(body, "time_after"),
        time_before=_time(body, "time_before"),
    )


def _time(body: Mapping[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        raise _bad(f'{key} must look like "YYYY-MM-DD HH:MM:SS"') from None


def parse_task_id(query: Mapping[str, str]) -> int:
    """``GET /api/stop_sms?task_id=N``."""
    try:
        return int(query["task_id"])
    except (KeyError, ValueError):
        raise _bad("task_id must be an integer") from None


def parse_unread_only(query: Mapping[str, str]) -> bool:
    """``GET /api/query_incoming_sms?flag=unread|all`` (default all)."""
    flag = query.get("flag", "all")
    if flag not in ("all", "unread"):
        raise _bad("flag must be unread or all")
    return flag == "unread"


def _port_list(value: str) -> tuple[int, ...]:
    try:
        return _ports(tuple(int(part) for part in value.split(",") if part.strip())) or ()
    except ValueError:
        raise _bad("port must be a comma-separated list of integers") from None


def parse_port_info_request(query: Mapping[str, str]) -> PortInfoRequest:
    """``GET /api/get_port_info?port=0,1&info_type=imsi,reg`` (both optional: every port, every field)."""
    fields = tuple(part for part in query.get("info_type", ",".join(PORT_INFO_FIELDS)).split(",") if part)
    unknown = sorted(set(fields) - set(PORT_INFO_FIELDS))
    if unknown:
        raise _bad(f"unknown info_type {', '.join(unknown)}; known: {', '.join(PORT_INFO_FIELDS)}")
    return PortInfoRequest(ports=_port_list(query["port"]) if "port" in query else None, fields=fields)


def parse_port_change(query: Mapping[str, str]) -> PortChange:
    """``GET /api/set_port_info?port=N&action=slot|reset|power|imei&param=...``."""
    ports = _port_list(query.get("port", ""))
    if len(ports) != 1:
        raise _bad("port must name exactly one port")
    try:
        action = PortAction(query.get("action", ""))
    except ValueError:
        raise _bad("action must be slot, reset, power or imei") from None
    param = query.get("param", "")
    valid = {
        PortAction.SLOT: param in ("1", "2", "3", "4"),
        PortAction.RESET: True,
        PortAction.POWER: param in ("on", "off"),
        PortAction.IMEI: param.isdigit() and len(param) == 15,
    }
    if not valid[action]:
        raise _bad(f"param {param!r} is not valid for action {action.value}")
    return PortChange(port=ports[0], action=action, param=param)
