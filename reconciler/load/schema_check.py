"""Validation of one document against its kind's JSON Schema, with messages that point at nodes.

The schemas in ``schemas/`` are the reference documentation and what editors validate against; the
loader uses the same files. Each document is first checked by jsonschema_rs' compiled Draft 2020-12
validator (``is_valid``: a few microseconds, where jsonschema takes about half a millisecond, which alone
would cap validation near 2,000 documents per second). Most documents are valid and stop there; the
others go through jsonschema's Draft 2020-12 validator, whose errors are turned into diagnostics at the
offending node (the unknown key itself, the bad value, the mapping that lacks a field) saying what was
found and what is expected. Both validators use the same two format checks and ECMA-262 patterns, so
they agree (``tests/load/test_fast_check.py`` compares them); when jsonschema_rs says "invalid" but
jsonschema finds nothing, jsonschema's verdict stands.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

from reconciler.backends import registry
from reconciler.load.backend_schema import with_registered_backends
from reconciler.load.positions import Path_
from reconciler.load.yaml_scalars import describe_noun
from reconciler.model import Kind

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_FILES = {
    Kind.BACKEND: "backend.schema.json",
    Kind.PACKAGE: "package.schema.json",
    Kind.CAMPAIGN: "campaign.schema.json",
    Kind.GATEWAY_ASSIGNMENT: "gateway-assignment.schema.json",
    Kind.SCHEDULE: "schedule.schema.json",
    Kind.NOTIFICATION: "notification.schema.json",
}
SECRET_KEYS = frozenset({"secret", "password", "privateKey"})
SECRET_MESSAGE = "secrets must be references ({env: NAME} or {file: PATH}), not literal values"
URL_CREDENTIALS_MESSAGE = ("credentials in the URL are literal secrets; put them in `auth` as references ({env: NAME} "
                           "or {file: PATH})")

_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def is_date_time(text: str) -> bool:
    """RFC 3339 date-time with a time-zone offset (``Z`` or ``+hh:mm``), and a real calendar date."""
    if _DATE_TIME.match(text) is None:
        return False
    try:
        datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def is_uri(text: str) -> bool:
    """An absolute URI with a scheme and, for http(s), a host."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    if not parts.scheme or any(c.isspace() for c in text):
        return False
    return bool(parts.hostname) if parts.scheme in ("http", "https") else True


FORMATS: dict[str, Callable[[str], bool]] = {"date-time": is_date_time, "uri": is_uri}
TYPE_NOUNS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
              "object": "a mapping", "array": "a list", "null": "null"}
FORMAT_HINTS = {
    "date-time": "an RFC 3339 date-time with a time-zone offset, e.g. 2027-03-01T01:00:00Z",
    "uri": "an absolute URL with a host, e.g. https://iotc.example.net",
}


def schema_for(kind: Kind) -> dict[str, Any]:
    """The schema of ``kind`` as the loader applies it: its file, completed with the backend types the
    registry knows (``backend_schema``); rebuilt when a backend type is registered."""
    return _schema_for(kind, registry.revision())


@lru_cache(maxsize=None)
def _schema_for(kind: Kind, revision: int) -> dict[str, Any]:
    with open(SCHEMA_DIR / SCHEMA_FILES[kind], encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return with_registered_backends(kind, schema)


def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a schema pattern with ECMA-262's meaning of a final ``$`` (the very end, as editors see
    it, and as jsonschema_rs reads it), not Python's (also before a final newline, which would let
    ``name: "fw\n"`` through)."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and ecma_pattern(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern_keyword})


def validator_for(kind: Kind) -> Any:
    return _validator_for(kind, registry.revision())


@lru_cache(maxsize=None)
def _validator_for(kind: Kind, revision: int) -> Any:
    checker = FormatChecker(formats=())
    for name, test in FORMATS.items():
        # formats constrain strings only; other types are the "type" keyword's business
        checker.checks(name)(lambda value, test=test: not isinstance(value, str) or test(value))
    return _Validator(schema_for(kind), format_checker=checker)


