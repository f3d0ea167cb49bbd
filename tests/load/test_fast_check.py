"""The compiled fast check may only say "valid" when jsonschema agrees; the loader never raises.

Both are property tests: documents are the shipped examples, mutated at random (a value replaced by
arbitrary JSON, a key removed or added), and raw text with YAML's special characters.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.load import load_desired_state
from reconciler.load.schema_check import fast_check_for, validator_for
from reconciler.model import Kind

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [doc for path in sorted(REPO.glob("examples/quickstart/*.yaml")) + sorted(REPO.glob("campaigns.d/*.yaml"))
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) |
    st.sampled_from(["", "x", "running", "gw-00001", "10%", "100%", "2027-03-01T01:00:00Z", "21:00", "+491700000001",
                     "http://127.0.0.1:8701", "iot-sandbox", "Europe/Berlin", "a" * 200]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["env", "file", "begin", "end", "from", "to", "number", "params", "id", "x", "waves"]),
        inner, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, trail: tuple = ()) -> list[tuple]:
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


def test_fast_check_accepts_the_examples() -> None:
    """The fast path is actually taken for valid documents."""
    for doc in EXAMPLES:
        assert fast_check_for(Kind(doc["kind"]))(doc), doc["metadata"]["name"]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_fast_check_never_accepts_what_jsonschema_rejects(doc: dict[str, Any]) -> None:
    """Fast "valid" implies jsonschema "valid", for arbitrary mutations of real documents."""
    for kind in Kind:
        if fast_check_for(kind)(doc):
            assert validator_for(kind).is_valid(doc), kind


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
