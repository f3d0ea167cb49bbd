"""Unreadable is not absent (issue 20): a folder or file under a PATH that cannot be read is an error
naming it, in validate, plan and apply, never skipped. Skipping it would make the campaigns declared
there look removed from git, and ``--prune=delete`` would delete them.

Two kinds of test: real processes (``reconcile`` run with ``chmod 000`` on the folder; as root, with the
capabilities that bypass file permissions dropped through ``setpriv``, since root reads anything), and
in-process tests that make ``os.scandir``/``os.stat``/``open`` raise ``PermissionError`` for one path
(these run everywhere, also where neither of the above is possible).
"""

from __future__ import annotations

import builtins
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from reconciler.load import load_desired_state
from reconciler.load import loader as loader_module
from reconciler.load import repo_files as repo_files_module
from reconciler.load.loader import LoadResult

CONSEQUENCE = ("what it declares is unknown, so nothing is planned from this load (a campaign declared there would "
               "otherwise count as removed from git, and --prune would stop or delete it)")
BACKENDS = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {name: yate}
spec:
  type: yateota
  url: http://127.0.0.1:9
  auth: {secret: {env: YATE_SECRET}}
"""
CAMPAIGN = """\
apiVersion: reconciler/v1
kind: Campaign
metadata: {name: applet}
spec:
  backend: yate
  campaignId: 147
"""
DROP_FILE_CAPABILITIES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def make_repo(root: Path) -> Path:
    """``decl/backends.yaml`` plus ``decl/sub/campaign.yaml`` and ``decl/other.yaml`` (both campaigns)."""
    decl = root / "decl"
    (decl / "sub").mkdir(parents=True)
    (decl / "backends.yaml").write_text(BACKENDS)
    (decl / "sub" / "campaign.yaml").write_text(CAMPAIGN)
    (decl / "other.yaml").write_text(CAMPAIGN.replace("applet", "other").replace("147", "148"))
    return decl


def _denied(prefix: list[str], folder: Path) -> bool:
    """True when a process started with ``prefix`` is refused reading ``folder``."""
    probe = "import os, sys\ntry:\n    os.listdir(sys.argv[1])\nexcept PermissionError:\n    sys.exit(3)\n"
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", probe, str(folder)], capture_output=True, timeout=30)
    except OSError:
        return False
    return done.returncode == 3


@pytest.fixture
def unprivileged(tmp_path: Path) -> list[str]:
    """The command prefix under which ``chmod 000`` really stops reads (skip when there is none)."""
    folder = tmp_path / "probe"
    folder.mkdir()
    folder.chmod(0)
    try:
        for prefix in ([], DROP_FILE_CAPABILITIES if shutil.which("setpriv") else None):
            if prefix is not None and _denied(prefix, folder):
                return prefix
    finally:
        folder.chmod(0o755)
    pytest.skip("permissions cannot be enforced here (root without setpriv or without CAP_SETPCAP)")


def run(prefix: list[str], cwd: Path, *argv: str) -> tuple[int, str]:
    env = {**os.environ, "NO_COLOR": "1", "YATE_SECRET": "s3cret"}
    done = subprocess.run([*prefix, sys.executable, "-m", "reconciler", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("command", [
    ["validate", "--root", ".", "decl"],
    ["--dry-run", "--root", ".", "--no-state", "decl"],
    ["apply", "--root", ".", "--prune=delete", "--state", "sqlite:///state.db", "decl"],
], ids=["validate", "plan", "apply-prune-delete"])
def test_an_unreadable_folder_is_an_error_in_a_real_process(unprivileged: list[str], tmp_path: Path,
                                                            command: list[str]) -> None:
    """``chmod 000 decl/sub``: every command exits 1 naming ``decl/sub``; nothing is planned or pruned."""
    decl = make_repo(tmp_path)
    (decl / "sub").chmod(0)
    try:
        code, output = run(unprivileged, tmp_path, *command)
    finally:
        (decl / "sub").chmod(0o755)
    assert code == 1, output
    assert f"decl/sub: error: cannot read this folder: Permission denied; {CONSEQUENCE}" in output.splitlines()
    assert "Traceback" not in output and "Plan:" not in output and "delete" not in output.replace(
        "--prune would stop or delete it", "")


def test_an_unreadable_yaml_file_is_an_error_in_a_real_process(unprivileged: list[str], tmp_path: Path) -> None:
    """``chmod 000 decl/other.yaml``: validate exits 1 naming the file."""
    decl = make_repo(tmp_path)
    (decl / "other.yaml").chmod(0)
    try:
        code, output = run(unprivileged, tmp_path, "validate", "--root", ".", "decl")
    finally:
        (decl / "other.yaml").chmod(0o644)
    assert code == 1, output
    assert f"decl/other.yaml: error: cannot read the file: Permission denied; {CONSEQUENCE}" in output.splitlines()


# --- in process, permissions simulated -------------------------------------------------------------


def refuse(monkeypatch: pytest.MonkeyPatch, function: str, victim: Path, module: object = os) -> None:
    """Make ``module.function`` raise ``PermissionError`` for ``victim`` (as it would after ``chmod 000``)."""
    original = getattr(module, function, None) or getattr(builtins, function)

    def refusing(path: object, *args: object, **kwargs: object) -> object:
        if isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)) == str(victim):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(module, function, refusing, raising=False)


def problems(result: LoadResult) -> list[tuple[str, int, int, str, str]]:
    return [(d.file, d.line, d.col, d.severity.value, d.message) for d in result.diagnostics]


def test_a_subfolder_that_cannot_be_listed_is_an_error_naming_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated ``chmod 000 decl/sub``: one error naming the folder; the load is invalid (nothing planned)."""
    decl = make_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    refuse(monkeypatch, "scandir", decl / "sub")
    result = load_desired_state([Path("decl")], root=tmp_path)
    assert problems(result) == [
        ("decl/sub", 0, 0, "error", f"cannot read this folder: Permission denied; {CONSEQUENCE}")]
    assert result.desired is None
    assert result.files == ("decl/backends.yaml", "decl/other.yaml")


