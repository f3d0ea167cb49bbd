"""``reconcile validate``: exit codes, the FILE:LINE:COL text contract, JSON output, defaults."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import validate

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^[^:]+:\d+:\d+: error: .+$")
ENTRY = ["-m", "reconciler"]  # the real entry point, as installed


def run(*argv: str, cwd: Path = REPO) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="reconcile")
    validate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["validate", *argv])
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = args.func(args)
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def broken_repo(tmp_path: Path) -> Path:
    (tmp_path / "backends.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Backend\nmetadata: {name: iot}\nspec:\n  type: iot\n"
        "  url: http://127.0.0.1:8702\n  auth: {username: admin, password: hunter2}\n")
    return tmp_path


def test_quickstart_is_valid_through_the_real_entry_point() -> None:
    """``python -m``-style invocation of ``reconcile validate examples/quickstart`` exits 0."""
    done = subprocess.run([sys.executable, *ENTRY, "validate", "examples/quickstart"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "valid: 20 resources in 5 files"
    assert done.stderr == ""


def test_broken_input_exits_1_through_the_real_entry_point(tmp_path: Path) -> None:
    """The real entry point prints diagnostics and exits 1, without a traceback."""
    done = subprocess.run([sys.executable, *ENTRY, "validate", str(broken_repo(tmp_path))], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stdout + done.stderr


def test_help_lists_the_validate_command() -> None:
    """``reconcile --help`` shows validate with its one-line summary."""
    done = subprocess.run([sys.executable, *ENTRY, "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert re.search(r"^\s+validate\s+check the YAML files", done.stdout, re.MULTILINE), done.stdout


def test_each_problem_is_one_file_line_col_line_on_stderr(tmp_path: Path) -> None:
    """Text output: one ``FILE:LINE:COL: error: MESSAGE`` line per problem, then a summary; nothing on stdout."""
    code, out, err = run(str(broken_repo(tmp_path)))
    lines = err.splitlines()
    assert code == 1
    assert out == ""
    assert all(LINE.match(line) for line in lines[:-1]), lines
    assert lines[-1] == "2 problems in 1 file"
    assert f"{tmp_path}/backends.yaml:5:9: error: spec.type: found `iot`" in err
    assert "hunter2" not in err


def test_file_names_are_shown_as_given(tmp_path: Path) -> None:
    """A relative PATH gives relative file names in diagnostics."""
    broken_repo(tmp_path)
    code, _, err = run(".", cwd=tmp_path)
    assert code == 1
    assert err.startswith("backends.yaml:5:9: error:")


def test_json_output_is_one_object_on_stdout(tmp_path: Path) -> None:
    """``--output json`` prints valid, diagnostics, resources and files; stderr stays empty."""
    code, out, err = run("--output", "json", str(broken_repo(tmp_path)))
    document = json.loads(out)
    assert code == 1 and err == ""
    assert document["valid"] is False and document["resources"] == 1 and document["files"] == 1
    first = document["diagnostics"][0]
    assert set(first) == {"message", "file", "line", "col", "severity", "resource"}
    assert (first["line"], first["col"], first["severity"], first["resource"]) == (5, 9, "error", "Backend/iot")


def test_json_output_for_a_valid_repository() -> None:
    """A valid repository gives ``valid: true`` and no diagnostics."""
    code, out, _ = run("--output", "json", "examples/quickstart")
    assert code == 0
    assert json.loads(out) == {"valid": True, "diagnostics": [], "resources": 20, "files": 5}


def test_path_defaults_to_campaigns_d() -> None:
    """Without PATH the command reads ``campaigns.d/`` under the working directory."""
    code, out, err = run()
    assert (code, err) == (0, "")
    assert out == "valid: 11 resources in 5 files\n"


def test_a_missing_path_is_a_problem(tmp_path: Path) -> None:
    """A PATH that does not exist is reported and fails the run."""
    code, _, err = run(str(tmp_path / "nowhere"))
    assert code == 1
    assert f"{tmp_path}/nowhere: error: no such file or directory" in err


def test_a_folder_without_yaml_is_a_warning_not_an_error(tmp_path: Path) -> None:
    """An empty folder is valid (nothing declared) but the warning says no file was found."""
    code, out, err = run(str(tmp_path))
    assert code == 0
    assert "warning: no *.yaml or *.yml files" in err
    assert out == "valid: 0 resources in 0 files\n"


def test_max_file_bytes_applies(tmp_path: Path) -> None:
    """``--max-file-bytes`` refuses larger YAML files before reading them."""
    code, _, err = run("--max-file-bytes", "10", str(broken_repo(tmp_path)))
    assert code == 1
    assert "over the limit of 10 bytes" in err


@pytest.mark.parametrize("value", ["0", "-5", "ten"])
def test_max_file_bytes_must_be_a_positive_number(value: str) -> None:
    """A bad ``--max-file-bytes`` is a usage error (argparse exits 2)."""
    with pytest.raises(SystemExit) as exited, contextlib.redirect_stderr(io.StringIO()):
        run("--max-file-bytes", value)
    assert exited.value.code == 2


def test_root_option_confines_named_files(tmp_path: Path) -> None:
    """With ``--root`` a package file outside the root is refused even if it exists."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"x")
    (repo / "p.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Backend\nmetadata: {name: iot}\nspec: {type: iot-campaigns, "
        "url: 'http://x', auth: {username: a, password: {env: P}}}\n---\napiVersion: reconciler/v1\nkind: Package\n"
        "metadata: {name: p}\nspec: {backend: iot, file: ../outside.bin}\n")
    assert run("--root", str(repo), str(repo))[0] == 1
    assert run("--root", str(tmp_path), str(repo))[0] == 0


def test_every_problem_stays_on_one_line(tmp_path: Path) -> None:
    """A file name or a value with a newline or an escape sequence cannot break the one-line format."""
    weird = tmp_path / "we\nird.yaml"
    weird.write_text("apiVersion: reconciler/v1\nkind: \"Back\\nend\\u001b[31m\"\n")
    code, _, err = run(str(tmp_path))
    lines = err.splitlines()
    assert code == 1
    assert len(lines) == 2, lines
    assert "we\\nird.yaml:2:7: error: kind: unknown kind `Back\\nend\\u001b[31m`" in lines[0]
