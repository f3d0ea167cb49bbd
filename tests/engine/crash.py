"""Kill a real ``reconcile`` process at random moments and restart it: the crash-test harness."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.sandbox.run import RunningSandbox
from reconciler.sandbox.testing import SandboxControls

START_TIMEOUT_S = 60.0  # the longest a run may take to begin writing before its kill delay starts anyway


@dataclass
class CrashRun:
    kills: int = 0
    finished_early: int = 0
    delays: list[float] = field(default_factory=list)

    def attempt(self, command: list[str], *, cwd: Path, env: dict[str, str], delay: float,
                started: Callable[[], bool] | None = None) -> bool:
        """Run ``command``, SIGKILL it after ``delay`` seconds unless it finished first; record which
        happened. True when it was killed. With ``started``, the delay counts from when ``started()`` first
        holds (the process began writing), so a slow start-up on a busy machine cannot push every kill
        before the work it is meant to interrupt."""
        self.delays.append(round(delay, 3))
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if started is not None:
            deadline = time.monotonic() + START_TIMEOUT_S
            while process.poll() is None and not started() and time.monotonic() < deadline:
                time.sleep(0.02)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.kills += 1
            return True
        self.finished_early += 1
        return False


def sms_repo(root: Path, sandbox: RunningSandbox, *, backend: str, recipients: int,
             per_second: float | None = None, timeout_seconds: float | None = None) -> Path:
    """A repository with one SMS campaign to ``recipients`` numbers; ``per_second`` limits its rate, so
    that the send outlasts every kill of the test (a kill after the send finished tests nothing)."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    numbers = "\n".join(f"49170{i:07d},area {i % 7}" for i in range(recipients))
    (root / "recipients.csv").write_text("number,area\n" + numbers + "\n", encoding="utf-8")
    limits = f"\n  limits: {{timeoutSeconds: {timeout_seconds}}}" if timeout_seconds else ""
    if backend == "gw":
        backend_doc = f"""\
kind: Backend
metadata: {{name: gw}}
spec:
  type: sms-gateway
  url: "{sandbox.url('sms-gateway')}"
  auth: {{username: admin, password: {{env: GW_PASSWORD}}}}
  tls: {{verify: false}}{limits}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: notice-ports}}
spec: {{campaign: notice, ports: [0, 1, 2, 3, 4, 5, 6, 7]}}"""
        extra = ""
    else:
        backend_doc = f"""\
kind: Backend
metadata: {{name: og}}
spec:
  type: ogangi
  url: "{sandbox.url('ogangi')}"
  auth: {{instanceId: "7", publicKey: sandbox-public, privateKey: {{env: OG_PRIVATE_KEY}}}}{limits}"""
        extra = '\n  from: "12345"'
    rate = f"\n  rate: {{perSecond: {per_second}}}" if per_second else ""
    (root / "sms.yaml").write_text(f"""\
apiVersion: reconciler/v1
{backend_doc}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: notice}}
spec:
  backend: {backend}
  text: "Maintenance tonight in #param#"{extra}
  recipients: {{file: recipients.csv}}{rate}
""", encoding="utf-8")
    return root


def reconcile_command(repo: Path, state: str | None = None) -> list[str]:
    # the store is new and Ogangi cannot be asked: the operator's yes, as after a fresh sandbox
    return [sys.executable, "-m", "reconciler", str(repo), "--state",
            state or f"sqlite:///{repo}/.reconciler/state.db", "--risk-duplicate-sms"]


def environment() -> dict[str, str]:
    return {**os.environ, "GW_PASSWORD": "admin", "OG_PRIVATE_KEY": "sandbox-private"}


def kill_and_restart(repo: Path, *, kills: int, seed: int, low: float, high: float,
                     state: str | None = None) -> CrashRun:
    """Start ``reconcile`` ``kills`` times, SIGKILL each after a seeded random delay, then run it to the end.
    A run that finishes before its kill means the send is over: no further kill could test anything, so the
    kills stop there (``run.kills`` then says how many there were; tests assert it)."""
    rng = random.Random(seed)
    run = CrashRun()
    while run.kills < kills and not run.finished_early:
        run.attempt(reconcile_command(repo, state), cwd=repo, env=environment(), delay=rng.uniform(low, high))
    final = subprocess.run(reconcile_command(repo, state), cwd=repo, env=environment(), capture_output=True, text=True,
                           timeout=300)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    return run


def delivered_numbers(sandbox: RunningSandbox, name: str, key: str) -> Counter[str]:
    messages = SandboxControls.of(sandbox)[name].state()["messages"]
    return Counter(str(m[key]).strip() for m in messages)