def compile_fast_validator(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """jsonschema_rs' Draft 2020-12 validator for ``schema``, with jsonschema's format checks (its own
    differ: they accept a leap second and ``http://`` without a host, and refuse a space before the time)
    and no network: a ``$ref`` that does not resolve inside the schema fails here, at build time."""
    return jsonschema_rs.Draft202012Validator(schema, formats=FORMATS, validate_formats=True, offline=True)


def fast_validator_for(kind: Kind) -> jsonschema_rs.Validator:
    return _fast_validator_for(kind, registry.revision())


@lru_cache(maxsize=None)
def _fast_validator_for(kind: Kind, revision: int) -> jsonschema_rs.Validator:
    return compile_fast_validator(schema_for(kind))


def passes_fast_check(kind: Kind, value: Any) -> bool:
    """True when jsonschema_rs accepts ``value``, so there is nothing to explain.

    False, leaving the verdict to jsonschema, for a value jsonschema_rs cannot take (a string with a
    lone surrogate). The loader's values nest at most ``yaml_source.MAX_DEPTH`` levels: jsonschema_rs
    recurses on the native stack, so a value nested tens of thousands deep must never reach it.
    """
    try:
        return fast_validator_for(kind).is_valid(value)
    except ValueError:
        return False


def dotted(path: Path_) -> str:
    """``("spec", "packages", 0)`` -> ``spec.packages[0]``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "document"


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def shown(value: Any, limit: int = 60) -> str:
    """A value quoted for a message: shortened, control characters escaped (a message is one line)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return "`" + _CONTROL.sub(lambda found: json.dumps(found.group())[1:-1], text) + "`"


def names_list(names: list[str] | tuple[str, ...] | set[str], limit: int = 25) -> str:
    ordered = sorted(names)
    text = ", ".join(ordered[:limit])
    return text + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "") if ordered else "(none)"


