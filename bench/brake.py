"""The brake: time from a commit of ``state: paused`` to the last message leaving the SMS gateway, while a
daemon sends at 100 messages/s.

    .venv/bin/python bench/brake.py [--rounds 5] [--rate 100]

Each round: a real ``reconcile watch`` on a new store sends a 3,000-recipient campaign at ``--rate`` to the
gateway simulator (8 ports, each sending ``rate / 8`` per second, so the gateway keeps up and queues
little); once 300 messages have left, ``state: paused`` is committed (git commit in the watched repository)
and the gateway's sent messages are watched for 6 s; the figure is the time from the commit to the last
message that left. Goal: p95 <= 2 s. Figures: p50, p95, max; JSON last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' sandbox, daemon and repo helpers

from reconciler.sandbox.run import SandboxOptions, running_sandbox  # noqa: E402
from reconciler.sandbox.testing import SandboxControl, SandboxControls  # noqa: E402
from tests.daemon.daemon_process import DaemonProcess, eventually  # noqa: E402
from tests.engine import crash  # noqa: E402

GOAL_P95_S = 2.0
LEFT = ("SENT_OK", "DELIVERED")


def sent(gateway: SandboxControl) -> int:
    return sum(1 for m in gateway.state()["messages"] if m["status"] in LEFT)


def one_round(folder: Path, rate: float) -> float:
    options = SandboxOptions(port_base=0, gateway_count=10, seed=3, sms_gateway={"send_rate_per_port": rate / 8})
    with running_sandbox(options) as sandbox:
        gateway = SandboxControls.of(sandbox)["sms-gateway"]
        repo = crash.sms_repo(folder / "ops", sandbox, backend="gw", recipients=3000, per_second=rate)
        git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "send"], check=True)
        daemon = DaemonProcess(folder, str(repo), "--state", f"sqlite:///{folder / 'state.db'}", "--resync", "300",
                               "--debounce-ms", "50", env=crash.environment())
        try:
            eventually(lambda: sent(gateway) >= 300, timeout=120)
            path = repo / "sms.yaml"
            path.write_text(path.read_text().replace("spec:\n  backend: gw", "spec:\n  state: paused\n  backend: gw"))
            subprocess.run([*git, "commit", "-qam", "pause"], check=True)
            committed = last = time.monotonic()
            seen = sent(gateway)
            while time.monotonic() - committed < 6:
                now = sent(gateway)
                if now != seen:
                    last, seen = time.monotonic(), now
                time.sleep(0.02)
            return last - committed
        finally:
            daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    results = []
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-brake-") as tmp:
            results.append(one_round(Path(tmp), args.rate))
        print(f"round {n + 1}: {results[-1]:.3f} s", flush=True)
    ordered = sorted(results)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    figures = {"paused_to_last_message_p50_s": round(statistics.median(results), 3),
               "paused_to_last_message_p95_s": round(p95, 3), "max_s": round(max(results), 3)}
    for name, value in figures.items():
        print(f"{name}: {value}")
    print(json.dumps({**figures, "rounds": args.rounds, "rate_per_s": args.rate,
                      "goals": {"paused_to_last_message_p95_s": GOAL_P95_S}, "goal_met": p95 <= GOAL_P95_S}))


if __name__ == "__main__":
    main()
