"""The schemas in ``schemas/``: valid Draft 2020-12, documented, in step with the loader's tables."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reconciler.load.schema_check import SCHEMA_DIR, SCHEMA_FILES, fast_check_for, schema_for
from reconciler.load.type_fit import (
    ASSIGNMENT_FIELDS, BACKEND_AUTH, BACKEND_OPTIONS, CAMPAIGN_FIELDS, SCHEDULE_FIELDS, types_text,
)
from reconciler.model import BackendType, Kind

KINDS = list(Kind)
REPO = Path(__file__).resolve().parents[2]


def _properties(schema: dict[str, Any], trail: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every named property anywhere in the schema, with a readable trail."""
    found = []
    for name, sub in schema.get("properties", {}).items():
        found.append((f"{trail}.{name}", sub))
        found.extend(_properties(sub, f"{trail}.{name}"))
    for name, sub in schema.get("$defs", {}).items():
        found.extend(_properties(sub, f"$defs.{name}"))
    return found


def test_there_is_one_schema_file_per_kind() -> None:
    """Each kind has its schema file and there are no others."""
    assert sorted(SCHEMA_FILES.values()) == sorted(p.name for p in SCHEMA_DIR.glob("*.json"))


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_valid_draft_2020_12(kind: Kind) -> None:
    """The schema passes the 2020-12 meta-schema."""
    schema = schema_for(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_has_a_description(kind: Kind) -> None:
    """Every property (the schemas are the reference documentation) says what it is."""
    schema = schema_for(kind)
    defs = schema["$defs"]
    for trail, sub in _properties(schema):
        target = defs[sub["$ref"].split("/")[-1]] if "$ref" in sub else {}
        assert sub.get("description") or target.get("description"), f"{kind.value}: {trail} has no description"


@pytest.mark.parametrize("kind", KINDS)
def test_every_object_rejects_unknown_fields(kind: Kind) -> None:
    """Every object with named properties sets additionalProperties: false."""
    schema = schema_for(kind)
    objects = [("", schema)] + [(trail, sub) for trail, sub in _properties(schema)]
    objects += [(f"$defs.{name}", sub) for name, sub in schema["$defs"].items()]
    for trail, sub in objects:
        if "properties" in sub:
            assert sub.get("additionalProperties") is False, f"{kind.value}: {trail or 'root'} accepts unknown fields"


@pytest.mark.parametrize("kind", KINDS)
def test_fast_check_compiles(kind: Kind) -> None:
    """The compiled fast check understands every keyword the schema uses."""
    assert callable(fast_check_for(kind))


def test_shared_definitions_are_identical_in_every_schema() -> None:
    """``name``, ``metadata`` and ``filePath`` are copied into each file; the copies must not drift."""
    for definition in ("name", "metadata", "filePath"):
        copies = {json.dumps(schema_for(k)["$defs"][definition], sort_keys=True)
                  for k in KINDS if definition in schema_for(k)["$defs"]}
        assert len(copies) == 1, definition


@pytest.mark.parametrize(("kind", "table"), [
    (Kind.CAMPAIGN, CAMPAIGN_FIELDS), (Kind.GATEWAY_ASSIGNMENT, ASSIGNMENT_FIELDS), (Kind.SCHEDULE, SCHEDULE_FIELDS),
])
def test_field_descriptions_name_the_backend_types_they_apply_to(kind: Kind, table: dict[str, Any]) -> None:
    """A field limited to some backend types starts its description with those types, as the loader checks."""
    properties = schema_for(kind)["properties"]["spec"]["properties"]
    assert set(properties) == set(table)
    for name, types in table.items():
        description = properties[name]["description"]
        if types == frozenset(BackendType):
            assert description.startswith("All types"), name
        else:
            listed = set(re.findall(r"yateota|iot-campaigns|ogangi|sms-gateway", description.split(":")[0]))
            assert listed == {t.value for t in types}, (name, description, types_text(types))


def test_backend_auth_and_options_tables_match_the_schema() -> None:
    """The per-type auth keys and options the loader enforces are exactly the schema's."""
    spec = schema_for(Kind.BACKEND)["properties"]["spec"]["properties"]
    assert {key for keys in BACKEND_AUTH.values() for key in keys} == set(spec["auth"]["properties"])
    assert set(BACKEND_OPTIONS) == set(spec["options"]["properties"])


@pytest.mark.parametrize("path", sorted(REPO.glob("examples/**/*.yaml")) + sorted(REPO.glob("campaigns.d/**/*.yaml")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_file_names_its_schema_for_editors(path: Path) -> None:
    """Each example starts with a yaml-language-server comment that points at an existing schema."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"^# yaml-language-server: \$schema=(\S+)$", first)
    assert match, first
    assert (path.parent / match[1]).resolve().is_file()
