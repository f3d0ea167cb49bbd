"""Every benchmark, one after the other, and one summary: each script's figures (its last line, a JSON
object) under its name, and every goal of ``measures.md`` with the figure that answers it, the target
the script states, and whether it is met. The summary is the last line, one JSON object.

    .venv/bin/python bench/run_all.py [--quick]      # or: make bench

A full run takes about thirteen minutes on a 2-core machine; ``--quick`` (a small fleet, one run of each)
about a minute, for checking that every script still works.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable

#: (name in the summary, script, arguments of a full run, arguments of a quick run)
BENCHMARKS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("sandbox_capacity", "sandbox_capacity.py", (), ("--quick",)),
    ("validate", "validate_bench.py", (), ("--files", "100", "--runs", "1")),
    ("converge", "converge.py", ("--runs", "5"), ("--quick",)),  # measures.md: medians of 5, spread shown
    ("converge_ogangi_in_flight_16", "converge.py", ("--ogangi-in-flight", "16"),
     ("--quick", "--ogangi-in-flight", "16")),
    ("client_cpu", "client_cpu.py", (), ("--quick",)),  # issue 19: the HTTP client options side by side
    ("watch_latency", "watch_latency.py", (), ("--quick",)),
    ("sms_memory", "sms_memory.py", (), ("--quick",)),
    ("growth", "growth.py", ("--sizes", "1000,10000", "--svg", ""), ("--quick",)),
    ("hostile_replies", "hostile_replies.py", (), ("--quick",)),
    ("daemon_starvation", "daemon_starvation.py", (), ("--quick",)),
    ("brake", "brake.py", (), ("--rounds", "1")),
    ("writers", "writers.py", (), ("--recipients", "2000", "--runs", "1", "--takeovers", "1")),
)

#: goal -> (benchmark, figure, comparison); the target is the one the benchmark prints under "goals"
GOALS = {
    "converge / ideal": ("converge", "converge_ideal", "<="),
    "requests / minimum": ("converge", "requests_minimum", "<="),
    "no-op writes": ("converge", "noop_writes", "<="),
    "CPU per action (us)": ("converge", "cpu_per_action_us", "<="),
    "watch p95 (s)": ("watch_latency", "watch_p95_s", "<="),
    "1M recipients dry-run peak RSS (MB)": ("sms_memory", "dry_run_peak_rss_mb", "<="),
    "1M recipients send peak RSS (MB)": ("sms_memory", "send_peak_rss_mb", "<="),
    "validation documents/s": ("validate", "documents_per_second", ">="),
    "gzip bomb peak RSS (MB)": ("hostile_replies", "gzip_bomb_peak_rss_mb", "<="),
    "endless chunked body peak RSS (MB)": ("hostile_replies", "endless_chunked_peak_rss_mb", "<="),
    "page bomb peak RSS (MB)": ("hostile_replies", "page_bomb_peak_rss_mb", "<="),
    "healthz max with 20,000 idle connections (ms)": ("daemon_starvation", "held_healthz_max_ms", "<="),
    "paused to last SMS leaving the gateway, p95 (s)": ("brake", "paused_to_last_message_p95_s", "<="),
}


def run(script: str, arguments: tuple[str, ...]) -> tuple[dict[str, object], float]:
    """Run one script, echo its output, and return its figures and how long it took."""
    started = time.perf_counter()
    process = subprocess.run([PYTHON, str(BENCH_DIR / script), *arguments], cwd=BENCH_DIR.parent,
                             stdout=subprocess.PIPE, text=True, check=False)
    print(process.stdout, end="", flush=True)
    if process.returncode != 0:
        raise SystemExit(f"{script} failed (exit {process.returncode})")
    return figures_of(process.stdout), time.perf_counter() - started


def figures_of(output: str) -> dict[str, object]:
    """The last line: every benchmark ends with its figures as one JSON object."""
    lines = [line for line in output.splitlines() if line.strip()]
    try:
        found = json.loads(lines[-1])
    except (ValueError, IndexError):
        found = None
    if not isinstance(found, dict):
        raise SystemExit(f"the benchmark's last line is not its figures: {lines[-1:]!r}")
    return found


def verdicts(results: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for goal, (benchmark, figure, comparison) in GOALS.items():
        value = results.get(benchmark, {}).get(figure)
        target = results.get(benchmark, {}).get("goals", {}).get(figure)  # type: ignore[union-attr]
        met = isinstance(value, int | float) and isinstance(target, int | float) and (
            value <= target if comparison == "<=" else value >= target)
        out[goal] = {"value": value, "goal": f"{comparison} {target}", "met": met}
    out.update(growth_verdicts(results.get("growth", {})))
    return out


def growth_verdicts(growth: dict[str, object]) -> dict[str, dict[str, object]]:
    """The growth benchmark's goals: converge/ideal and requests/minimum per fleet size (it states each
    target), and every cost growing no faster than linearly from one size to the next."""
    out: dict[str, dict[str, object]] = {}
    for verdict in growth.get("goals", []):  # type: ignore[attr-defined]
        name = f"{verdict['figure'].replace('_', ' / ', 1)} at {verdict['gateways']:,} gateways"
        out[name] = {"value": verdict["value"], "goal": f"<= {verdict['goal']}", "met": verdict["met"]}
    if "all_linear" in growth:
        out["growth no faster than linear"] = {"value": growth["all_linear"], "goal": "== True",
                                               "met": growth["all_linear"] is True}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small fleet and one run of each (smoke test)")
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    seconds: dict[str, float] = {}
    for name, script, full, quick in BENCHMARKS:
        print(f"== {name}: {script} {' '.join(quick if args.quick else full)}", flush=True)
        results[name], seconds[name] = run(script, quick if args.quick else full)
    goals = verdicts(results)
    print("== summary")
    for goal, verdict in goals.items():
        print(f"{goal}: {verdict['value']} (goal {verdict['goal']}: {'met' if verdict['met'] else 'NOT met'})")
    print(json.dumps({"quick": args.quick, "goals": goals, "seconds": {k: round(v, 1) for k, v in seconds.items()},
                      "results": results}))


if __name__ == "__main__":
    main()
