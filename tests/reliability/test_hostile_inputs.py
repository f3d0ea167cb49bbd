"""The hostile input corpus (``hostile/``: over 600 broken repositories generated from one valid base:
syntax, types, unknown fields, broken references, duplicate names and keys, alias bombs, deep nesting,
huge and binary files, non-UTF-8, ``!!python`` tags, paths escaping the repository, symlinks, named
pipes, CSV and gateway files with bad rows).

For each: ``reconcile validate`` and ``reconcile --dry-run`` (against a running sandbox) exit 1, print
``FILE:LINE:COL`` where the problem has a position, never a traceback or an internal error, and not one
request reaches any backend (the sandbox's request count stays 0). The bulk runs in-process through the
real entry point (``reconciler.cli.main.main``); a few cases, and every case with a named pipe, run as
real processes with a timeout. The default run takes a seeded sample of 60 (every category included);
the slow run takes the whole corpus.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.reliability.figures import record
from tests.reliability.hostile.base import DECL, SECRET_ENV, HostileCase, Urls, materialize
from tests.reliability.hostile.corpus import build_corpus

POSITION = re.compile(r"^\S.*?:\d+:\d+: error: ", re.MULTILINE)
SAMPLE = 60
SUBPROCESS_TIMEOUT = 6


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=8)) as running:
        yield running


@pytest.fixture(scope="module")
def corpus(sandbox: RunningSandbox) -> tuple[dict[str, bytes], list[HostileCase]]:
    urls = Urls(yateota=sandbox.url("yateota"), iot=sandbox.url("iot-campaigns"), ogangi=sandbox.url("ogangi"),
                sms_gateway=sandbox.url("sms-gateway"))
    return build_corpus(urls, sandbox.tls.ca_file.read_bytes())


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_COLOR", "1")


def sample(cases: list[HostileCase], size: int, seed: int) -> list[HostileCase]:
    """A seeded sample holding at least one case of every category."""
    rng = random.Random(seed)
    by_category: dict[str, list[HostileCase]] = {}
    for case in cases:
        by_category.setdefault(case.category, []).append(case)
    chosen = [rng.choice(group) for group in by_category.values()]
    rest = [c for c in cases if c not in chosen]
    return chosen + rng.sample(rest, max(0, min(size - len(chosen), len(rest))))


def run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def commands(root: Path) -> dict[str, list[str]]:
    state = f"sqlite:///{root.parent}/state.db"
    decl = str(root / DECL)
    return {"validate": ["validate", decl, "--root", str(root)],
            "dry-run": ["--dry-run", decl, "--root", str(root), "--state", state]}


def problems_with(case: HostileCase, command: str, code: int, output: str) -> list[str]:
    found = []
    if code != 1:
        found.append(f"{command}: exit {code}")
    if "Traceback" in output or "internal error" in output:
        found.append(f"{command}: crashed")
    if case.positioned and not POSITION.search(output):
        found.append(f"{command}: no FILE:LINE:COL")
    return [f"{case.name}: {p}\n{output[:600]}" for p in found]


def check_cases(cases: list[HostileCase], base: dict[str, bytes], sandbox: RunningSandbox, tmp_path: Path,
                capsys: pytest.CaptureFixture[str]) -> list[str]:
    failures: list[str] = []
    controls = SandboxControls.of(sandbox)
    for index, case in enumerate(cases):
        root = materialize(case, base, tmp_path / f"case-{index}")
        for command, argv in commands(root).items():
            code, output = run_in_process(argv, capsys)
            failures += problems_with(case, command, code, output)
        reached = controls.total()
        if reached:
            failures.append(f"{case.name}: {reached} request(s) reached the sandbox")
            controls.reset()
    return failures


def test_the_corpus_holds_at_least_200_broken_inputs(corpus: tuple[dict[str, bytes], list[HostileCase]]) -> None:
    """The generated corpus is large and covers every kind of breakage the measures table names."""
    _, cases = corpus
    categories = {case.category for case in cases}
    record("hostile.corpus_size", len(cases), categories=len(categories))
    assert len(cases) >= 200
    assert {"syntax", "type", "unknown", "reference", "duplicate-name", "duplicate-key", "alias", "huge", "bytes",
            "tag", "path", "symlink", "csv", "fifo"} <= categories


def test_the_unbroken_base_is_valid_and_its_dry_run_reads_the_sandbox(
    corpus: tuple[dict[str, bytes], list[HostileCase]], sandbox: RunningSandbox, tmp_path: Path, secrets: None,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: the base repository without any breakage validates, and its dry run does reach the
    backends (so a request count of 0 for the broken cases means something)."""
    base, _ = corpus
    root = materialize(HostileCase("base/unbroken"), base, tmp_path)
    argv = commands(root)
    assert run_in_process(argv["validate"], capsys)[0] == 0
    code, output = run_in_process(argv["dry-run"], capsys)
    reached = SandboxControls.of(sandbox).total()
    SandboxControls.of(sandbox).reset()
    assert code == 0, output
    assert reached > 0


