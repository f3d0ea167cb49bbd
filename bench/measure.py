"""What every benchmark script shares: running the reconciler as its own process and reading its CPU time
and peak memory from the kernel, summarising several runs (median with min and max), and printing the
figures in the agreed form: ``name: value`` lines, then one JSON object as the very last line.

The reconciler always runs as a separate process (``python -m reconciler ...``), never in the
benchmark's own process, so that its CPU seconds and peak RSS (``wait4``'s rusage) are its alone.
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleet import PROJECT_DIR, PYTHON, reconcile_env

APPLIED = re.compile(r"Applied in [0-9.]+s: (?P<totals>[^.]*)\.")


@dataclass(frozen=True)
class ProcessRun:
    """One finished reconciler process."""

    exit_code: int
    wall_s: float
    cpu_s: float  # user + system
    max_rss_mb: float
    output: str

    def succeeded(self) -> ProcessRun:
        """This run, or a stop with its output's tail when it failed (a failed run measures nothing)."""
        if self.exit_code != 0:
            raise SystemExit(f"reconcile exited {self.exit_code}:\n{self.output[-3000:]}")
        return self

    def actions(self) -> int:
        """Actions the apply report says it executed (succeeded, failed, unknown or skipped)."""
        found = APPLIED.search(self.output)
        if found is None or "nothing to do" in found["totals"]:
            return 0
        return sum(int(part.split()[0]) for part in found["totals"].split(", "))


def run_reconciler(arguments: Sequence[str], *, env: Mapping[str, str] | None = None,
                   timeout: float = 900.0) -> ProcessRun:
    """``python -m reconciler ARGUMENTS``; wall time from spawn to exit, CPU and peak RSS from ``wait4``."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        started = time.perf_counter()
        process = subprocess.Popen([PYTHON, "-m", "reconciler", *arguments], cwd=PROJECT_DIR,
                                   env=dict(env or reconcile_env()), stdout=out, stderr=subprocess.STDOUT)
        status, usage = _wait(process, timeout)
        wall = time.perf_counter() - started
        out.seek(0)
        return ProcessRun(os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime,
                          usage.ru_maxrss / 1024, out.read())


def _wait(process: subprocess.Popen[bytes], timeout: float) -> tuple[int, resource.struct_rusage]:
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"reconciler still running after {timeout:.0f} s")
        time.sleep(0.002)


@dataclass(frozen=True)
class Figure:
    """A figure over several runs."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Figure:
        return cls(statistics.median(values), min(values), max(values))


def summarise(runs: Sequence[Mapping[str, float]]) -> dict[str, Figure]:
    """Per figure name, the median and spread over ``runs`` (each run a name -> value mapping)."""
    return {name: Figure.of([run[name] for run in runs]) for name in runs[0]}


def print_figures(figures: Mapping[str, Figure], *, digits: Mapping[str, int] | None = None,
                  extra: Mapping[str, object] | None = None) -> None:
    """``name: median (min .., max ..)`` per figure, then the JSON line: medians, ``spread``, ``extra``."""
    rounded = {name: round(f.median, (digits or {}).get(name, 3)) for name, f in figures.items()}
    for name, figure in figures.items():
        places = (digits or {}).get(name, 3)
        print(f"{name}: {rounded[name]} (min {round(figure.low, places)}, max {round(figure.high, places)})")
    spread = {name: [round(f.low, (digits or {}).get(name, 3)), round(f.high, (digits or {}).get(name, 3))]
              for name, f in figures.items()}
    print(json.dumps({**rounded, "spread": spread, **(extra or {})}, sort_keys=False), flush=True)


def state_url(folder: Path, name: str) -> str:
    return f"sqlite:///{folder / name}"
