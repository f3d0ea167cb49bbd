"""jsonschema_rs (the fast path) and jsonschema (the explanations) give the same verdict; the loader never raises.

The differential tests are property tests: documents are the shipped examples, mutated at random (a value
replaced by arbitrary JSON, a key removed or added), and near-valid date-times and URLs in the fields that
carry a ``format``. Where jsonschema_rs on its own would differ from jsonschema (its built-in formats, values
JSON cannot hold, non-finite numbers, references it would have to fetch), a test pins what we do instead.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.load import load_desired_state
from reconciler.load.schema_check import (
    SCHEMA_FILES, check_document, compile_fast_validator, passes_fast_check, schema_for, validator_for,
)
from reconciler.load.yaml_source import MAX_DEPTH
from reconciler.model import Kind

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [doc for path in sorted(REPO.glob("examples/quickstart/*.yaml")) + sorted(REPO.glob("campaigns.d/*.yaml"))
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]

# strings where the two validators could part: patterns (a final newline, non-ASCII digits), formats
# (calendar, leap second, separators, hosts, ports), lengths
TRICKY_STRINGS = [
    "", "x", "running", "gw-00001", "gw-00001\n", "10%", "100%", "100.0%", "101%", "21:00", "24:00",
    "+491700000001", "+49١٧٠٠٠٠٠٠٠١", "http://127.0.0.1:8701", "https://iot.example.net", "http://",
    "https://a:99999", "https://a b", "ftp://x", "iot-sandbox", "Europe/Berlin", "a" * 200, "2027-03-01T01:00:00Z",
    "2027-03-01 01:00:00+01:00", "2027-03-01t01:00:00z", "2027-02-30T01:00:00Z", "2027-06-30T23:59:60Z",
    "2027-03-01T01:00:00", "IOT_PASSWORD", "é",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) |
    st.sampled_from(TRICKY_STRINGS) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["env", "file", "begin", "end", "from", "to", "number", "params", "id", "x", "waves"]),
        inner, max_size=4),
    max_leaves=12,
)
DATE_TIMES = st.builds(
    "{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}{}{}".format,
    st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.sampled_from("Tt _"), st.integers(0, 25),
    st.integers(0, 60), st.integers(0, 61), st.sampled_from(["", ".5", ".123456"]),
    st.sampled_from(["Z", "z", "", "+01:00", "-23:59", "+24:00", "+01:60", "+0100"]),
)
URLS = st.builds(
    "{}{}{}{}".format, st.sampled_from(["http://", "https://", "http:/", "HTTPS://", "ftp://"]),
    st.sampled_from(["", "iot.example.net", "127.0.0.1", "[::1]", "a b", "user:pw@h", "h%41", "é.example"]),
    st.sampled_from(["", ":", ":0", ":443", ":65535", ":65536", ":99999", ":x"]),
    st.sampled_from(["", "/", "/api/v1", "/%zz", "/a b", "?q=1", "#f"]),
)


def _paths(node: Any, trail: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [trail]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, trail + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, trail + (index,))
    return found


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)[1:]))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(["extra", "env", "file", "state", "waves"]))] = draw(JSON)
    return doc


def example(kind: Kind, **spec: Any) -> dict[str, Any]:
    """The first shipped example of ``kind``, with ``spec`` fields replaced."""
    doc = copy.deepcopy(next(doc for doc in EXAMPLES if doc["kind"] == kind.value))
    doc["spec"].update(spec)
    return doc


def assert_same_verdict(kind: Kind, doc: Any) -> bool:
    fast = passes_fast_check(kind, doc)
    assert fast == validator_for(kind).is_valid(doc), (kind, doc)
    return fast


def test_fast_check_accepts_the_examples() -> None:
    """The fast path is actually taken for valid documents."""
    assert {Kind(doc["kind"]) for doc in EXAMPLES} >= {Kind.BACKEND, Kind.PACKAGE, Kind.CAMPAIGN,
                                                       Kind.GATEWAY_ASSIGNMENT, Kind.SCHEDULE}
    for doc in EXAMPLES:
        assert passes_fast_check(Kind(doc["kind"]), doc), doc["metadata"]["name"]


@pytest.mark.parametrize("examples", [pytest.param(200, id="200"),
                                      pytest.param(3000, id="3000", marks=pytest.mark.slow)])
def test_fast_check_and_jsonschema_agree_on_mutated_documents(examples: int) -> None:
    """For arbitrary mutations of real documents, against every kind's schema, both say the same."""
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated_documents())
    def agree(doc: dict[str, Any]) -> None:
        for kind in SCHEMA_FILES:
            assert_same_verdict(kind, doc)

    agree()


@pytest.mark.parametrize("examples", [pytest.param(300, id="300"),
                                      pytest.param(3000, id="3000", marks=pytest.mark.slow)])
