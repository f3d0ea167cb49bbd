"""The schemas in ``schemas/``: valid Draft 2020-12, documented, in step with the backend registry (the
descriptors' types, auth keys, options and fields)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reconciler.backends import registry
from reconciler.load.schema_check import SCHEMA_DIR, SCHEMA_FILES, fast_validator_for, schema_for
from reconciler.load.type_fit import assignment_fields, backend_auth, backend_options, campaign_fields, \
    schedule_fields, types_text
from reconciler.model import Kind

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


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    return [r for v in node for r in _refs(v)] if isinstance(node, list) else []


@pytest.mark.parametrize("kind", KINDS)
def test_every_reference_stays_inside_its_schema(kind: Kind) -> None:
    """Each ``$ref`` names one of the file's own ``$defs`` (shared definitions are copied, see below), so
    neither validator ever looks elsewhere; jsonschema_rs, built offline, resolves them all."""
    schema = schema_for(kind)
    refs = _refs(schema)
    assert refs and {ref.removeprefix("#/$defs/") for ref in refs} <= set(schema["$defs"]), refs
    assert fast_validator_for(kind).is_valid({}) is False  # built: every reference resolved without a fetch


def test_shared_definitions_are_identical_in_every_schema() -> None:
    """``name``, ``metadata`` and ``filePath`` are copied into each file; the copies must not drift."""
    for definition in ("name", "metadata", "filePath"):
        copies = {json.dumps(schema_for(k)["$defs"][definition], sort_keys=True)
                  for k in KINDS if definition in schema_for(k)["$defs"]}
        assert len(copies) == 1, definition


BUILT_IN = tuple(d.type for d in registry.BUILT_IN)


@pytest.fixture(autouse=True)
def only_built_in_types() -> None:
    """These tests compare the files with the built-in types (a plug-in test unregisters its own)."""
    assert registry.types() == BUILT_IN


def _file(kind: Kind) -> dict[str, Any]:
    """The schema file as editors see it (the loader completes it from the registry)."""
    return json.loads((SCHEMA_DIR / SCHEMA_FILES[kind]).read_text(encoding="utf-8"))


def test_the_backend_types_the_schema_file_lists_are_the_built_in_registry() -> None:
    """``spec.type``'s list in the file (for editors) is the registry's built-in types, in order."""
    assert _file(Kind.BACKEND)["properties"]["spec"]["properties"]["type"]["enum"] == list(BUILT_IN)
    assert schema_for(Kind.BACKEND)["properties"]["spec"]["properties"]["type"]["enum"] == list(BUILT_IN)


@pytest.mark.parametrize(("kind", "table"), [
    (Kind.CAMPAIGN, campaign_fields), (Kind.GATEWAY_ASSIGNMENT, assignment_fields), (Kind.SCHEDULE, schedule_fields),
])
def test_field_descriptions_name_the_backend_types_they_apply_to(kind: Kind, table: Any) -> None:
    """A field limited to some backend types starts its description with those types, as the loader checks."""
    properties = _file(kind)["properties"]["spec"]["properties"]
    assert set(properties) == set(table())
    named = re.compile("|".join(re.escape(t) for t in sorted(BUILT_IN, key=len, reverse=True)))
    for name, types in table().items():
        description = properties[name]["description"]
        if types == frozenset(BUILT_IN):
            assert description.startswith("All types"), name
        else:
            listed = set(named.findall(description.split(":")[0]))
            assert listed == set(types), (name, description, types_text(types))


def test_backend_auth_and_options_of_the_descriptors_match_the_schema() -> None:
    """The per-type auth keys and options the loader enforces are exactly the schema file's."""
    spec = _file(Kind.BACKEND)["properties"]["spec"]["properties"]
    assert {key for keys in backend_auth().values() for key in keys} == set(spec["auth"]["properties"])
    assert set(backend_options()) == set(spec["options"]["properties"])


@pytest.mark.parametrize("path", sorted(REPO.glob("examples/**/*.yaml")) + sorted(REPO.glob("campaigns.d/**/*.yaml")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_file_names_its_schema_for_editors(path: Path) -> None:
    """Each example starts with a yaml-language-server comment that points at an existing schema."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"^# yaml-language-server: \$schema=(\S+)$", first)
    assert match, first
    assert (path.parent / match[1]).resolve().is_file()
