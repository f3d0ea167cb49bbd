"""YAML scalars under the core schema, as PyYAML's safe loader reads them (timestamps stay text).

Which tags are accepted at all, how a plain scalar's tag is resolved and how text becomes int, float,
bool or null; which numbers are refused (not finite, or not written as plain decimals); plus how
values are named in messages ("found a list").
"""

from __future__ import annotations

import math
import re
from typing import Any

from yaml.resolver import Resolver

CORE = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (CORE + t for t in ("str", "int", "float", "bool", "null"))
TIMESTAMP, MERGE, VALUE = CORE + "timestamp", CORE + "merge", CORE + "value"
MAP, SEQ = CORE + "map", CORE + "seq"
SCALAR_TAGS = frozenset({STR, INT, FLOAT, BOOL, NULL, TIMESTAMP, "!"})
COLLECTION_TAGS = frozenset({MAP, SEQ, "!"})
IMPLICIT: dict[Any, list[tuple[str, re.Pattern[str]]]] = Resolver.yaml_implicit_resolvers
ALLOWED_TAGS_TEXT = "!!str, !!int, !!float, !!bool, !!null, !!timestamp, !!map and !!seq"


def short_tag(tag: str) -> str:
    return "!!" + tag[len(CORE):] if tag.startswith(CORE) else tag


def describe_noun(value: Any) -> str:
    """``describe`` with an article: "a list", "an integer", "null"."""
    name = describe(value)
    return name if name == "null" else ("an " if name[0] in "aeiou" else "a ") + name


def describe(value: Any) -> str:
    """The JSON-ish type name of a built value, for messages ("found list")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "mapping"


def construct_scalar(tag: str, text: str) -> Any:
    """Build a core-schema scalar the way PyYAML's SafeConstructor does (timestamps stay text)."""
    if tag == STR or tag == TIMESTAMP or tag == "!" or tag == VALUE or tag == MERGE:
        return text
    if tag == NULL:
        if text in ("", "~", "null", "Null", "NULL"):
            return None
        raise ValueError("not a null")
    if tag == BOOL:
        lowered = text.lower()
        if lowered in ("yes", "true", "on"):
            return True
        if lowered in ("no", "false", "off"):
            return False
        raise ValueError("not a boolean")
    digits = text.replace("_", "")
    sign = -1 if digits[:1] == "-" else 1
    if digits[:1] in ("+", "-"):
        digits = digits[1:]
    if tag == INT:
        if digits == "0":
            return 0
        if digits.startswith("0b"):
            return sign * int(digits[2:], 2)
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        if ":" in digits:
            return sign * _sexagesimal(digits, int)
        if digits.startswith("0") and len(digits) > 1:
            return sign * int(digits, 8)
        return sign * int(digits)
    lowered = digits.lower()  # float
    if lowered == ".inf":
        return sign * float("inf")
    if lowered == ".nan":
        return float("nan")
    if ":" in lowered:
        return sign * _sexagesimal(lowered, float)
    return sign * float(lowered)


_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")


def number_problem(tag: str, text: str, value: Any, *, hide_value: bool = False) -> str | None:
    """Why a number written as ``text`` (built as ``value``) is refused, or None when it is a plain,
    finite decimal number.

    No field of ours wants a number written in YAML 1.1's other forms, which silently change what was
    meant: ``0216`` is the octal 142, ``2:22`` the base-60 142, ``1_4_2`` is 142, ``0x8e`` is 142; nor
    ``.nan``/``.inf``, which pass every range check of a JSON Schema (NaN compares false with every
    bound). ``hide_value`` leaves the text and the value out of the message (a value that may be a secret).
    """
    if tag == FLOAT and isinstance(value, float) and not math.isfinite(value):
        return "expected a finite number" + ("" if hide_value else f", found `{text[:40]}`") + (
            " (YAML's .nan and .inf, or a number too large to represent, are not accepted)")
    if tag not in (INT, FLOAT) or (_PLAIN_INT if tag == INT else _PLAIN_FLOAT).fullmatch(text):
        return None
    body = text.lstrip("+-")
    shown = text[:40]
    if "_" in body:
        form, how = "with `_` between digits", f"`{shown}` has `_` between digits, which YAML 1.1 drops: it is read as"
    elif ":" in body:
        form, how = "in base 60 (with `:`)", f"`{shown}` is read by YAML 1.1 as the base-60 (sexagesimal) number"
    elif body[:2] in ("0x", "0X"):
        form, how = "in hexadecimal", f"`{shown}` is a hexadecimal number, read as"
    elif body[:2] in ("0b", "0B"):
        form, how = "in binary", f"`{shown}` is a binary number, read as"
    elif tag == INT and body[:1] == "0":
        form, how = "with a leading zero", f"`{shown}` has a leading zero, so YAML 1.1 reads it as the octal number"
    else:
        form, how = "in a form other than plain decimal", f"`{shown}` is not a plain decimal number; it is read as"
    if hide_value:
        return (f"a number written {form} is read by YAML 1.1 as a different number; quote the value if it is "
                "text, or write the plain decimal number meant")
    return (f"{how} {value!r}; quote it (\"{shown}\") if it is text such as an id, or write the plain decimal "
            "number meant")


def _sexagesimal(text: str, kind: Any) -> Any:
    total = kind(0)
    for part in text.split(":"):
        total = total * 60 + kind(part)
    return total
