"""How the reconciler's costs grow with the fleet: 1k, 10k and 100k IoT gateways, every other part of the
fleet scaled with them, and whether each cost grows no faster than linearly.

A fleet of ``N`` gateways (``growth_spec``): ``N / 2,000`` IoT campaigns of 2,000 gateways (at least one
campaign), 10% of them with a package override, recurring download and activation windows; ``N / 5,000``
YateOTA campaigns of ``N`` participants in all (5% failed); ``10 N`` SMS-gateway recipients; no Ogangi
(one message in flight would make it set the ideal of every size). At 100k that is the large fleet of
issue 19: 50 x 2,000 gateways, 20 x 5,000 participants, 1,000,000 recipients.

Per size, against a sandbox holding that fleet (one process per simulator, ``--latency-ms`` per request):

- ``plan_first_s`` / ``plan_noop_s``: the pure planner (``reconciler.planner.plan``), median of
  ``--plan-runs``, on the observation of empty backends (every action planned) and of the converged
  fleet (nothing to do); the observation is read once, in this process, and only ``plan`` is timed;
- ``dry_run_rss_mb``: peak RSS of ``reconcile --dry-run`` on empty backends (its own process);
- ``converge_ideal``, ``requests_minimum`` (and ``requests_minimum_less_probe``: without the new store's
  probe of the SMS gateway): the converge from empty backends, as ``converge.py``;
- ``noop_s``, ``noop_cpu_s``, ``noop_reads``: the no-op resync (a second apply with nothing to do) in
  this process as the daemon runs it (no interpreter start-up), its wall time, CPU and requests;
  ``noop_reads_minimum`` is the same over ``ideal.minimum_noop_reads``; ``rest_*``: the same for a
  third pass (the daemon at rest: the second one still reads the fates of the messages sent by the first);
  ``rest_no_fates_*``: a fourth, as the daemon runs one between fate reads (``watch --fates-every``), with
  what the third counted of who is left to send and checked of the recipients files (the daemon's
  ``OutlookMemo`` and ``ScanMemo``);
- ``sandbox_rss_mb``: the simulators' resident memory with the converged fleet loaded, per simulator.

Then, per 10x step, the growth ratio of every cost and ``linear`` (a ratio of at most 12: 10x and a
margin for noise) or ``FASTER THAN LINEAR``; ratios (converge/ideal, requests/minimum) must stay flat
(at most 1.2x per step). The plot goes to ``docs/growth.svg`` (``--svg``).

    .venv/bin/python bench/growth.py [--sizes 1000,10000,100000] [--latency-ms 10] [--svg docs/growth.svg]
    .venv/bin/python bench/growth.py --sizes 100000 --skip-converge   # plan time and RSS only (minutes)
    .venv/bin/python bench/growth.py --quick                          # 100 and 1,000 gateways (smoke test)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet import PROJECT_DIR, FleetSpec, reconcile_env, write_fleet
from fleet_sandbox import FleetSandbox, fleet_sandbox, free_port_base
from ideal import ideal_seconds, minimum_noop_reads, minimum_requests
from converge import PROBE_ROUTE
from measure import run_reconciler, state_url

import reconciler.engine.reconcile as reconcile_module
from reconciler.engine.reconcile import PassRequest, PassResult, run_pass
from reconciler.engine.sms_outlook import OutlookMemo
from reconciler.load.recipients import ScanMemo
from reconciler.load import load_desired_state
from reconciler.planner import Plan, PlanInput, plan
from reconciler.secrets import Redactor

GATEWAYS_PER_CAMPAIGN = 2_000
PARTICIPANTS_PER_CAMPAIGN = 5_000
RECIPIENTS_PER_GATEWAY = 10
LINEAR = 12.0  # per 10x step: "no faster than linear", with a margin for a shared 2-core machine
FLAT = 1.2  # per 10x step, for a figure that is already a ratio
#: seconds: a step from a time under this is printed but not judged. The smallest fleet's plan and load take
#: 9-60 ms, and on this 2-core VM the same code gave 0.0089 and 0.016 s for one of them in two runs the same
#: night (medians of 5): a ratio from such a figure measures the machine, not the growth.
NOISE_FLOOR_S = 0.05
#: figure -> how it must grow ("linear" or "flat")
GROWTH = {"load_cpu_s": "linear", "plan_first_s": "linear", "plan_noop_s": "linear", "dry_run_rss_mb": "linear",
          "converge_s": "linear", "converge_cpu_s": "linear", "converge_ideal": "flat", "requests_minimum": "flat",
          "requests_minimum_less_probe": "flat", "noop_s": "linear",
          "noop_cpu_s": "linear", "noop_reads": "linear", "rest_cpu_s": "linear",
          "rest_reads": "linear", "rest_no_fates_cpu_s": "linear", "rest_no_fates_reads": "linear",
          "noop_reads_minimum": "flat", "sandbox_rss_mb": "linear", "converge_rss_mb": "linear"}
LARGE_FLEET = 100_000
#: ``measures.md``: converge/ideal <= 1.2 (<= 1.3 from the large fleet on), requests/minimum <= 1.05
GOALS = {"converge_ideal": (1.2, 1.3), "requests_minimum": (1.05, 1.05)}


def goal_of(figure: str, gateways: int) -> float:
    standard, large = GOALS[figure]
    return large if gateways >= LARGE_FLEET else standard


def verdicts(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each size's converge/ideal and requests/minimum against its goal."""
    return [{"gateways": r["gateways"], "figure": figure, "value": round(r[figure], 3),
             "goal": goal_of(figure, r["gateways"]), "met": r[figure] <= goal_of(figure, r["gateways"])}
            for r in results for figure in GOALS if isinstance(r.get(figure), int | float)]


