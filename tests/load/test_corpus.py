"""The input corpus: every file or folder under ``corpus/invalid`` must fail validation exactly as its
expectations say, every one under ``corpus/valid`` must pass. A new case is a new file.

Case format. A single-file case carries its expectations in leading comment lines; a folder case
holds them in ``expect.txt`` (without the ``# `` prefix), and its ``*.yaml``/``*.yml`` files are the input:

    # expect: 7:15 spec.auth.password: secrets must be references     (LINE:COL and a message fragment)
    # expect: - file is 2,003 bytes, over the limit                   (a problem without a position)
    # expect: recipients.csv:4:1 duplicate recipient                  (folder cases name the file)
    # args: --max-file-bytes 200                                      (extra command-line arguments)
    # secret: hunter2                                                 (must never appear in any output)
    # symlink: packages/evil.bin -> /etc/hostname                     (created before the run)

Each case runs through the real command (``reconcile validate --root <case> <case>``) in text and in
JSON form. Invalid cases must exit 1 with exactly the expected errors (same file, line and column, the
fragment in the message) and no traceback; valid cases must exit 0 with no error.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.cli import validate

CORPUS = Path(__file__).parent / "corpus"
_DIAGNOSTIC = re.compile(r"^(?P<file>.+?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<severity>error|warning): (?P<message>.*)$")
_WHERE = re.compile(r"^(?:(?P<file>[^\s:]+):)?(?:(?P<line>\d+):(?P<col>\d+)|-)$")


@dataclass(frozen=True)
class Expectation:
    file: str
    line: int  # 0: no position
    col: int
    fragment: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else f"{self.file}:-"
        return f"{where} {self.fragment}"


@dataclass
class Case:
    name: str
    path: Path
    valid: bool
    expectations: list[Expectation] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    symlinks: dict[str, str] = field(default_factory=dict)


def _header_lines(case_path: Path) -> list[str]:
    if case_path.is_dir():
        expect = case_path / "expect.txt"
        return expect.read_text(encoding="utf-8").splitlines() if expect.exists() else []
    lines = []
    for raw in case_path.read_bytes().split(b"\n"):
        text = raw.decode("latin-1")
        if text.startswith("# "):
            lines.append(text[2:])
    return lines


def read_case(case_path: Path, *, valid: bool) -> Case:
    case = Case(case_path.stem if case_path.is_file() else case_path.name, case_path, valid)
    default_file = case_path.name if case_path.is_file() else ""
    for line in _header_lines(case_path):
        key, _, value = line.partition(": ")
        if key == "expect":
            where, _, fragment = value.partition(" ")
            match = _WHERE.match(where)
            assert match, f"{case_path}: bad expectation {line!r}"
            case.expectations.append(Expectation(match["file"] or default_file, int(match["line"] or 0),
                                                 int(match["col"] or 0), fragment.strip()))
        elif key == "args":
            case.args = value.split()
        elif key == "secret":
            case.secrets.append(value)
        elif key == "symlink":
            link, _, target = value.partition(" -> ")
            case.symlinks[link.strip()] = target.strip()
    return case


def cases(kind: str) -> list[Case]:
    folder = CORPUS / kind
    return [read_case(path, valid=kind == "valid") for path in sorted(folder.iterdir())]


def materialize(case: Case, workdir: Path) -> Path:
    """Copy the case into ``workdir`` (its own repository root) and create its symlinks."""
    if case.path.is_dir():
        shutil.copytree(case.path, workdir, symlinks=True, dirs_exist_ok=True)
        (workdir / "expect.txt").unlink(missing_ok=True)
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(case.path, workdir / case.path.name)
    for link, target in case.symlinks.items():
        (workdir / link).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, workdir / link)
    return workdir


def run_validate(argv: list[str]) -> tuple[int, str, str]:
    """Run ``reconcile validate ARGV`` in-process through its argument parser."""
    parser = argparse.ArgumentParser(prog="reconcile")
    validate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["validate", *argv])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = args.func(args)
    return code, out.getvalue(), err.getvalue()


def run_case(case: Case, workdir: Path, *, output: str = "text") -> tuple[int, str, str]:
    materialize(case, workdir)
    target = case.path.name if case.path.is_file() else "."
    previous = os.getcwd()
    os.chdir(workdir)
    try:
        return run_validate(["--root", ".", "--output", output, *case.args, target])
    finally:
        os.chdir(previous)


def text_diagnostics(stderr: str) -> list[tuple[str, int, int, str, str]]:
    found = []
    for line in stderr.splitlines():
        match = _DIAGNOSTIC.match(line)
        if match:
            found.append((match["file"], int(match["line"] or 0), int(match["col"] or 0), match["severity"],
                          match["message"]))
    return found


def unmatched(expectations: list[Expectation], errors: list[tuple[str, int, int, str]]) -> tuple[list, list]:
    """Pair each expectation with one error at its position whose message holds its fragment."""
    left = list(errors)
    missing = []
    for expected in expectations:
        for error in left:
            if error[:3] == (expected.file, expected.line, expected.col) and expected.fragment in error[3]:
                left.remove(error)
                break
        else:
            missing.append(expected)
    return missing, left


INVALID = cases("invalid")
VALID = cases("valid")


def test_the_corpus_is_large_enough() -> None:
    """The corpus holds at least 70 invalid cases and some valid ones."""
    assert len(INVALID) >= 70
    assert len(VALID) >= 5
    assert all(case.expectations for case in INVALID), [c.name for c in INVALID if not c.expectations]


@pytest.mark.parametrize("case", INVALID, ids=[case.name for case in INVALID])
def test_invalid_case_reports_exactly_its_problems(case: Case, tmp_path: Path) -> None:
    """An invalid input exits 1 with exactly the expected errors at the expected positions, no traceback."""
    started = time.perf_counter()
    code, out, err = run_case(case, tmp_path / "text")
    elapsed = time.perf_counter() - started
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    diagnostics = text_diagnostics(err)
    assert len(diagnostics) == len([line for line in err.splitlines() if line.strip()]) - 1, err  # + the summary
    errors = [(f, line, col, message) for f, line, col, severity, message in diagnostics if severity == "error"]
    missing, unexpected = unmatched(case.expectations, errors)
    assert not missing and not unexpected, f"missing: {[str(m) for m in missing]}\nunexpected: {unexpected}\n{err}"
    assert elapsed < 5, f"took {elapsed:.1f}s"


@pytest.mark.parametrize("case", INVALID, ids=[case.name for case in INVALID])
def test_invalid_case_json_output_matches_text(case: Case, tmp_path: Path) -> None:
    """``--output json`` reports the same problems as the text form, and no secret."""
    code, out, err = run_case(case, tmp_path / "json", output="json")
    assert code == 1
    document = json.loads(out)
    assert document["valid"] is False
    errors = [(d["file"], d["line"], d["col"], d["message"]) for d in document["diagnostics"] if d["severity"] == "error"]
    missing, unexpected = unmatched(case.expectations, errors)
    assert not missing and not unexpected
    for secret in case.secrets:
        assert secret not in out + err


@pytest.mark.parametrize("case", [c for c in INVALID if c.secrets], ids=[c.name for c in INVALID if c.secrets])
def test_literal_secret_never_appears_in_output(case: Case, tmp_path: Path) -> None:
    """A secret written literally in YAML is reported without being repeated anywhere in the output."""
    code, out, err = run_case(case, tmp_path / "secret")
    assert code == 1
    for secret in case.secrets:
        assert secret not in out + err


@pytest.mark.parametrize("case", VALID, ids=[case.name for case in VALID])
def test_valid_case_passes(case: Case, tmp_path: Path) -> None:
    """A valid input exits 0 with no error and says how much it read."""
    code, out, err = run_case(case, tmp_path / "valid")
    assert code == 0, err
    assert out.startswith("valid: ")
    assert "error" not in err
