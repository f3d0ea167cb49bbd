"""Notifications from real processes: a one-shot apply delivers the event it caused; a daemon SIGKILLed
with an undelivered event in its outbox (the receiver was down) delivers it exactly once after a restart.

The event is ``pass.failed`` of a backend that cannot be read (its port is closed): it needs no sandbox.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from reconciler.notify.payload import signature_matches
from tests.daemon.daemon_process import DaemonProcess, eventually, free_port
from tests.notify.receiver import running_receiver

SECRET = "whsec-process-test-7c1e"
ENV = {"YATE_SECRET": "sandbox-secret", "HOOK_SECRET": SECRET}


def declarations(folder: Path, hook_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "yate.yaml").write_text(f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: yate}}
spec:
  type: yateota
  url: "http://127.0.0.1:{free_port()}"
  auth: {{secret: {{env: YATE_SECRET}}}}
  limits: {{maxRetries: 0, timeoutSeconds: 2}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: applet}}
spec: {{backend: yate, campaignId: 147, state: running}}
---
apiVersion: reconciler/v1
kind: Notification
metadata: {{name: ops}}
spec:
  url: "{hook_url}"
  signingSecret: {{env: HOOK_SECRET}}
  events: [pass.failed, apply.failed]
""")
    return folder


def outbox_rows(state: Path) -> list[tuple[str, str, int]]:
    """(event id, state, attempts) of every outbox row, read as a reader would."""
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        return [tuple(r) for r in db.execute("SELECT event_id, state, attempts FROM notify_outbox ORDER BY seq")]


def test_an_apply_delivers_the_event_it_caused_before_it_exits(tmp_path: Path) -> None:
    with running_receiver() as receiver:
        decl = declarations(tmp_path / "repo", receiver.url)
        done = subprocess.run([sys.executable, "-m", "reconciler", "apply", str(decl), "--root", str(decl),
                               "--state", f"sqlite:///{tmp_path / 'state.db'}"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60, env={**os.environ, **ENV})
        assert done.returncode == 1, done.stderr  # the backend cannot be read
        [request] = receiver.requests
    event = request.json()
    assert event["event"] == "pass.failed" and event["resource"] == "Backend/yate"
    assert signature_matches(SECRET, request.body, request.headers["x-reconciler-signature"])
    assert outbox_rows(tmp_path / "state.db") == [(request.delivery, "delivered", 1)]
    assert SECRET not in done.stdout + done.stderr


def test_a_daemon_killed_with_an_undelivered_event_delivers_it_once_after_a_restart(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    port = free_port()
    decl = declarations(tmp_path / "repo", f"http://127.0.0.1:{port}/hooks/reconciler")
    state = tmp_path / "state.db"
    args = (str(decl), "--root", str(decl), "--state", f"sqlite:///{state}", "--resync", "3600")
    first = DaemonProcess(tmp_path, *args, env=ENV)
    daemons.append(first)
    eventually(lambda: '"event": "notification.retry"' in first.logs(), timeout=30)  # the receiver is down
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    [(event_id, row_state, attempts)] = outbox_rows(state)
    assert row_state == "pending" and attempts >= 1
    with running_receiver(port) as receiver:
        second = DaemonProcess(tmp_path, *args, env=ENV)
        daemons.append(second)
        eventually(lambda: outbox_rows(state)[0][1] == "delivered", timeout=30)
        second.process.send_signal(signal.SIGHUP)  # one more pass sees the same failure: no new event
        eventually(lambda: second.logs().count('"event": "pass.done"') >= 2, timeout=30)
        assert receiver.deliveries() == [event_id]
    assert signature_matches(SECRET, receiver.requests[0].body, receiver.requests[0].headers["x-reconciler-signature"])
    assert [row[0] for row in outbox_rows(state)] == [event_id]
    assert SECRET not in first.logs() + second.logs()
