"""How Ogangi requests and replies look on the wire, seen from the simulator's side.

The signature covers the path parameters exactly as they were sent (Base64 and percent-encoded
values in their encoded form), so routes match on the raw path and keep that form; values are
decoded only after the signature has been checked. Also here: lenient URL-safe Base64 (padded or
not), the inline search string of getMOMessages, and the XML envelope of every reply.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any
from urllib.parse import unquote
from xml.etree.ElementTree import Element, SubElement, tostring

from starlette.responses import Response
from starlette.routing import Match, Route

from reconciler.sandbox.ogangi.records import MOOrder, MOSearch

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_SEARCH_FIELDS = ("from", "to", "carrier", "keyword", "order")


class RequestRefused(ValueError):
    """A well-signed request the simulator cannot act on; answered as ``ERROR``/``Internal error, ...``."""


class ReplyStatus(StrEnum):
    OK = "OK"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    ERROR = "ERROR"


class RawPathRoute(Route):
    """A route matched against the path as sent (``raw_path``): path parameters keep their
    percent-encoding, and a ``%2F`` inside a value does not split it into two segments."""

    def matches(self, scope: Any) -> tuple[Match, Any]:
        raw_path = scope.get("raw_path")
        if scope["type"] == "http" and raw_path is not None:
            scope = {**scope, "path": raw_path.decode("latin-1"), "root_path": ""}
        return super().matches(scope)


def signature_matches(private_key: str, raw_params: Sequence[str], signature: str) -> bool:
    """HMAC-SHA256 over the raw parameters joined with ``/``, lowercase hex."""
    signed = "/".join(raw_params).encode("utf-8")
    expected = hmac.new(private_key.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def decode_base64_text(raw_segment: str) -> str | None:
    """URL-safe Base64 with or without ``=`` padding to UTF-8 text; ``None`` when undecodable."""
    value = unquote(raw_segment)
    if _BASE64URL.fullmatch(value) is None:
        return None
    unpadded = value.rstrip("=")
    if len(unpadded) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def positive_int(raw_segment: str, what: str) -> int:
    try:
        number = int(unquote(raw_segment))
    except ValueError:
        raise RequestRefused(f"{what} is not a number") from None
    if number < 1:
        raise RequestRefused(f"{what} must be at least 1")
    return number


def parse_search(raw_segment: str) -> MOSearch:
    """``from=a,b&keyword=%5EOGANGI.*&order=desc``: pairs joined by ``&``, values by ``,``,
    each value percent-encoded."""
    values: dict[str, list[str]] = {}
    for pair in raw_segment.split("&"):
        name, sep, joined = pair.partition("=")
        if not sep or name not in _SEARCH_FIELDS:
            raise RequestRefused(f"bad search parameter {unquote(name)!r}")
        values.setdefault(name, []).extend(unquote(value) for value in joined.split(","))
    try:
        keywords = tuple(re.compile(pattern) for pattern in values.get("keyword", []))
    except re.error as exc:
        raise RequestRefused(f"bad keyword expression: {exc}") from None
    orders = values.get("order", [MOOrder.ASC.value])
    if len(orders) != 1 or orders[0] not in {order.value for order in MOOrder}:
        raise RequestRefused("order must be asc or desc")
    return MOSearch(
        senders=frozenset(values.get("from", [])),
        recipients=frozenset(values.get("to", [])),
        carriers=frozenset(values.get("carrier", [])),
        keywords=keywords,
        order=MOOrder(orders[0]),
    )


def element(tag: str, fields: Sequence[tuple[str, str]] = ()) -> Element:
    """``<tag><name>value</name>...</tag>`` with the fields in the given order."""
    parent = Element(tag)
    for name, value in fields:
        SubElement(parent, name).text = value
    return parent


def result_of(child: Element) -> Element:
    """``<result>`` around one element."""
    result = Element("result")
    result.append(child)
    return result


def xml_reply(method: str, status: ReplyStatus, description: str, result: Element | None = None) -> Response:
    """``<response><input/><status/><description/><result/></response>``, always HTTP 200."""
    root = Element("response")
    SubElement(root, "input").text = method
    SubElement(root, "status").text = status.value
    SubElement(root, "description").text = description
    if result is not None:
        root.append(result)
    body = tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type="application/xml")