def growth_spec(gateways: int) -> FleetSpec:
    """The fleet of ``gateways`` gateways, every part scaled with it (the module's docstring)."""
    iot = max(1, round(gateways / GATEWAYS_PER_CAMPAIGN))
    yate = max(1, round(gateways / PARTICIPANTS_PER_CAMPAIGN))
    return FleetSpec(iot_campaigns=iot, gateways_per_campaign=gateways // iot, recurring_windows=True,
                     yate_campaigns=yate, participants=gateways // yate,
                     sms_recipients=gateways * RECIPIENTS_PER_GATEWAY, ogangi_recipients=0)


# --- one pass in this process, its plan input captured --------------------------------------------


def captured_pass(request: PassRequest, root: Path, memo: OutlookMemo | None = None,
                  scans: ScanMemo | None = None) -> tuple[PassResult, PlanInput, float, float]:
    """Run one pass in this process (as the daemon does, with what it keeps between passes when given)
    and keep the ``PlanInput`` it planned from; returns the result, that input, and the pass's wall and CPU
    seconds."""
    seen: list[PlanInput] = []
    original = reconcile_module.plan

    def keeping(inp: PlanInput) -> Plan:
        seen.append(inp)
        return original(inp)

    env = reconcile_env()
    reconcile_module.plan = keeping
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(run_pass(request, now=datetime.now(UTC), environ=env, redactor=Redactor(),
                                      base_dir=root, outlook_memo=memo, scans=scans))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        reconcile_module.plan = original
    if not seen or result.plan is None:
        raise SystemExit(f"the pass did not plan: {[str(d) for d in result.diagnostics][:3]}")
    return result, seen[0], wall, cpu


def plan_seconds(inp: PlanInput, runs: int, profile: Path | None = None) -> float:
    """Median CPU time of ``plan(inp)`` over ``runs`` calls (CPU, not wall: the planner is one thread
    of pure computation, and on a shared machine wall time would measure the neighbours); with
    ``profile``, one more call under cProfile, its statistics written there."""
    times = []
    for _ in range(runs):
        gc.collect()  # each run pays for its own garbage, not for what the runs and sizes before it left
        started = time.process_time()
        plan(inp)
        times.append(time.process_time() - started)
    if profile is not None:
        cProfile.runctx("plan(inp)", globals(), {"inp": inp}, str(profile))
    return statistics.median(times)


