"""The CLI tests' sandbox (one per module) and a fresh repository of declarations against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.engine import sandbox_repo as repo


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=1)) as running:
        yield running


@pytest.fixture
def decl(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``campaigns.d`` of a new git repository with the backends and a package; the working directory is the
    test's own folder and the backends' secrets are in the environment."""
    SandboxControls.of(sandbox).reset()
    for key, value in repo.SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return repo.make_repo(tmp_path / "ops", sandbox)