def did_you_mean(word: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def is_secret_path(kind: Kind, path: Path_, instance: Any = None) -> bool:
    """Values that may be secrets are never repeated in messages: anything under a Backend's
    ``spec.auth``, and a ``spec.url`` holding ``user:password@``; a Notification's ``spec.url`` (a Slack
    webhook URL is a credential) and ``spec.signingSecret``."""
    if kind is Kind.NOTIFICATION:
        return path[:2] in (("spec", "url"), ("spec", "signingSecret"))
    if kind is not Kind.BACKEND:
        return False
    return path[:2] == ("spec", "auth") or (path == ("spec", "url") and isinstance(instance, str) and "@" in instance)


class SchemaProblem:
    """One schema violation: where (path, and whether the key rather than the value) and what."""

    __slots__ = ("path", "at_key", "message", "blame")

    def __init__(self, path: Path_, message: str, *, at_key: bool = False, blame: Path_ | None = None) -> None:
        self.path = path  # where to point
        self.at_key = at_key  # point at the key naming ``path`` rather than at its value
        self.message = message
        self.blame = path if blame is None else blame  # what the later checks must not trust


MAX_PROBLEMS_PER_DOCUMENT = 50


def check_document(kind: Kind, value: Any) -> list[SchemaProblem]:
    """Validate one document of a known kind; an empty list means valid.

    At most ``MAX_PROBLEMS_PER_DOCUMENT`` problems are explained (a list of 100,000 bad items would
    otherwise flood the output and take long); a last one then says that there are more.
    """
    if passes_fast_check(kind, value):
        return []
    problems: list[SchemaProblem] = []
    seen: set[tuple[Path_, str]] = set()
    for error in validator_for(kind).iter_errors(value):
        for problem in _explain(kind, error):
            if (problem.path, problem.message) in seen:
                continue
            if len(problems) == MAX_PROBLEMS_PER_DOCUMENT:
                problems.append(SchemaProblem(problem.path, f"{dotted(problem.path)}: ... and more problems in this "
                                              f"document (only the first {MAX_PROBLEMS_PER_DOCUMENT} are shown)",
                                              blame=()))
                return problems
            seen.add((problem.path, problem.message))
            problems.append(problem)
    return problems


def _explain(kind: Kind, error: ValidationError) -> Iterator[SchemaProblem]:
    path: Path_ = tuple(error.absolute_path)
    where = dotted(path)
    instance, keyword, expected, schema = error.instance, error.validator, error.validator_value, error.schema
    literal_secret = (len(path) == 3 and path[2] in SECRET_KEYS) or (kind is Kind.NOTIFICATION
                                                                    and path == ("spec", "signingSecret"))
    if is_secret_path(kind, path) and literal_secret and not isinstance(instance, dict):
        yield SchemaProblem(path, f"{where}: {SECRET_MESSAGE}")
        return
    secret = is_secret_path(kind, path, instance)
    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        for key in instance:
            if key not in allowed:
                yield SchemaProblem(path + (key,), f"{where}: unknown field `{key}`{did_you_mean(key, allowed)}; "
                                                   f"expected one of: {', '.join(allowed)}", at_key=True)
    elif keyword == "required" and isinstance(instance, dict):
        for key in expected:
            if key not in instance:
                yield SchemaProblem(path, f"{where}: missing required field `{key}`", at_key=bool(path),
                                    blame=path + (key,))
    elif keyword == "enum":
        found = "a secret value" if secret else shown(instance)
        yield SchemaProblem(path, f"{where}: found {found}, expected one of: {', '.join(map(str, expected))}")
    elif keyword == "const":
        yield SchemaProblem(path, f"{where}: found {shown(instance)}, expected `{expected}`")
    elif keyword == "type":
        types = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(TYPE_NOUNS.get(name) or str(name) for name in types)
        found = describe_noun(instance)
        if isinstance(instance, (str, int, float)) and not isinstance(instance, bool) and not secret:
            found += f" {shown(instance)}"
            if "string" in types and isinstance(instance, (int, float)):
                found += f" (quote it to make it a string: \"{instance}\")"
        yield SchemaProblem(path, f"{where}: found {found}, expected {wanted}")
    elif keyword == "pattern":
        hint = schema.get("patternErrorMessage") or f"text matching {expected}"
        found = "" if secret else f"found {shown(instance)}, "
        yield SchemaProblem(path, f"{where}: {found}expected {hint}")
    elif keyword == "format":
        hint = FORMAT_HINTS.get(expected, f"a {expected}")
        found = "" if secret else f"found {shown(instance)}, "
        yield SchemaProblem(path, f"{where}: {found}expected {hint}")
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "greater than",
                 "exclusiveMaximum": "less than"}[keyword]
        found = "" if secret else f"found {shown(instance)}, "
        yield SchemaProblem(path, f"{where}: {found}expected a number {bound} {expected}")
    elif keyword in ("minLength", "maxLength"):
        if keyword == "minLength" and expected == 1:
            yield SchemaProblem(path, f"{where}: found an empty string, expected a non-empty one")
        else:
            bound = "at least" if keyword == "minLength" else "at most"
            yield SchemaProblem(path, f"{where}: found a string of {len(instance)} characters, expected {bound} "
                                      f"{expected}")
    elif keyword in ("minItems", "maxItems"):
        if keyword == "minItems" and expected == 1:
            yield SchemaProblem(path, f"{where}: found an empty list, expected at least one item")
        else:
            bound = "at least" if keyword == "minItems" else "at most"
            yield SchemaProblem(path, f"{where}: found {len(instance)} items, expected {bound} {expected}")
    elif keyword == "uniqueItems" and isinstance(instance, list):
        yield from _duplicates(path, instance)
    elif keyword in ("minProperties", "maxProperties") and isinstance(instance, dict):
        options = " or ".join(f"`{name}`" for name in schema.get("properties", {}))
        found = ", ".join(f"`{key}`" for key in instance) or "nothing"
        yield SchemaProblem(path, f"{where}: expected exactly one of {options}; found {found}", at_key=bool(path))
    elif keyword == "propertyNames":
        yield SchemaProblem(path, f"{where}: a key is not allowed here: {error.message}")
    else:
        yield SchemaProblem(path, f"{where}: {error.message}")


def _duplicates(path: Path_, items: list[Any]) -> Iterator[SchemaProblem]:
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in first:
            yield SchemaProblem(path + (index,), f"{dotted(path + (index,))}: duplicate item {shown(item)} (also item "
                                                 f"{first[key]})")
        else:
            first[key] = index