def test_a_path_that_cannot_be_listed_is_an_error_not_an_empty_folder(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The PATH itself unreadable: an error (not the "no *.yaml files" warning); its parent unsearchable too."""
    decl = make_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    refuse(monkeypatch, "scandir", decl)
    result = load_desired_state([Path("decl")], root=tmp_path)
    assert problems(result) == [("decl", 0, 0, "error", f"cannot read this folder: Permission denied; {CONSEQUENCE}")]
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    refuse(monkeypatch, "stat", decl / "sub")  # what os.stat says when a parent folder may not be searched
    result = load_desired_state([Path("decl/sub")], root=tmp_path)
    assert problems(result) == [("decl/sub", 0, 0, "error", f"cannot read: Permission denied; {CONSEQUENCE}")]


def test_an_unreadable_yaml_file_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated ``chmod 000 decl/sub/campaign.yaml``: an error naming it; references into it are softened."""
    decl = make_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    refuse(monkeypatch, "open", decl / "sub" / "campaign.yaml", module=loader_module)
    assert loader_module.open is not builtins.open  # type: ignore[attr-defined]
    result = load_desired_state([Path("decl")], root=tmp_path)
    assert problems(result) == [("decl/sub/campaign.yaml", 0, 0, "error",
                                 f"cannot read the file: Permission denied; {CONSEQUENCE}")]
    assert result.desired is None


def test_a_reference_into_an_unreadable_folder_says_it_may_be_declared_there(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With the backends' folder unreadable, a campaign naming one says the name may be declared there."""
    decl = make_repo(tmp_path)
    (decl / "backends").mkdir()
    (decl / "backends.yaml").rename(decl / "backends" / "backends.yaml")
    monkeypatch.chdir(tmp_path)
    refuse(monkeypatch, "scandir", decl / "backends")
    messages = [message for *_, message in problems(load_desired_state([Path("decl")], root=tmp_path))]
    assert messages[0] == f"cannot read this folder: Permission denied; {CONSEQUENCE}"
    assert messages[1].endswith("(some files could not be read; it may be declared there)")


def test_an_unreadable_file_named_in_yaml_is_an_error_at_the_field(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A CA file (or secret file) that exists but cannot be read is reported when loading, at the field
    naming it, not at connect time halfway through an apply."""
    decl = make_repo(tmp_path)
    (decl / "ca.pem").write_bytes(trustme.CA().cert_pem.bytes())
    (decl / "backends.yaml").write_text(BACKENDS + "  tls: {caFile: ca.pem}\n")
    monkeypatch.chdir(tmp_path)
    assert problems(load_desired_state([Path("decl")], root=tmp_path)) == []
    refuse(monkeypatch, "open", decl / "ca.pem", module=repo_files_module)
    assert problems(load_desired_state([Path("decl")], root=tmp_path)) == [
        ("decl/backends.yaml", 8, 17, "error", "spec.tls.caFile: file `ca.pem` cannot be read: Permission denied "
                                               "(looked at decl/ca.pem)")]


def test_an_unreadable_file_named_in_yaml_is_an_error_in_a_real_process(unprivileged: list[str],
                                                                        tmp_path: Path) -> None:
    decl = make_repo(tmp_path)
    (decl / "ca.pem").write_bytes(trustme.CA().cert_pem.bytes())
    (decl / "backends.yaml").write_text(BACKENDS + "  tls: {caFile: ca.pem}\n")
    (decl / "ca.pem").chmod(0)
    try:
        code, output = run(unprivileged, tmp_path, "validate", "--root", ".", "decl")
    finally:
        (decl / "ca.pem").chmod(0o644)
    assert code == 1, output
    assert ("decl/backends.yaml:8:17: error: spec.tls.caFile: file `ca.pem` cannot be read: Permission denied "
            "(looked at decl/ca.pem)") in output.splitlines()