@pytest.mark.timeout(300)
def test_a_sample_of_hostile_inputs_is_refused_before_any_request(
    corpus: tuple[dict[str, bytes], list[HostileCase]], sandbox: RunningSandbox, tmp_path: Path, secrets: None,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """60 cases (every category): validate and dry-run exit 1 with positions, no traceback, no request."""
    base, cases = corpus
    chosen = sample([c for c in cases if not c.needs_subprocess], SAMPLE, seed=20)
    SandboxControls.of(sandbox).reset()
    failures = check_cases(chosen, base, sandbox, tmp_path, capsys)
    record("hostile.inputs_tried", len(chosen), run="sample")
    assert failures == []


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_hostile_input_is_refused_before_any_request(
    corpus: tuple[dict[str, bytes], list[HostileCase]], sandbox: RunningSandbox, tmp_path: Path, secrets: None,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole corpus: validate and dry-run exit 1 with positions, no traceback, no request."""
    base, cases = corpus
    SandboxControls.of(sandbox).reset()
    started = time.monotonic()
    chosen = [c for c in cases if not c.needs_subprocess]
    failures = check_cases(chosen, base, sandbox, tmp_path, capsys)
    record("hostile.inputs_tried", len(chosen), run="all", failures=len(failures),
           seconds=round(time.monotonic() - started, 1))
    assert failures == []


def run_process(root: Path, argv: list[str]) -> tuple[int, str]:
    """Exit code and output of a real process; -1 when it is still running after the timeout."""
    env = {**os.environ, **SECRET_ENV, "NO_COLOR": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "reconciler", *argv], cwd=root, env=env, capture_output=True,
                              text=True, timeout=SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        return -1, f"still running after {SUBPROCESS_TIMEOUT}s (blocked?): {exc.stderr!r}"
    return done.returncode, done.stdout + done.stderr


def check_in_processes(case: HostileCase, base: dict[str, bytes], tmp_path: Path) -> list[str]:
    root = materialize(case, base, tmp_path)
    failures: list[str] = []
    for command, argv in commands(root).items():
        code, output = run_process(root, argv)
        failures += problems_with(case, command, code, output)
        if code == -1:
            break  # the next command would block the same way
    return failures


PROCESS_CASES = ("tag/python-object-apply", "alias/billion-laughs", "symlink/package-to-etc-hostname")


@pytest.mark.parametrize("name", PROCESS_CASES)
def test_hostile_input_is_refused_by_a_real_process(
    name: str, corpus: tuple[dict[str, bytes], list[HostileCase]], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """As a real ``reconcile`` process: exit 1, a position, no traceback, no request."""
    base, cases = corpus
    case = next(c for c in cases if c.name == name)
    SandboxControls.of(sandbox).reset()
    assert check_in_processes(case, base, tmp_path) == []
    assert SandboxControls.of(sandbox).total() == 0


@pytest.mark.parametrize("name", ["fifo/yaml-named-pipe", "fifo/recipients-named-pipe", "fifo/package-named-pipe"])
def test_a_named_pipe_in_the_repository_is_refused_not_read(
    name: str, corpus: tuple[dict[str, bytes], list[HostileCase]], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A FIFO where a YAML, CSV or package file is expected is reported (not opened, which would block
    forever waiting for a writer): exit 1 promptly, no request."""
    base, cases = corpus
    case = next(c for c in cases if c.name == name)
    SandboxControls.of(sandbox).reset()
    assert check_in_processes(case, base, tmp_path) == []
    assert SandboxControls.of(sandbox).total() == 0
