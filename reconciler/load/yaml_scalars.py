"""YAML scalars under the core schema, as PyYAML's safe loader reads them (timestamps stay text).

Which tags are accepted at all, how a plain scalar's tag is resolved and how text becomes int, float,
bool or null; plus how values are named in messages ("found a list").
"""

from __future__ import annotations

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


def _sexagesimal(text: str, kind: Any) -> Any:
    total = kind(0)
    for part in text.split(":"):
        total = total * 60 + kind(part)
    return total
