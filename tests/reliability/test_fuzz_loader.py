"""Property-based tests of the loader (Hypothesis): whatever the YAML (random structures, near-valid
declarations with mutated nodes, valid files with text edited at random, random CSV and gateway files),
``load_desired_state`` returns diagnostics and never lets an exception escape; an input it accepts has no
error, an input it refuses has at least one, and every diagnostic renders as ``FILE[:LINE:COL]: ...``.

Default: 200 examples per property; the slow run: 5,000. The number run is printed as a figure.

A failure found here is pinned as data, not as Python code: the shrunk input becomes a new file (or
folder) in ``tests/load/corpus/invalid/`` or ``corpus/valid/`` with its expected diagnostics in leading
``# expect:`` lines (format: ``tests/load/test_corpus.py``), checked to fail before the fix. None is
pinned here so far; planner findings go to ``tests/planner/cases/`` (see ``test_fuzz_planner.py``).
"""

from __future__ import annotations

import copy
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import Severity
from reconciler.load import load_desired_state
from tests.reliability.figures import record
from tests.reliability.hostile.base import (
    CSV, DECL, GATEWAYS, HostileCase, Urls, base_documents, base_files, materialize,
)

URLS = Urls("http://127.0.0.1:8701", "http://127.0.0.1:8702", "http://127.0.0.1:8703", "https://127.0.0.1:8704")
FORMAT = re.compile(r"^.+?(:\d+:\d+)?: (error|warning): ", re.DOTALL)
EXAMPLES = [pytest.param(200, id="200-examples"), pytest.param(5000, id="5000-examples", marks=pytest.mark.slow)]
VOCABULARY = ("apiVersion", "kind", "metadata", "name", "spec", "backend", "type", "url", "auth", "env", "file",
              "packages", "gateways", "gatewaysFile", "campaign", "assignment", "download", "begin", "end", "active",
              "from", "until", "quietHours", "recipients", "inline", "text", "ports", "state", "campaignId", "limits",
              "tls", "caFile", "rollout", "waves", "<<", "reconciler/v1", "Campaign", "Backend", "Package",
              "GatewayAssignment", "Schedule", "iot", "yate", "gw", "og", "rollout", "notice", "gw-00001")
SIGNIFICANT = list("{}[]:,-?&*!|>'\"%@`#\t\n\r \\") + ["\x00", "\ufeff", "é", "\u2028", "---", "...", "<<: *a",
                                                        "&a ", "*a", "!!python/name:os.system ", "\n  ", "\n- "]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.sampled_from(VOCABULARY), st.text(max_size=12))
