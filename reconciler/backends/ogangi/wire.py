"""Reading Ogangi's XML replies: a hardened parser, the envelope's verdict, and typed results.

Every reply is ``<response><input/><status/><description/><result/></response>`` with HTTP 200.
``defusedxml`` rejects DTD entities and external references (an XML bomb is a malformed reply, not a
hang). Any status but ``OK`` is a failure of that call: ``BAD_SIGNATURE`` is an ``AuthError``,
anything else a ``PermanentBackendError``; both carry the status in ``code`` and the description in
the message. Parsing is tolerant where the docs are vague (``carrierName`` or ``carrier``, missing
optional fields) and strict where a value is needed (a message id, a PIN, a record count).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from reconciler.errors import AuthError, MalformedReplyError, PermanentBackendError

OK = "OK"
BAD_SIGNATURE = "BAD_SIGNATURE"

#: message statuses meaning the platform refused the message when it was sent
REFUSED_STATUSES = frozenset({
    "NOT_SENT", "BAD_FROM", "BAD_TO", "BAD_ENCODING", "BAD_CARRIER/FROM", "NOT_ENOUGH_FUNDS", "BAD_TIMEZONE",
})


@dataclass(frozen=True)
class OgangiMessage:
    """A ``<messages><message>`` of a send reply. ``id`` is opaque (signed 64-bit numbers and UUIDs
    both occur); ``date`` is kept as sent (ISO-8601 with offset)."""

    id: str
    carrier_name: str
    sender: str
    recipient: str
    text: str
    status: str
    status_description: str
    encoding: str
    date: str
    timezone: str
    client_id: str

    @property
    def refused(self) -> bool:
        """The platform took the call but refused this message (bad number, encoding, funds...)."""
        return self.status in REFUSED_STATUSES


@dataclass(frozen=True)
class MOMessage:
    """An incoming message from getMOMessages."""

    text: str
    sender: str
    recipient: str
    encoding: str
    keyword: str
    carrier: str
    send_date: str


@dataclass(frozen=True)
class FiredMessage:
    """What fireMessage echoes back: the MO it injected."""

    instance_id: str
    mobile_number: str
    text: str


def read_result(response: httpx.Response) -> Element:
    """The ``<result>`` of an ``OK`` reply (empty when absent); raises for any other status."""
    root = _parse(response)
    status = _required_text(root, "status")
    description = _optional_text(root, "description")
    if status != OK:
        error = AuthError if status == BAD_SIGNATURE else PermanentBackendError
        raise error(f"{status}: {description}", status=response.status_code, code=status)
    result = root.find("result")
    return result if result is not None else Element("result")


def parse_message(response: httpx.Response) -> OgangiMessage:
    """A send reply that must carry the message (sendSMS)."""
    message = parse_optional_message(response)
    if message is None:
        raise MalformedReplyError("reply has no <messages><message>", status=response.status_code)
    return message


def parse_optional_message(response: httpx.Response) -> OgangiMessage | None:
    """A send reply that may carry the message (sendMT: the docs show an empty result)."""
    node = read_result(response).find("messages/message")
    if node is None:
        return None
    carrier = node.find("carrierName")
    return OgangiMessage(
        id=_required_text(node, "id"),
        carrier_name=(carrier.text or "") if carrier is not None else _optional_text(node, "carrier"),
        sender=_optional_text(node, "from"),
        recipient=_optional_text(node, "to"),
        text=_optional_text(node, "text"),
        status=_required_text(node, "status"),
        status_description=_optional_text(node, "statusDescription"),
        encoding=_optional_text(node, "encoding"),
        date=_optional_text(node, "date"),
        timezone=_optional_text(node, "timezone"),
        client_id=_optional_text(node, "clientId"),
    )


def parse_pin(response: httpx.Response) -> str:
    result = read_result(response)
    return _required_text(result, "PinSMSConfirmation/pin")


def parse_fired(response: httpx.Response) -> FiredMessage:
    result = read_result(response)
    return FiredMessage(
        instance_id=_optional_text(result, "fireMessage/instanceId"),
        mobile_number=_optional_text(result, "fireMessage/mobileNumber"),
        text=_optional_text(result, "fireMessage/text"),
    )


def parse_mo_list(response: httpx.Response) -> tuple[int, list[MOMessage]]:
    """``(records, messages of this page)``; ``records`` counts every match, not just this page."""
    listing = read_result(response).find("MOMessageList")
    if listing is None:
        raise MalformedReplyError("reply has no <MOMessageList>", status=response.status_code)
    records = _required_text(listing, "records")
    if not records.isdigit():
        raise MalformedReplyError(f"records is not a count: {records[:40]!r}", status=response.status_code)
    messages = [
        MOMessage(
            text=_optional_text(node, "text"),
            sender=_optional_text(node, "from"),
            recipient=_optional_text(node, "to"),
            encoding=_optional_text(node, "encoding"),
            keyword=_optional_text(node, "keyword"),
            carrier=_optional_text(node, "carrier"),
            send_date=_optional_text(node, "sendDate"),
        )
        for node in listing.findall("MOMessage")
    ]
    return int(records), messages


def _parse(response: httpx.Response) -> Element:
    try:
        root = fromstring(response.content, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise MalformedReplyError(
            f"unreadable XML: {exc.__class__.__name__}", status=response.status_code
        ) from exc
    if root.tag != "response":
        raise MalformedReplyError(f"unexpected root element <{root.tag[:40]}>", status=response.status_code)
    return root


def _optional_text(parent: Element, path: str) -> str:
    node = parent.find(path)
    return (node.text or "").strip() if node is not None else ""


def _required_text(parent: Element, path: str) -> str:
    value = _optional_text(parent, path)
    if not value:
        raise MalformedReplyError(f"reply has no <{path}>")
    return value