def test_fast_check_and_jsonschema_agree_on_formats(examples: int) -> None:
    """Near-valid date-times (bad calendar days, hours, offsets, separators) and URLs (no host, bad port,
    spaces) get the same verdict: both validators use the date-time and uri checks of ``schema_check``."""
    @settings(max_examples=examples, deadline=None)
    @given(begin=DATE_TIMES, end=DATE_TIMES, url=URLS)
    def agree(begin: str, end: str, url: str) -> None:
        assert_same_verdict(Kind.SCHEDULE, example(Kind.SCHEDULE, download={"begin": begin, "end": end}))
        assert_same_verdict(Kind.BACKEND, example(Kind.BACKEND, url=url))

    agree()


@pytest.mark.parametrize(("value", "valid"), [
    ("2027-03-01T01:00:00Z", True),
    ("2027-03-01 01:00:00+01:00", True),  # jsonschema_rs' own date-time refuses the space
    ("2027-06-30T23:59:60Z", False),  # ... and accepts a leap second, which Python's datetime cannot hold
    ("2027-02-30T01:00:00Z", False),
])
def test_date_time_format_is_ours_in_both_validators(value: str, valid: bool) -> None:
    doc = example(Kind.SCHEDULE, download={"begin": value, "end": "2027-03-02T01:00:00Z"})
    assert assert_same_verdict(Kind.SCHEDULE, doc) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("https://iot.example.net", True),
    ("http://", False),  # jsonschema_rs' own uri accepts no host ...
    ("https://iot.example.net:99999", False),  # ... and a port out of range
])
def test_uri_format_is_ours_in_both_validators(value: str, valid: bool) -> None:
    assert assert_same_verdict(Kind.BACKEND, example(Kind.BACKEND, url=value)) is valid


def test_a_reference_outside_the_schema_fails_to_build_instead_of_fetching() -> None:
    """Our schemas refer only inside themselves (``test_schemas``); a reference to another file, even a
    sibling's ``$id``, is an error when the validator is built, never a download."""
    sibling = schema_for(Kind.PACKAGE)["$id"]
    with pytest.raises(jsonschema_rs.ValidationError, match="Retrieval is disabled"):
        compile_fast_validator({"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": sibling})


def test_a_value_jsonschema_rs_cannot_take_is_explained_by_jsonschema() -> None:
    """A lone surrogate cannot be encoded for jsonschema_rs (YAML refuses one anyway): jsonschema decides,
    nothing raises."""
    doc = example(Kind.PACKAGE)
    doc["metadata"]["name"] = "fw\ud800"
    assert not passes_fast_check(Kind.PACKAGE, doc)
    problems = check_document(Kind.PACKAGE, doc)
    assert [p.path for p in problems] == [("metadata", "name")]
    assert "expected a name of lowercase letters" in problems[0].message


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_left_to_jsonschema(number: float) -> None:
    """jsonschema_rs does not count NaN or infinity as a number (jsonschema does), so it says "invalid"
    and jsonschema decides. The loader refuses ``.nan`` and ``.inf`` before the schema check anyway."""
    doc = example(Kind.CAMPAIGN, rate={"perSecond": number})
    assert not passes_fast_check(Kind.CAMPAIGN, doc)
    assert (check_document(Kind.CAMPAIGN, doc) == []) is validator_for(Kind.CAMPAIGN).is_valid(doc)


def test_the_deepest_value_the_loader_builds_is_checked() -> None:
    """jsonschema_rs recurses on the native stack: the loader's nesting bound keeps it far from the limit."""
    deep: Any = "x"
    for _ in range(MAX_DEPTH * 4):
        deep = {"x": deep}
    doc = example(Kind.CAMPAIGN, settings={"nested": deep})
    assert not passes_fast_check(Kind.CAMPAIGN, doc)
    assert [p.path for p in check_document(Kind.CAMPAIGN, doc)] == [("spec", "settings", "nested")]


YAML_PIECES = list("ab1:-[]{}&*!|>'\"#%@`,?\n\t .~<=") + [
    "apiVersion: reconciler/v1\n", "kind: Campaign\n", "spec:\n  ", "metadata: {name: x}\n", "---\n", "<<: *a\n",
    "&a ", "!!python/", "\ufeff", "\x00", "\x85", "é",
]
YAML_TEXT = st.lists(st.sampled_from(YAML_PIECES), max_size=60).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(YAML_TEXT, mutated_documents().map(lambda d: yaml.safe_dump(d, sort_keys=False))))
def test_loader_never_raises(tmp_path: Path, text: str) -> None:
    """Whatever the text, loading returns a result (valid, or with diagnostics) and raises nothing."""
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    result = load_desired_state([path], root=tmp_path)
    assert result.valid or result.diagnostics
