"""What the writer lease and fencing cost, per store, and how fast a standby takes over.

    .venv/bin/python bench/writers.py [--recipients 10000] [--runs 3] [--takeovers 5]

1. Messages per second of one apply sending an SMS-gateway campaign from a new store (the fenced ledger
   commits, the lease renewals and the per-group "was it sent before?" query included), SQLite and
   PostgreSQL alternately, each from an empty gateway at latency 0.
2. Takeover after SIGKILL: two ``reconcile watch --standby`` on one store, the active one killed mid-send,
   seconds until the standby says ``"role": "active"`` (same host: the dead holder is seen at once;
   ``--foreign-host`` makes each daemon look like another machine, so the standby waits for the TTL).

PostgreSQL is a throwaway cluster started here (as in the tests). Figures: median (min, max); JSON last.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' PostgreSQL and daemon helpers

from fleet import FleetSpec, write_sms_repo  # noqa: E402
from fleet_sandbox import fleet_sandbox, free_port_base  # noqa: E402
from measure import Figure, print_figures, run_reconciler, state_url  # noqa: E402

from tests.daemon.daemon_process import DaemonProcess, eventually  # noqa: E402
from tests.postgres_server import postgres_cluster  # noqa: E402

PORTS = 8


def send_rates(decl: Path, folder: Path, pg: object, sandbox: object, *, recipients: int, runs: int
               ) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    for run in range(runs):
        for kind in rates:
            sandbox.reset()  # type: ignore[attr-defined]
            sandbox.set_latency(0)  # type: ignore[attr-defined]
            url = state_url(folder, f"send-{run}.db") if kind == "sqlite" else pg.new_database()  # type: ignore[attr-defined]
            done = run_reconciler([str(decl), "--state", url]).succeeded()
            rates[kind].append(recipients / done.wall_s)
    return rates


def takeover(decl: Path, folder: Path, url: str, *, foreign: bool) -> float:
    env = {"GW_PASSWORD": "admin"}
    args = (str(decl), "--state", url, "--resync", "300", "--standby", "--lease-ttl", "10")
    active = DaemonProcess(folder, *args, env={**env, **({"RECONCILER_HOST": "host-a"} if foreign else {})})
    standby = None
    try:
        eventually(lambda: active.status()["role"] == "active", timeout=60)
        standby = DaemonProcess(folder, *args, env={**env, **({"RECONCILER_HOST": "host-b"} if foreign else {})})
        eventually(lambda: standby.status()["role"] == "standby", timeout=60)
        os.kill(active.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        eventually(lambda: standby.status()["role"] == "active", timeout=120, interval=0.02)
        return time.monotonic() - killed
    finally:
        active.stop()
        if standby is not None:
            standby.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--takeovers", type=int, default=5)
    parser.add_argument("--foreign-host", action="store_true", help="each daemon as if on its own machine")
    args = parser.parse_args()
    base = free_port_base()
    with tempfile.TemporaryDirectory(prefix="bench-writers-") as tmp, postgres_cluster() as pg, \
            fleet_sandbox(FleetSpec(), port_base=base, latency_ms=0, simulators=("sms-gateway",)) as sandbox:
        folder = Path(tmp)
        decl = write_sms_repo(folder / "repo", recipients=args.recipients, ports=PORTS, port_base=base)
        rates = send_rates(decl, folder, pg, sandbox, recipients=args.recipients, runs=args.runs)
        slow = write_sms_repo(folder / "slow", recipients=2_000, ports=PORTS, port_base=base)
        seconds: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        for n in range(args.takeovers):
            for kind in seconds:
                sandbox.reset()
                sandbox.set_latency(50)  # the send lasts: the kill lands mid-send
                url = state_url(folder, f"ha-{n}.db") if kind == "sqlite" else pg.new_database()
                seconds[kind].append(takeover(slow, folder, url, foreign=args.foreign_host))
    figures = {f"messages_per_s_{kind}": Figure.of(values) for kind, values in rates.items()}
    figures |= {f"takeover_s_{kind}": Figure.of(values) for kind, values in seconds.items()}
    print_figures(figures, digits={"messages_per_s_sqlite": 0, "messages_per_s_postgresql": 0},
                  extra={"recipients": args.recipients, "runs": args.runs, "takeovers": args.takeovers,
                         "foreign_host": args.foreign_host, "lease_ttl_s": 10})


if __name__ == "__main__":
    main()
