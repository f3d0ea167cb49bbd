"""Text rules of the SMS gateway simulator: ``#param#`` substitution, GSM 7-bit / UCS-2 segment counts
and the gateway's ``YYYY-MM-DD HH:MM:SS`` timestamps.

Kept apart from the simulator's state so the arithmetic a tester checks (how many segments a text
takes, what a placeholder becomes) is small and readable in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

PLACEHOLDER = "#param#"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

#: GSM 03.38 default alphabet (one septet each) and its extension table (two septets each: escape + char).
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€\f"


class Encoding(StrEnum):
    """The two encodings ``send_sms`` accepts; the value is how the API spells it."""

    GSM_7BIT = "gsm-7bit"
    UNICODE = "unicode"


#: (units in a single-segment message, units per segment of a multi-segment message)
SEGMENT_SIZES: Mapping[Encoding, tuple[int, int]] = MappingProxyType(
    {Encoding.GSM_7BIT: (160, 153), Encoding.UNICODE: (70, 67)}
)


def fill_params(text: str, values: tuple[str, ...]) -> str:
    """Replace the n-th ``#param#`` with ``values[n]``; a placeholder without a value becomes empty
    (the rule ``reconciler.backends.sms_text`` applies client-side, so both render alike)."""
    parts = text.split(PLACEHOLDER)
    filled = [parts[0]]
    for position, part in enumerate(parts[1:]):
        filled.append(values[position] if position < len(values) else "")
        filled.append(part)
    return "".join(filled)


def is_gsm_text(text: str) -> bool:
    """Whether every character exists in the GSM 7-bit alphabet (basic or extension table)."""
    return all(char in GSM_BASIC or char in GSM_EXTENSION for char in text)


def choose_encoding(text: str, requested: Encoding | None) -> Encoding:
    """The requested encoding, or GSM 7-bit when the text fits it and Unicode otherwise."""
    if requested is not None:
        return requested
    return Encoding.GSM_7BIT if is_gsm_text(text) else Encoding.UNICODE


def text_units(text: str, encoding: Encoding) -> int:
    """Septets (GSM: extension characters take two, unknown ones one) or UTF-16 code units (Unicode)."""
    if encoding is Encoding.UNICODE:
        return len(text.encode("utf-16-le")) // 2
    return sum(2 if char in GSM_EXTENSION else 1 for char in text)


def segment_count(text: str, encoding: Encoding) -> int:
    """How many SMS segments the text takes: 160/153 septets (GSM 7-bit), 70/67 code units (Unicode)."""
    single, multi = SEGMENT_SIZES[encoding]
    units = text_units(text, encoding)
    return 1 if units <= single else math.ceil(units / multi)


def format_time(epoch: float) -> str:
    """Simulated epoch seconds as the gateway prints them (UTC)."""
    return datetime.fromtimestamp(epoch, UTC).strftime(TIME_FORMAT)


def parse_time(value: str) -> float:
    """The gateway's ``YYYY-MM-DD HH:MM:SS`` (UTC) as epoch seconds; ``ValueError`` when malformed."""
    return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC).timestamp()
