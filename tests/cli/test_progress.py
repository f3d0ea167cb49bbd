"""Progress of a long apply: on a terminal a live display (actions, SMS with rate), without one a line
every 10 s on stderr; stdout carries only the plan and the report either way."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.actions import Action, Verb
from reconciler.cli.progress import ApplyProgress
from reconciler.engine.execute import Outcome, OutcomeStatus
from reconciler.model import Kind, ResourceKey
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from tests.engine import crash


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=10, seed=3,
                                        sms_gateway={"send_rate_per_port": 1000.0})) as running:
        yield running


def test_the_line_gives_totals_rate_and_time_left() -> None:
    now = [100.0]
    progress = ApplyProgress(clock=lambda: now[0])
    progress.planned(4, 1000)
    action = Action("a", Verb.SEND_SMS, ResourceKey(Kind.CAMPAIGN, "c"), "gw", {})
    progress.done(Outcome(action, OutcomeStatus.SUCCEEDED))
    progress.done(Outcome(action, OutcomeStatus.FAILED))
    progress.sent(100)
    now[0] = 102.0
    progress.sent(100)
    assert progress.line() == ("progress: 2/4 actions (1 not done), 200/1,000 SMS at 100/s, about 8 s left; "
                               "2 s elapsed")


def test_without_a_terminal_a_progress_line_comes_every_interval_on_stderr(sandbox: RunningSandbox,
                                                                          tmp_path: Path) -> None:
    """Every 10 s by default; 1 s here (``RECONCILE_PROGRESS_SECONDS``) to keep the test short."""
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=160, per_second=40)
    done = subprocess.run(crash.reconcile_command(repo, f"sqlite:///{tmp_path / 's.db'}"), cwd=repo,
                          env={**crash.environment(), "RECONCILE_PROGRESS_SECONDS": "1"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 2 and "/160 SMS at" in lines[-1] and "actions" in lines[0]
    assert "progress:" not in done.stdout and "Applied in" in done.stdout


def test_on_a_terminal_the_display_shows_actions_and_messages(sandbox: RunningSandbox, tmp_path: Path) -> None:
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=200, per_second=100)
    command = shlex.join(crash.reconcile_command(repo, f"sqlite:///{tmp_path / 's.db'}"))
    shown = subprocess.run(["script", "-qfec", command, "/dev/null"], cwd=repo, env=crash.environment(),
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stdout
    assert "actions" in shown.stdout and "SMS" in shown.stdout and "/s" in shown.stdout
    assert "Applied in" in shown.stdout
