"""Run the long versions of the reliability suite and print their figures.

    .venv/bin/python tests/reliability/run_long.py            # everything marked slow (about 30 minutes)
    .venv/bin/python tests/reliability/run_long.py -k soak    # extra pytest arguments narrow it down

It runs ``pytest -m slow`` over ``tests/reliability`` and the SMS crash tests (``tests/engine/
test_crash_recovery.py``), collects the figures the tests record (``RELIABILITY_FIGURES``), and prints
them as the last lines, ``name: value``: kills survived, duplicates, unknown outcomes, hostile inputs
tried, fuzz examples run, soak memory growth, and the pytest result.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["tests/reliability", "tests/engine/test_crash_recovery.py"]


def run(extra: list[str]) -> tuple[int, str, list[dict]]:
    with tempfile.NamedTemporaryFile(prefix="reliability-figures-", suffix=".jsonl", delete=False) as handle:
        figures_file = handle.name
    env = {**os.environ, "RELIABILITY_FIGURES": figures_file}
    command = [sys.executable, "-m", "pytest", "-m", "slow", "-s", "-p", "no:cacheprovider", "-o", "addopts=",
               *TARGETS, *extra]
    print("$ " + " ".join(command), flush=True)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "figure " in line or " passed" in line or " failed" in line or line.startswith("FAILED"):
            print(line, end="", flush=True)
    code = process.wait()
    figures = [json.loads(line) for line in Path(figures_file).read_text(encoding="utf-8").splitlines() if line]
    os.unlink(figures_file)
    return code, "".join(lines), figures


def summarise(code: int, output: str, figures: list[dict]) -> list[str]:
    by_name: dict[str, list[dict]] = defaultdict(list)
    for figure in figures:
        by_name[figure["figure"]].append(figure)
    out = []
    for item in by_name.get("ota_crash.kills_survived", []):
        out.append(f"ota_crash_kills_survived: {item['value']} (mid-apply {item['mid_apply']})")
    for item in by_name.get("ota_crash.duplicates", []):
        out.append(f"ota_crash_duplicates: {item['value']}")
    for kind in ("sms_gateway", "ogangi"):
        for item in by_name.get(f"sms_crash.{kind}.kills_survived", []):
            out.append(f"sms_crash_{kind}_kills_survived: {item['value']}")
            if "unknown" in item:
                out.append(f"sms_crash_ogangi_unknown: {item['unknown']}")
    runs = [f"seed {f['seed']}: {f['value']} runs" for f in by_name.get("faults.runs_to_converge", [])]
    if runs:
        out.append(f"faults_runs_to_converge: {'; '.join(runs)}")
    dups = by_name.get("faults.duplicates", [])
    if dups:
        out.append(f"faults_duplicates: {sum(f['value'] for f in dups)}")
        unknown = sum(v for f in dups for k, v in f.get("ledger", {}).items() if k.endswith("/unknown"))
        out.append(f"faults_ogangi_unknown: {unknown}")
    for item in by_name.get("hostile.inputs_tried", []):
        out.append(f"hostile_inputs_tried: {item['value']} (failures {item.get('failures', 0)})")
    fuzz = {name: sum(f["value"] for f in items) for name, items in by_name.items() if name.startswith("fuzz.")}
    if fuzz:
        each = ", ".join(f"{name[5:]} {count}" for name, count in sorted(fuzz.items()))
        out.append(f"fuzz_examples_run: {sum(fuzz.values())} ({each})")
    for item in by_name.get("soak.memory_growth", []):
        out.append(f"soak_memory_growth: {item['value']} ({item['first_kib']:.0f} -> {item['last_kib']:.0f} KiB over "
                   f"{item['seconds']:.0f} s, {item['passes']} passes, {item['edits']} edits, longest without a pass "
                   f"{item['longest_without_a_pass']} s, SIGTERM {item['sigterm_seconds']} s)")
    summary = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    out.append(f"pytest: {summary[-1].strip('= ') if summary else 'no summary'} (exit {code})")
    return out


def main() -> int:
    code, output, figures = run(sys.argv[1:])
    print()
    for line in summarise(code, output, figures):
        print(line)
    return code


if __name__ == "__main__":
    sys.exit(main())
