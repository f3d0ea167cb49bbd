"""Peak memory of a 1,000,000-recipient SMS-gateway campaign: ``reconcile --dry-run`` (plan only) and
``reconcile`` (the send), each in its own process, with the gateway simulator in another process at
latency 0; also the send's throughput in messages per second (messages accepted by the gateway over
the send process's wall time, start-up included).

    .venv/bin/python bench/sms_memory.py [--recipients 1000000] [--runs 3] [--quick]

Figures: peak RSS (``ru_maxrss`` of the reconciler process) of the dry run and of the send, median of
``--runs`` runs with min and max (goal: both <= 250 MB), and messages per second. Each send starts
from an empty gateway and a new state store.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from fleet import FleetSpec, write_sms_repo
from fleet_sandbox import fleet_sandbox, free_port_base
from measure import print_figures, run_reconciler, state_url, summarise

GOAL_MB = 250
PORTS = 8


def one_run(decl: Path, folder: Path, run: int, reset: Callable[[], None]) -> dict[str, float]:
    reset()
    dry = run_reconciler(["--dry-run", str(decl)]).succeeded()
    send = run_reconciler([str(decl), "--state", state_url(folder, f"state-{run}.db")]).succeeded()
    with sqlite3.connect(folder / f"state-{run}.db") as db:
        accepted = db.execute("SELECT COUNT(*) FROM send_ledger WHERE state='accepted'").fetchone()[0]
    return {"dry_run_peak_rss_mb": dry.max_rss_mb, "dry_run_s": dry.wall_s, "send_peak_rss_mb": send.max_rss_mb,
            "send_s": send.wall_s, "messages_per_s": accepted / send.wall_s, "send_cpu_s": send.cpu_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 recipients, one run (smoke test)")
    args = parser.parse_args()
    recipients, runs = (20_000, 1) if args.quick else (args.recipients, args.runs)
    base = free_port_base()
    with tempfile.TemporaryDirectory(prefix="bench-sms-memory-") as tmp, \
            fleet_sandbox(FleetSpec(), port_base=base, latency_ms=0, simulators=("sms-gateway",)) as sandbox:
        decl = write_sms_repo(Path(tmp) / "repo", recipients=recipients, ports=PORTS, port_base=base)

        def reset() -> None:
            sandbox.reset()
            sandbox.set_latency(0)

        results = [one_run(decl, Path(tmp), n, reset) for n in range(runs)]
    print_figures(summarise(results), digits={"dry_run_peak_rss_mb": 1, "send_peak_rss_mb": 1, "messages_per_s": 0},
                  extra={"recipients": recipients, "runs": runs, "ports": PORTS,
                         "goals": {"dry_run_peak_rss_mb": GOAL_MB, "send_peak_rss_mb": GOAL_MB}})


if __name__ == "__main__":
    main()