def load_seconds(decl: Path, runs: int) -> float:
    """Median CPU time of loading the declarations (parse, validate, build the desired state)."""
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.process_time()
        load_desired_state([decl])
        times.append(time.process_time() - started)
    return statistics.median(times)


# --- one size -------------------------------------------------------------------------------------


def requests_so_far(sandbox: FleetSandbox) -> int:
    return sum(stats.total for stats in sandbox.stats().values())


def rss_mb(pid: int) -> float:
    """Resident memory of a process now (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_size(gateways: int, *, latency_ms: float, plan_runs: int, converge: bool,
                 log: Callable[[str], None], profile: Path | None = None) -> dict[str, Any]:
    spec = growth_spec(gateways)
    base = free_port_base()
    figures: dict[str, Any] = {"gateways": gateways}
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp, \
            fleet_sandbox(spec, port_base=base, latency_ms=latency_ms) as sandbox:
        folder = Path(tmp)
        decl = write_fleet(spec, folder / "repo", port_base=base)
        log(f"{gateways}: sandbox up ({', '.join(f'{n} {rss_mb(p.pid):.0f} MB' for n, p in sandbox.processes.items())})")
        dry = run_reconciler(["--dry-run", str(decl)]).succeeded()
        figures["dry_run_rss_mb"] = dry.max_rss_mb
        figures["dry_run_s"] = dry.wall_s
        _, first, _, _ = captured_pass(PassRequest(paths=[decl], dry_run=True), folder)
        figures["load_cpu_s"] = load_seconds(decl, plan_runs)
        figures["plan_first_s"] = plan_seconds(first, plan_runs, _profile_file(profile, gateways, "first"))
        figures["plan_first_actions"] = len(plan(first).actions)
        del first
        log(f"{gateways}: dry run {dry.wall_s:.1f} s, {dry.max_rss_mb:.0f} MB; plan {figures['plan_first_s']:.3f} s")
        if not converge:
            return figures
        sandbox.reset()
        sandbox.set_latency(latency_ms)
        state = state_url(folder, "state.db")
        run = run_reconciler([str(decl), "--state", state], timeout=3600).succeeded()
        requests = requests_so_far(sandbox)
        probe = routes(sandbox).get("sms-gateway", {}).get(PROBE_ROUTE, 0)
        ideal, _ = ideal_seconds(spec, latency_ms / 1000)
        figures.update(converge_s=run.wall_s, converge_cpu_s=run.cpu_s, ideal_s=ideal, converge_ideal=run.wall_s / ideal,
                       requests=requests, requests_minimum=requests / minimum_requests(spec), probe_requests=probe,
                       requests_minimum_less_probe=(requests - probe) / minimum_requests(spec),
                       converge_rss_mb=run.max_rss_mb)
        log(f"{gateways}: converge {run.wall_s:.1f} s (ideal {ideal:.1f} s), {requests} requests")
        figures["sandbox_rss_mb"] = {name: round(rss_mb(p.pid), 1) for name, p in sandbox.processes.items()}
        before = routes(sandbox)
        result, noop, wall, cpu = captured_pass(PassRequest(paths=[decl], state_url=state, dry_run=False), folder)
        reads = requests_so_far(sandbox) - requests
        actions = len(result.plan.actions) if result.plan is not None else -1
        figures.update(noop_s=wall, noop_cpu_s=cpu, noop_reads=reads, noop_actions=actions,
                       noop_reads_minimum=reads / minimum_noop_reads(spec),
                       noop_reads_by_route=_difference(routes(sandbox), before))
        log(f"{gateways}: no-op pass {wall:.1f} s, {cpu:.1f} s CPU, {reads} reads, {actions} actions")
        figures["plan_noop_s"] = plan_seconds(noop, plan_runs, _profile_file(profile, gateways, "noop"))
        del noop
        before, requests = routes(sandbox), requests_so_far(sandbox)
        memo, scans = OutlookMemo(), ScanMemo()  # the daemon's, kept from this pass to the next
        _, _, wall, cpu = captured_pass(PassRequest(paths=[decl], state_url=state, dry_run=False), folder, memo,
                                        scans)
        figures.update(rest_s=wall, rest_cpu_s=cpu, rest_reads=requests_so_far(sandbox) - requests,
                       rest_reads_by_route=_difference(routes(sandbox), before))
        log(f"{gateways}: at rest, pass {wall:.1f} s, {cpu:.1f} s CPU, {figures['rest_reads']} reads")
        before, requests = routes(sandbox), requests_so_far(sandbox)
        _, _, wall, cpu = captured_pass(PassRequest(paths=[decl], state_url=state, dry_run=False, read_fates=False),
                                        folder, memo, scans)
        figures.update(rest_no_fates_s=wall, rest_no_fates_cpu_s=cpu,
                       rest_no_fates_reads=requests_so_far(sandbox) - requests)
        log(f"{gateways}: at rest between fate reads (watch --fates-every), pass {wall:.1f} s, {cpu:.1f} s CPU, "
            f"{figures['rest_no_fates_reads']} reads")
    return figures


def _profile_file(folder: Path | None, gateways: int, which: str) -> Path | None:
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"plan-{which}-{gateways}.prof"


def routes(sandbox: FleetSandbox) -> dict[str, dict[str, int]]:
    """Requests so far, per simulator and ``METHOD /route``."""
    return {name: dict(stats.requests) for name, stats in sandbox.stats().items()}


def _difference(after: Mapping[str, Mapping[str, int]], before: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Requests between two snapshots, per ``simulator METHOD /route`` (routes with none left out)."""
    return {f"{name} {route}": n - before.get(name, {}).get(route, 0) for name, counts in after.items()
            for route, n in counts.items() if n - before.get(name, {}).get(route, 0)}


