"""What the Ogangi simulator remembers: every message it accepted and every MO (incoming) message.

Records are frozen; a sent message's status is a pure function of its acceptance time, its planned
fate and simulated time, so ``advance(now)`` only has to remember ``now`` (no per-request sweep over
a million messages) and a snapshot always shows the status as of the last request.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

#: the short code MO messages are addressed to, and the carrier chosen when a send says ``null``
SHORT_CODE = "19893143924"
DEFAULT_CARRIER = "Movistar"
#: the ``clientId`` of every sent message (the account that sent it)
CLIENT_ID = "sandbox-client"
ENCODING = "UTF-8"

_MOBILE_NUMBER = re.compile(r"[0-9]{6,15}")


class MessageStatus(StrEnum):
    """The message statuses this simulator produces (a subset of the product's list)."""

    SENT_TO_CARRIER = "SENT_TO_CARRIER"
    DELIVERED_TO_CARRIER = "DELIVERED_TO_CARRIER"
    DELIVERED_TO_DEVICE = "DELIVERED_TO_DEVICE"
    UNDELIVERED = "UNDELIVERED"
    BAD_TO = "BAD_TO"
    BAD_ENCODING = "BAD_ENCODING"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    MessageStatus.SENT_TO_CARRIER: "Sent to Carrier",
    MessageStatus.DELIVERED_TO_CARRIER: "Delivered to Carrier",
    MessageStatus.DELIVERED_TO_DEVICE: "Delivered to Device",
    MessageStatus.UNDELIVERED: "Undelivered",
    MessageStatus.BAD_TO: "Bad destination number",
    MessageStatus.BAD_ENCODING: "Bad encoding",
}

#: fates decided at acceptance: the message never moves on
REFUSED = frozenset({MessageStatus.BAD_TO, MessageStatus.BAD_ENCODING})


class IdStyle(StrEnum):
    """How message ids look: signed 64-bit numbers (as in the docs' example) or UUIDs."""

    INT64 = "int64"
    UUID = "uuid"


def new_message_id(rng: random.Random, style: IdStyle) -> str:
    match style:
        case IdStyle.INT64:
            return str(rng.randrange(-(2**63), 2**63))
        case IdStyle.UUID:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def is_mobile_number(number: str) -> bool:
    """6 to 15 digits, nothing else."""
    return _MOBILE_NUMBER.fullmatch(number) is not None


def iso_date(epoch: float, zone: ZoneInfo) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSSZZ``, e.g. ``2013-09-17T10:13:59.176-04:30``."""
    return datetime.fromtimestamp(epoch, zone).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class MessageTiming:
    """Seconds after acceptance at which a message reaches the carrier, then its final state."""

    carrier_delay_s: float
    device_delay_s: float


@dataclass(frozen=True)
class SentMessage:
    """A message accepted by sendSMS, sendMT or sendSMSPinMobileNumberConfirm.

    ``fate`` is its final status, decided (seeded) when it was accepted.
    """

    id: str
    method: str
    to: str
    sender: str
    carrier: str
    text: str
    accepted_at: float
    fate: MessageStatus
    flags: str | None = None
    pin: str | None = None

    def status_at(self, now: float, timing: MessageTiming) -> MessageStatus:
        if self.fate in REFUSED:
            return self.fate
        age = now - self.accepted_at
        if age >= timing.device_delay_s:
            return self.fate
        if age >= timing.carrier_delay_s:
            return MessageStatus.DELIVERED_TO_CARRIER
        return MessageStatus.SENT_TO_CARRIER

    def as_snapshot(self, now: float, timing: MessageTiming, zone: ZoneInfo) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "to": self.to,
            "from": self.sender,
            "carrier": self.carrier,
            "text": self.text,
            "status": self.status_at(now, timing).value,
            "date": iso_date(self.accepted_at, zone),
            "flags": self.flags,
            "pin": self.pin,
            "accepted_at": self.accepted_at,
            "fate": self.fate.value,
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> SentMessage:
        return cls(
            id=str(data["id"]),
            method=str(data["method"]),
            to=str(data["to"]),
            sender=str(data["from"]),
            carrier=str(data["carrier"]),
            text=str(data["text"]),
            accepted_at=float(data["accepted_at"]),
            fate=MessageStatus(data["fate"]),
            flags=data.get("flags"),
            pin=data.get("pin"),
        )


@dataclass(frozen=True)
class MORecord:
    """An incoming (MO) message: from a user's number to the short code."""

    text: str
    sender: str
    to: str
    carrier: str
    keyword: str
    received_at: float
    encoding: str = ENCODING

    def as_snapshot(self, zone: ZoneInfo) -> dict[str, Any]:
        return {
            "text": self.text,
            "from": self.sender,
            "to": self.to,
            "encoding": self.encoding,
            "keyword": self.keyword,
            "carrier": self.carrier,
            "sendDate": iso_date(self.received_at, zone),
            "received_at": self.received_at,
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> MORecord:
        return cls(
            text=str(data["text"]),
            sender=str(data["from"]),
            to=str(data["to"]),
            carrier=str(data["carrier"]),
            keyword=str(data["keyword"]),
            received_at=float(data["received_at"]),
            encoding=str(data["encoding"]),
        )


def fired_mo(number: str, text: str, carrier: str, now: float) -> MORecord:
    """The MO that fireMessage injects; its keyword is the text's first word, upper-cased."""
    words = text.split()
    return MORecord(
        text=text,
        sender=number,
        to=SHORT_CODE,
        carrier=carrier,
        keyword=words[0].upper() if words else "",
        received_at=now,
    )


def fixture_mo_messages(now: float) -> list[MORecord]:
    """The MO messages every reset starts with, one hour apart, oldest first."""
    rows = [
        ("OGANGI TEST", "58123456789", "Movistar"),
        ("INFO saldo", "58141234567", "Digitel"),
        ("Test", "58123456789", "Movistar"),
        ("OGANGI promo", "584161112233", "Movilnet"),
    ]
    return [
        fired_mo(number, text, carrier, now - 3600.0 * (len(rows) - index))
        for index, (text, number, carrier) in enumerate(rows)
    ]


class MOOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class MOSearch:
    """The inline search string of getMOMessages: each given filter must match (values are OR-ed);
    ``keywords`` are regular expressions searched in the message text."""

    senders: frozenset[str] = frozenset()
    recipients: frozenset[str] = frozenset()
    carriers: frozenset[str] = frozenset()
    keywords: tuple[re.Pattern[str], ...] = ()
    order: MOOrder = MOOrder.ASC

    def matches(self, mo: MORecord) -> bool:
        return (
            (not self.senders or mo.sender in self.senders)
            and (not self.recipients or mo.to in self.recipients)
            and (not self.carriers or mo.carrier in self.carriers)
            and (not self.keywords or any(k.search(mo.text) for k in self.keywords))
        )

    def select(self, messages: list[MORecord]) -> list[MORecord]:
        """The matching messages, ordered by date (ties keep arrival order)."""
        found = sorted((mo for mo in messages if self.matches(mo)), key=lambda mo: mo.received_at)
        return found[::-1] if self.order is MOOrder.DESC else found
