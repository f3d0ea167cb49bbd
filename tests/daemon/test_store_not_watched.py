"""A state store inside the watched tree (``--state sqlite:///campaigns.d/.state.db``) is written by every
pass, with its journal and lock files: none of them may trigger the file watcher (each pass would
trigger the next). An edit of a declaration next to it still does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.daemon.triggers import DeclarationFilter, store_files
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.engine import crash
from tests.engine import sandbox_repo as repo
from watchfiles import Change


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=8)) as running:
        yield running


def file_triggers(daemon: DaemonProcess) -> list[list[str]]:
    found = []
    for line in daemon.logs().splitlines():
        if '"trigger.files"' in line:
            found.append(json.loads(line)["changed"])
    return found


def test_the_store_inside_the_watched_tree_triggers_nothing(sandbox: RunningSandbox, tmp_path: Path) -> None:
    repo.reset(sandbox)
    decl = repo.make_repo(tmp_path / "ops", sandbox)
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001"]))
    daemon = DaemonProcess(tmp_path, str(decl), "--state", f"sqlite:///{decl}/.state.db", "--resync", "1",
                           "--debounce-ms", "50", env={**repo.SECRETS, **crash.environment()})
    try:
        daemon.wait_ready()
        assert (decl / ".state.db").exists()
        time.sleep(4)  # several resync passes, each of which writes to the store
        assert file_triggers(daemon) == []
        repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001"], state="stopped"))
        eventually(lambda: file_triggers(daemon), timeout=10)
        assert file_triggers(daemon) == [["rollout.yaml"]]
        assert daemon.terminate() == 0
    finally:
        daemon.stop()


def test_the_filter_ignores_the_store_its_journal_and_lock_but_nothing_else(tmp_path: Path) -> None:
    ignored = store_files(f"sqlite:///{tmp_path}/decl/.state.db")
    watch = DeclarationFilter(ignored)
    for name in (".state.db", ".state.db-wal", ".state.db-shm", ".state.db-journal", ".state.db.lock"):
        assert not watch(Change.modified, str(tmp_path / "decl" / name)), name
    for name in ("campaigns.yaml", "state.db", ".state.db.yaml", "other.db-wal"):
        assert watch(Change.modified, str(tmp_path / "decl" / name)), name
    assert store_files("postgresql://db.example/reconciler") == ()
    relative = store_files("sqlite:///decl/.state.db", base_dir=tmp_path)
    assert relative[0] == tmp_path / "decl" / ".state.db"
