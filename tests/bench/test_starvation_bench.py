"""``bench/daemon_starvation.py --quick`` still runs (2,000 idle connections, one round of each scenario)
and ends with its figures as one JSON line. Slow (a sandbox and three daemons): ``make test-slow``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_ends_with_its_figures_as_json() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "daemon_starvation.py"), "--quick"], cwd=BENCH.parent,
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    for scenario in ("defaults", "held", "sustained"):
        assert {f"{scenario}_healthz_p50_ms", f"{scenario}_healthz_p95_ms", f"{scenario}_healthz_max_ms"} <= set(figures)
        assert figures[scenario]["daemon_exit"] == 0
    assert figures["held"]["failed_probes"] == 0
