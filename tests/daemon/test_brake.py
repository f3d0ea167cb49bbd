"""The brake: in the daemon a send is background work each pass steers. A commit of ``paused`` stops what
leaves the gateway within seconds (the gateway's queued tasks are stopped too) and resuming sends the rest,
nobody twice; a new text reaches every recipient not yet handed over. Counted at the gateway."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.engine import crash
from tests.reliability.figures import record

LEFT = ("SENT_OK", "DELIVERED")


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    # 8 ports at 3 messages/s: the gateway queues what a campaign hands over at 30/s
    options = SandboxOptions(port_base=0, gateway_count=10, seed=3, sms_gateway={"send_rate_per_port": 3.0})
    with running_sandbox(options) as running:
        yield running


def messages(sandbox: RunningSandbox) -> list[dict]:
    return list(SandboxControls.of(sandbox)["sms-gateway"].state()["messages"])


def left(sandbox: RunningSandbox) -> Counter[str]:
    """Messages that left the gateway, per number."""
    return Counter(m["number"] for m in messages(sandbox) if m["status"] in LEFT)


def edit(repo: Path, old: str, new: str) -> None:
    path = repo / "sms.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def start(daemons: list[DaemonProcess], repo: Path, tmp_path: Path) -> DaemonProcess:
    daemon = DaemonProcess(repo, str(repo), "--state", f"sqlite:///{tmp_path / 'state.db'}", "--resync", "300",
                           "--debounce-ms", "50", env=crash.environment())
    daemons.append(daemon)
    return daemon


def test_paused_stops_the_gateway_within_seconds_and_resuming_sends_the_rest_once(
    sandbox: RunningSandbox, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=240, per_second=30)
    daemon = start(daemons, repo, tmp_path)
    daemon.wait_ready(timeout=60)  # ready after the first plan, not after the send it started
    eventually(lambda: sum(left(sandbox).values()) >= 30, timeout=60)
    edit(repo, "spec:\n  backend: gw", "spec:\n  state: paused\n  backend: gw")
    committed, last, seen = time.monotonic(), time.monotonic(), sum(left(sandbox).values())
    while time.monotonic() - committed < 8:
        now = sum(left(sandbox).values())
        if now != seen:
            last, seen = time.monotonic(), now
        time.sleep(0.05)
    record("brake.paused_to_last_message_s", round(last - committed, 3), left_before_resume=seen)
    assert seen < 240, "the send ended before the brake was tested"
    assert sum(left(sandbox).values()) == seen  # nothing more left the gateway in the last seconds
    edit(repo, "spec:\n  state: paused\n  backend: gw", "spec:\n  backend: gw")
    eventually(lambda: len(left(sandbox)) == 240, timeout=120)
    time.sleep(1.0)
    counts = left(sandbox)
    assert len(counts) == 240 and max(counts.values()) == 1, max(counts.values())
    abandoned = [m for m in messages(sandbox) if m["abandoned"]]
    assert abandoned, "the stop abandoned nothing queued: the resend was not tested"
    resent = {m["number"]: m["user_id"] for m in messages(sandbox) if m["status"] in LEFT}
    assert all(resent[m["number"]] != m["user_id"] for m in abandoned)  # a new message, a user_id of its own
    assert daemon.terminate() == 0
    final = subprocess.run(crash.reconcile_command(repo, f"sqlite:///{tmp_path / 'state.db'}"), cwd=repo,
                           env=crash.environment(), capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    with sqlite3.connect(tmp_path / "state.db") as db:  # the pass read every fate: the resends' are their own
        states = Counter(state for (state,) in db.execute("SELECT state FROM send_ledger"))
    assert sum(states.values()) == 240 and set(states) <= {"sent", "delivered"}, states


def test_a_new_text_reaches_everyone_not_yet_handed_over_and_nobody_twice(
    sandbox: RunningSandbox, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="gw", recipients=300, per_second=30)
    start(daemons, repo, tmp_path)
    eventually(lambda: len(messages(sandbox)) >= 30, timeout=60)
    edit(repo, 'text: "Maintenance tonight', 'text: "Corrected: maintenance tonight')
    committed = time.monotonic()
    eventually(lambda: any(m["text"].startswith("Corrected") for m in messages(sandbox)), timeout=30)
    record("brake.text_change_to_first_new_message_s", round(time.monotonic() - committed, 3))
    eventually(lambda: len({m["number"] for m in messages(sandbox)}) == 300, timeout=120)
    time.sleep(1.0)
    handed = [m for m in messages(sandbox) if m.get("abandoned", "") == ""]
    numbers = Counter(m["number"] for m in handed)
    assert len(numbers) == 300 and max(numbers.values()) == 1
    new = [m for m in handed if m["text"].startswith("Corrected")]
    old = [m for m in handed if not m["text"].startswith("Corrected")]
    assert new and old and len(new) + len(old) == 300


def test_a_send_that_fails_in_the_background_stalls_instead_of_restarting_in_a_loop(
    sandbox: RunningSandbox, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """Ogangi from a new store without --risk-duplicate-sms is refused: the next pass reports that failure
    (stalled until the declaration changes), it does not start the same send seven times a second."""
    repo = crash.sms_repo(tmp_path / "ops", sandbox, backend="og", recipients=5)
    daemon = DaemonProcess(repo, str(repo), "--state", f"sqlite:///{tmp_path / 'state.db'}", "--resync", "300",
                           env=crash.environment())
    daemons.append(daemon)

    def blocked() -> str:
        found = [r for r in daemon.status()["resources"] if r["resource"] == "Campaign/notice"]
        return str(found[0]["blocked"] or "") if found else ""

    reason = eventually(blocked, timeout=60)
    assert "permanent" in reason or "stalled" in reason, reason
    passes = daemon.status()["passes"]
    time.sleep(3)
    assert daemon.status()["passes"] - passes <= 1
    assert crash.delivered_numbers(sandbox, "ogangi", "to") == Counter()
