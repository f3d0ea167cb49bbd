"""Phone numbers as the dashboard, notifications and logs show them: never whole.

A recipient list is personal data, and the page and its event stream go to browsers, proxies and
screenshots. A number keeps its country code, the next three digits (the operator's range, which tells
an operator what it needs: "the Movistar numbers failed") and its last four, e.g. ``+49 170 ***1234``.
Every text the dashboard prints passes through ``mask_numbers_in`` (the template environment's
``finalize``), so a number quoted inside a backend's error message is masked too.
"""

from __future__ import annotations

import re

HIDDEN = "***"

#: E.164 country codes of one and two digits; every other code has three (ITU-T E.164 assignments)
_ONE_DIGIT_CODES = frozenset({"1", "7"})
_TWO_DIGIT_CODES = frozenset({
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
    "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
    "86", "90", "91", "92", "93", "94", "95", "98",
})

#: what counts as a number inside free text: ``+`` and 7 to 15 digits (single spaces allowed), or a bare run
#: of 8 to 15 digits standing alone (dates, times, ids with letters and 62-bit ledger keys are left alone)
_NUMBER_IN_TEXT = re.compile(r"(?<![\w+])(?:\+\d(?: ?\d){6,14}|\d{8,15})(?![\w])")


def country_code(digits: str) -> str:
    """The country calling code at the start of an international number written as digits only."""
    if digits[:1] in _ONE_DIGIT_CODES:
        return digits[:1]
    if digits[:2] in _TWO_DIGIT_CODES:
        return digits[:2]
    return digits[:3]


def mask_number(number: str) -> str:
    """``+49 170 ***1234`` for ``+491701231234`` (also written ``00491701231234`` or ``491701231234``); a
    national number keeps its first four digits and last four (``0170 ***1234``); a short one only its last
    two. At least three digits are always hidden."""
    text = number.strip()
    digits = re.sub(r"\D", "", text)
    if len(digits) < 5:
        return HIDDEN
    if text.startswith("00"):
        digits, international = digits[2:], True
    else:
        international = text.startswith("+") or (len(digits) >= 11 and not digits.startswith("0"))
    if not international:
        return f"{digits[:4]} {HIDDEN}{digits[-4:]}" if len(digits) >= 11 else f"{HIDDEN}{digits[-2:]}"
    code = country_code(digits)
    rest = digits[len(code):]
    if len(rest) >= 10:
        return f"+{code} {rest[:3]} {HIDDEN}{rest[-4:]}"
    if len(rest) >= 7:
        return f"+{code} {HIDDEN}{rest[-4:]}"
    return f"+{code} {HIDDEN}{rest[-2:]}" if len(rest) >= 5 else f"+{code} {HIDDEN}"


def mask_numbers_in(text: str) -> str:
    """``text`` with every phone-number-like run of digits masked (``mask_number``)."""
    return _NUMBER_IN_TEXT.sub(lambda match: mask_number(match.group(0)), text)