keys = st.one_of(st.sampled_from(VOCABULARY), st.text(min_size=1, max_size=8))
structures = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
                          max_leaves=25)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One repository, rewritten by every example (a fresh folder per example would dominate the time)."""
    root = materialize(HostileCase("fuzz/base"), base_files(URLS, b"-----BEGIN CERTIFICATE-----\n"),
                       tmp_path_factory.mktemp("fuzz"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def write_declarations(root: Path, files: dict[str, bytes]) -> None:
    decl = root / DECL
    for old in decl.iterdir():
        old.unlink()
    for name, data in files.items():
        (decl / name).write_bytes(data)


def load_and_check(root: Path) -> None:
    """The property every example must satisfy."""
    result = load_desired_state([root / DECL], root=root)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert (result.desired is None) == bool(errors)
    for diagnostic in result.diagnostics:
        assert FORMAT.match(diagnostic.format()), diagnostic.format()


def run_property(examples: int, name: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> int:
    ran = Counter[str]()

    @settings(max_examples=examples, deadline=None, derandomize=examples <= 200,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(strategy)
    def property_holds(value: Any) -> None:
        ran["examples"] += 1
        check(value)

    try:
        property_holds()
    finally:
        record(f"fuzz.loader.{name}", ran["examples"])
    return ran["examples"]


def dump_all(documents: list[Any], flow: bool | None) -> bytes:
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, default_flow_style=flow).encode()


@st.composite
def random_documents(draw: st.DrawFn) -> bytes:
    """Random structures, some wearing a plausible envelope."""
    documents = []
    for _ in range(draw(st.integers(1, 3))):
        body = draw(structures)
        if draw(st.booleans()):
            body = {"apiVersion": "reconciler/v1", "kind": draw(st.sampled_from(VOCABULARY[34:40])),
                    "metadata": {"name": draw(st.sampled_from(VOCABULARY[-6:]))}, "spec": body}
        documents.append(body)
    return dump_all(documents, draw(st.sampled_from([None, True, False])))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


@st.composite
def mutated_declarations(draw: st.DrawFn) -> dict[str, bytes]:
    """The valid base with one to three nodes deleted, replaced or given an extra key; or documents copied."""
    files = copy.deepcopy(base_documents(URLS))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(files)))
        documents = files[name]
        if not documents:
            continue
        index = draw(st.integers(0, len(documents) - 1))
        paths = list(_paths(documents[index]))[1:]
        operation = draw(st.sampled_from(["delete", "replace", "extra-key", "copy-document"]))
        if operation == "copy-document" or not paths:
            documents.append(copy.deepcopy(documents[index]))
            continue
        path = draw(st.sampled_from(paths))
        parent = documents[index]
        for step in path[:-1]:
            parent = parent[step]
        if operation == "delete":
            del parent[path[-1]]
        elif operation == "replace":
            parent[path[-1]] = draw(structures)
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(keys)] = draw(scalars)
    return {name: dump_all(documents, None) for name, documents in files.items()}


@st.composite
def edited_text(draw: st.DrawFn) -> dict[str, bytes]:
    """A valid file with one to five random text edits (YAML punctuation, NUL, BOM, non-ASCII, bad bytes)."""
    files = {name: dump_all(documents, None) for name, documents in base_documents(URLS).items()}
    name = draw(st.sampled_from(sorted(files)))
    data = bytearray(files[name])
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(data)))
        piece = draw(st.sampled_from(SIGNIFICANT) | st.text(max_size=3)).encode()
        piece = draw(st.sampled_from([piece, piece, b"\xff", b"\xc3", b"\x80"]))
        cut = draw(st.integers(0, 4))
        data[at:at + cut] = piece
    files[name] = bytes(data)
    return files


DATA_LINES = st.one_of(st.sampled_from(["+491700000009,x", "491700000010", "gw-00009", "", "# c", "number,area",
                                        '"+491700000011","a,b"', "\ufeff+491700000012"]),
                       st.text(max_size=20))


@st.composite
def data_files(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A recipients CSV and a gateways file, each made of random lines (or random bytes)."""
    def one() -> bytes:
        if draw(st.integers(0, 9)) == 0:
            return draw(st.binary(max_size=64))
        return "\n".join(draw(st.lists(DATA_LINES, max_size=8))).encode()
    return one(), one()


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_random_yaml_documents_give_diagnostics_not_exceptions(workspace: Path, examples: int) -> None:
    """Random structures (in block or flow style, with or without an envelope) never crash the loader."""
    def check(data: bytes) -> None:
        write_declarations(workspace, {"random.yaml": data})
        load_and_check(workspace)

    assert run_property(examples, "random_documents", random_documents(), check) == examples


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_mutated_declarations_give_diagnostics_not_exceptions(workspace: Path, examples: int) -> None:
    """Near-valid declarations with nodes deleted, replaced by anything, or extended never crash the loader."""
    def check(files: dict[str, bytes]) -> None:
        write_declarations(workspace, files)
        load_and_check(workspace)

    assert run_property(examples, "mutated_declarations", mutated_declarations(), check) == examples


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_randomly_edited_yaml_text_gives_diagnostics_not_exceptions(workspace: Path, examples: int) -> None:
    """Valid files with YAML punctuation, NUL, BOM, non-ASCII or undecodable bytes inserted never crash it."""
    def check(files: dict[str, bytes]) -> None:
        write_declarations(workspace, files)
        load_and_check(workspace)

    assert run_property(examples, "edited_text", edited_text(), check) == examples


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("examples", EXAMPLES)
def test_random_csv_and_gateway_files_give_diagnostics_not_exceptions(workspace: Path, examples: int) -> None:
    """Random recipients and gateways files (lines or bytes) never crash the loader."""
    valid = {name: dump_all(documents, None) for name, documents in base_documents(URLS).items()}

    def check(pair: tuple[bytes, bytes]) -> None:
        write_declarations(workspace, valid)
        (workspace / CSV).write_bytes(pair[0])
        (workspace / GATEWAYS).write_bytes(pair[1])
        load_and_check(workspace)

    assert run_property(examples, "data_files", data_files(), check) == examples