# --- growth ---------------------------------------------------------------------------------------


def scalar(value: Any) -> float | None:
    if isinstance(value, Mapping):
        return float(sum(value.values()))
    return float(value) if isinstance(value, int | float) else None


def growth(results: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per figure, per 10x step: the ratio and whether it grows as it must."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, how in GROWTH.items():
        steps = []
        for low, high in zip(results, results[1:], strict=False):
            a, b = scalar(low.get(name)), scalar(high.get(name))
            if a is None or b is None or a <= 0:
                continue
            ratio = b / a
            size_step = high["gateways"] / low["gateways"]
            bound = (LINEAR * size_step / 10) if how == "linear" else FLAT
            judged = not (name.endswith("_s") and a < NOISE_FLOOR_S)
            steps.append({"from": low["gateways"], "to": high["gateways"], "ratio": round(ratio, 2),
                          "ok": ratio <= bound if judged else None})
        if steps:
            out[name] = steps
    return out


def print_growth(results: Sequence[Mapping[str, Any]], grown: Mapping[str, list[dict[str, Any]]]) -> None:
    sizes = [r["gateways"] for r in results]
    print(f"{'figure':<22}" + "".join(f"{s:>12,}" for s in sizes) + "   growth per 10x")
    for name, how in GROWTH.items():
        values = [scalar(r.get(name)) for r in results]
        if all(v is None for v in values):
            continue
        cells = "".join(f"{'-' if v is None else _fmt(v):>12}" for v in values)
        steps = ", ".join(f"{s['ratio']}x {_verdict(s['ok'], how)}" for s in grown.get(name, []))
        print(f"{name:<22}{cells}   {steps or '-'}")


def _verdict(ok: bool | None, how: str) -> str:
    if ok is None:
        return f"not judged (from under {NOISE_FLOOR_S} s)"
    return "ok" if ok else f"FASTER THAN {how.upper()}"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


# --- the plot -------------------------------------------------------------------------------------

PLOTTED = ("load_cpu_s", "plan_first_s", "plan_noop_s", "dry_run_rss_mb", "converge_s", "noop_s", "noop_reads")
COLOURS = ("#17becf", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def svg(results: Sequence[Mapping[str, Any]]) -> str:
    """A log-log plot of every cost against gateways, with the linear slope for reference; hand-written
    SVG (no plotting library in the project's dependencies)."""
    width, height, left, right, top, bottom = 640, 420, 60, 170, 30, 50
    sizes = [float(r["gateways"]) for r in results]
    series: dict[str, list[tuple[float, float]]] = {}
    for name in PLOTTED:
        measured = [(s, scalar(r.get(name))) for s, r in zip(sizes, results, strict=True)]
        series[name] = [(s, v) for s, v in measured if v]  # a log axis has no place for 0 or None
    values = [v for pts in series.values() for _, v in pts if v]
    if not values or len(sizes) < 2:
        return ""
    x0, x1 = math.log10(min(sizes)), math.log10(max(sizes))
    y0, y1 = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))

    def x(v: float) -> float:
        return left + (math.log10(v) - x0) / max(x1 - x0, 1e-9) * (width - left - right)

    def y(v: float) -> float:
        return top + (y1 - math.log10(v)) / max(y1 - y0, 1e-9) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{left}" y="18" font-size="13">Cost against fleet size (log-log; dashed: linear)</text>']
    for decade in range(y0, y1 + 1):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(10 ** decade):.1f}" y2="{y(10 ** decade):.1f}" '
                     f'stroke="#ddd"/><text x="{left - 6}" y="{y(10 ** decade) + 4:.1f}" text-anchor="end">'
                     f'1e{decade}</text>')
    for size in sizes:
        parts.append(f'<text x="{x(size):.1f}" y="{height - bottom + 16}" text-anchor="middle">{int(size):,}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">gateways</text>')
    for n, (name, pts) in enumerate(series.items()):
        if not pts:
            continue
        colour = COLOURS[n % len(COLOURS)]
        line = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in pts)
        start_s, start_v = pts[0]
        linear = f"{x(start_s):.1f},{y(start_v):.1f} {x(sizes[-1]):.1f},{y(start_v * sizes[-1] / start_s):.1f}"
        parts += [f'<polyline points="{linear}" fill="none" stroke="{colour}" stroke-dasharray="4 3" '
                  f'stroke-opacity="0.5"/>',
                  f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>',
                  *(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>' for s, v in pts),
                  f'<text x="{width - right + 10}" y="{top + 16 * n + 10}" fill="{colour}">{name}</text>']
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="gateways per fleet, comma-separated")
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--plan-runs", type=int, default=5)
    parser.add_argument("--skip-converge", action="store_true", help="plan time and dry-run RSS only")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write cProfile statistics of each plan here (plan-first-N.prof, plan-noop-N.prof)")
    parser.add_argument("--svg", default=str(PROJECT_DIR / "docs" / "growth.svg"),
                        help="where the plot goes ('' for none)")
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 gateways, no plot (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.svg, args.plan_runs = "100,1000", "", 1
    try:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    except ValueError:
        parser.error(f"--sizes: not a comma-separated list of integers: {args.sizes!r}")
    if not sizes or sizes[0] < 1 or sizes[-1] > 1_000_000:
        parser.error("--sizes: between 1 and 1,000,000 gateways")

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    os.environ.update(reconcile_env())
    results = [measure_size(s, latency_ms=args.latency_ms, plan_runs=args.plan_runs,
                            converge=not args.skip_converge, log=log, profile=args.profile) for s in sizes]
    grown = growth(results)
    print_growth(results, grown)
    goals = verdicts(results)
    for verdict in goals:
        print(f"{verdict['figure']} at {verdict['gateways']:,}: {verdict['value']} (goal <= {verdict['goal']}: "
              f"{'met' if verdict['met'] else 'NOT met'})")
    drawn = svg(results)
    if drawn and args.svg:
        target = Path(args.svg)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(drawn, encoding="utf-8")
        print(f"plot: {target}")
    rounded = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in results]
    print(json.dumps({"sizes": sizes, "latency_ms": args.latency_ms, "results": rounded, "growth": grown,
                      "goals": goals,
                      "all_linear": all(s["ok"] is not False for steps in grown.values() for s in steps)}))


if __name__ == "__main__":
    main()
