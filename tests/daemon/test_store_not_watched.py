"""A state store inside the watched tree (``--state sqlite:///campaigns.d/.state.db``) is written by every
pass, with its journal and lock files: none of them may trigger the file watcher (each pass would
trigger the next). An edit of a declaration next to it still does. The daemon runs in-process on a clock the
test moves: three resync passes take no waiting."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from watchfiles import Change

from reconciler.daemon.clock import ManualClock
from reconciler.daemon.triggers import DeclarationFilter, ignore_files, store_files
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.in_process import resync, until, watching
from tests.engine import sandbox_repo as repo


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=20, seed=8)) as running:
        yield running


async def test_the_store_inside_the_watched_tree_triggers_nothing(sandbox: RunningSandbox, tmp_path: Path) -> None:
    SandboxControls.of(sandbox).reset()
    decl = repo.make_repo(tmp_path / "ops", sandbox)
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001"]))
    state_url = f"sqlite:///{decl}/.state.db"
    ignore_files(store_files(state_url))  # as ``reconcile watch`` does before it starts
    clock = ManualClock()
    with capture_logs() as logs:
        async with watching(decl, clock, state_url=state_url, environ={**os.environ, **repo.SECRETS}) as service:
            assert (decl / ".state.db").exists()
            for _ in range(3):  # resync passes, each of which writes to the store
                await resync(service, clock)
            await asyncio.sleep(0.5)  # ten debounce intervals: a store write would have been reported
            assert file_triggers(logs) == []
            repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001"], state="stopped"))
            await until(lambda: file_triggers(logs), timeout=10)
            assert file_triggers(logs) == [["rollout.yaml"]]


def file_triggers(logs: list[dict[str, Any]]) -> list[list[str]]:
    return [event["changed"] for event in logs if event["event"] == "trigger.files"]


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
