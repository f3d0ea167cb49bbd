"""Every benchmark script still runs: each with ``--quick`` (a small fleet, one run) ends with one JSON
line holding its figures. Slow (a sandbox per script): run with ``make test-slow``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
EXPECTED = {
    "sandbox_capacity.py": {"concurrency", "yateota_rps_latency_10ms", "iot_campaigns_rps_latency_10ms"},
    "converge.py": {"converge_ideal", "requests_minimum", "noop_writes", "noop_converge", "cpu_per_action_us",
                    "spread", "ideal_set_by"},
    "watch_latency.py": {"watch_p50_s", "watch_p95_s", "spread"},
    "sms_memory.py": {"dry_run_peak_rss_mb", "send_peak_rss_mb", "messages_per_s", "spread"},
    "run_all.py": {"quick", "goals", "results", "seconds"},
    "growth.py": {"sizes", "results", "growth", "goals", "all_linear"},
    "client_cpu.py": {"backendhttp_get_c1_us", "aiohttp_raw_get_c1_us", "aiohttp_seam_get_c1_us"},
    "transport_cpu.py": {"hand_small_c1_us", "llhttp_small_c1_us", "llhttp_chunked_c16_us"},
    "ogangi_message.py": {"send_us", "build_sign_us", "parse_us", "ledger_wall_us", "cpu_per_message_10ms_us",
                          "workload_back_to_back_us", "workload_after_10ms_sleep_us"},
}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_quick_run_ends_with_its_figures_as_json(script: str) -> None:
    """A ``--quick`` run exits 0 and its last line is a JSON object with the script's figures."""
    done = subprocess.run([sys.executable, str(BENCH / script), "--quick"], cwd=BENCH.parent, capture_output=True,
                          text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert EXPECTED[script] <= set(json.loads(last))
