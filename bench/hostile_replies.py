"""Peak memory and time to the clean error of ``reconcile --dry-run`` against hostile replies: an IoT
campaign manager (``tests/reliability/hostile_servers.py``, in a thread of this process) whose listings
answer with a 2 GiB gzip bomb (2.1 MB on the wire), a body announced at 1 GiB, 1 GiB unannounced (framed
by the end of the connection), an endless fast chunked body, or a listing claiming 3,000,000 pages; and,
for comparison, benign empty listings. Each dry run is its own process (peak RSS from ``wait4``), with the
Backend's default limits and ``timeoutSeconds: 10``.

    .venv/bin/python bench/hostile_replies.py [--runs 3] [--quick]

Figures per case: ``<case>_peak_rss_mb`` and ``<case>_s`` (spawn to exit: start-up included), medians of
``--runs`` runs with min and max. Goals: peak RSS under 150 MB and the error within the request timeout
(10 s). A run that does not end in the expected clean error (exit 1, ``backend iot could not be read``
naming the limit, no traceback) stops the benchmark.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from fleet import PROJECT_DIR, reconcile_env
from measure import print_figures, run_reconciler, summarise

sys.path.insert(0, str(PROJECT_DIR))
from tests.reliability.hostile_servers import HostileIot, hostile_iot_repo  # noqa: E402

GOAL_MB = 150
TIMEOUT_S = 10
CASES = {  # case -> (HostileIot mode, what the error must name; None: no error)
    "gzip_bomb": ("gzip-bomb", "limits.maxCompressionRatio"),
    "body_1gib": ("huge-body", "limits.maxBodyBytes"),
    "body_1gib_unannounced": ("huge-body-close", "limits.maxBodyBytes"),
    "endless_chunked": ("endless-chunked", "limits.maxBodyBytes"),
    "page_bomb": ("page-bomb", "limits.maxListPages"),
    "benign": ("benign", None),
}


def one_run(folder: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    for case, (mode, limit) in CASES.items():
        server = HostileIot(mode)
        try:
            decl = folder / case
            decl.mkdir(exist_ok=True)
            (decl / "iot.yaml").write_text(hostile_iot_repo(server.url), encoding="utf-8")
            run = run_reconciler(["--dry-run", str(decl)], env={**reconcile_env(), "IOT_PASSWORD": "bench-password"},
                                 timeout=120)
        finally:
            server.stop()
        clean = "Traceback" not in run.output and (
            run.exit_code == 0 if limit is None else
            run.exit_code == 1 and "backend iot could not be read" in run.output and limit in run.output)
        if not clean:
            raise SystemExit(f"{case}: not the expected clean error (exit {run.exit_code}):\n{run.output[-3000:]}")
        figures[f"{case}_peak_rss_mb"] = run.max_rss_mb
        figures[f"{case}_s"] = run.wall_s
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run (smoke test)")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        results = [one_run(Path(tmp)) for _ in range(runs)]
    figures = summarise(results)
    hostile = [case for case, (_, limit) in CASES.items() if limit is not None]
    met = all(figures[f"{c}_peak_rss_mb"].high < GOAL_MB and figures[f"{c}_s"].high < TIMEOUT_S for c in hostile)
    print_figures(figures, digits={name: 1 if name.endswith("_mb") else 2 for name in figures},
                  extra={"runs": runs, "goals_met": met,
                         "goals": {**{f"{c}_peak_rss_mb": GOAL_MB for c in hostile},
                                   **{f"{c}_s": TIMEOUT_S for c in hostile}}})


if __name__ == "__main__":
    main()
