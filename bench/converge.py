"""Converge the standard fleet from empty backends, then run again with nothing to do.

Figures (``measures.md``), each the median of ``--runs`` runs with min and max:
- ``converge_ideal``: wall time of ``reconcile PATH`` (process start to exit) over the ideal of
  ``ideal.py`` (goal <= 1.2, ``measures.md``; 1.3 is the large fleet's, in ``growth.py``);
- ``requests_minimum``: requests the converge issued, from every simulator's ``/_sandbox/stats``, over
  the fewest the APIs allow (goal <= 1.05); ``probe_requests``: how many of them were the new store's
  probe of the SMS gateway before it sends (one ``query_sms_result`` per 32 recipients, so that a new
  store never sends what another one sent; ``ideal.py`` does not count it), and
  ``requests_minimum_less_probe`` the ratio without them;
- ``noop_writes``: write requests of the second run (goal 0); ``noop_converge``: its wall time over
  the first run's; ``noop_reads_minimum``: its requests over the fewest reads it needs;
- ``cpu_per_action_us``: the reconciler process's CPU time (user + system, its own process: the
  sandbox runs in another one) over the actions it executed, where an SMS send counts once per message,
  since each message is an effect of its own, recorded in the send ledger (goal <= 100 us); and
  ``cpu_per_plan_action_us``, the same over plan actions only (a send-sms action counted once).

    .venv/bin/python bench/converge.py [--runs 3] [--latency-ms 10] [--ogangi-in-flight N] [--quick]

Each run resets the sandbox (empty IoT manager, fresh YateOTA fleet, empty SMS backends) and uses a
new state store. ``--ogangi-in-flight 16`` measures the variant where Ogangi is not serialised.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path

from fleet import FleetSpec, add_spec_arguments, spec_from, write_fleet
from fleet_sandbox import FleetSandbox, fleet_sandbox, free_port_base
from ideal import ideal_seconds, minimum_noop_reads, minimum_requests
from measure import print_figures, run_reconciler, state_url, summarise

#: a converge from empty backends asks the gateway nothing but the fresh store's probe (fates come next pass)
PROBE_ROUTE = "POST /api/query_sms_result"
GOALS = {"converge_ideal": 1.2, "requests_minimum": 1.05, "noop_writes": 0, "cpu_per_action_us": 100}
GATEWAY_WRITES = {"POST /api/send_sms", "GET /api/stop_sms", "GET /api/set_port_info"}


def write_requests(name: str, requests: Counter[str], yate_calls: Counter[str]) -> int:
    """Requests that change something, per simulator (YateOTA: by request name, every call is a POST)."""
    if name == "yateota":
        return sum(n for call, n in yate_calls.items() if call.startswith("action_"))
    if name == "iot-campaigns":
        return sum(n for route, n in requests.items() if not route.startswith("GET ") and route != "POST /api/tokens")
    if name == "ogangi":
        return sum(n for route, n in requests.items() if "getMOMessages" not in route)
    return sum(n for route, n in requests.items() if route in GATEWAY_WRITES)


def snapshot(sandbox: FleetSandbox) -> tuple[dict[str, Counter[str]], Counter[str]]:
    """Requests so far by simulator and route, and YateOTA's calls by request name."""
    stats = {name: Counter(figures.requests) for name, figures in sandbox.stats().items()}
    yate = sandbox.control("yateota").state()
    return stats, Counter(yate.get("requests_by_name", {}))


def ledger_messages(state_db: Path) -> int:
    """Messages the converge handed to a backend (every ledger row past ``dispatching``)."""
    with sqlite3.connect(state_db) as db:
        return int(db.execute("SELECT COUNT(*) FROM send_ledger WHERE state != 'dispatching'").fetchone()[0])


def one_run(sandbox: FleetSandbox, spec: FleetSpec, decl: Path, folder: Path, run: int,
            latency_ms: float) -> dict[str, float]:
    sandbox.reset()
    sandbox.set_latency(latency_ms)
    state = state_url(folder, f"state-{run}.db")
    # a new store and an emptied Ogangi, which cannot be asked what it got: the operator's yes to sending
    command = [str(decl), "--state", state, "--risk-duplicate-sms"]
    sandbox_cpu = sandbox.cpu_seconds()
    converge = run_reconciler(command).succeeded()
    sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu
    after_converge, yate_converge = snapshot(sandbox)
    noop = run_reconciler(command).succeeded()
    after_noop, yate_noop = snapshot(sandbox)
    requests = sum(sum(c.values()) for c in after_converge.values())
    probe = after_converge.get("sms-gateway", Counter()).get(PROBE_ROUTE, 0)
    noop_requests = sum(sum((after_noop[n] - after_converge[n]).values()) for n in after_noop)
    writes = sum(write_requests(n, after_noop[n] - after_converge[n], yate_noop - yate_converge) for n in after_noop)
    ideal, _ = ideal_seconds(spec, latency_ms / 1000)
    plan_actions = converge.actions()
    messages = ledger_messages(folder / f"state-{run}.db")
    effects = plan_actions - _sms_actions(spec) + messages
    return {
        "converge_s": converge.wall_s, "ideal_s": ideal, "converge_ideal": converge.wall_s / ideal,
        "requests": requests, "requests_minimum": requests / minimum_requests(spec), "probe_requests": probe,
        "requests_minimum_less_probe": (requests - probe) / minimum_requests(spec),
        "noop_s": noop.wall_s, "noop_converge": noop.wall_s / converge.wall_s, "noop_writes": writes,
        "noop_requests": noop_requests, "noop_reads_minimum": noop_requests / minimum_noop_reads(spec),
        "cpu_s": converge.cpu_s, "actions": effects, "cpu_per_action_us": converge.cpu_s / effects * 1e6,
        "cpu_per_plan_action_us": converge.cpu_s / plan_actions * 1e6, "max_rss_mb": converge.max_rss_mb,
        "noop_cpu_s": noop.cpu_s, "sandbox_cpu_s": sandbox_cpu,
    }


def _sms_actions(spec: FleetSpec) -> int:
    return int(spec.sms_recipients > 0) + int(spec.ogangi_recipients > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=10.0,
                        help="sandbox response time per request; above 0, since the ideal is a multiple of it")
    parser.add_argument("--quick", action="store_true", help="a small fleet and one run (smoke test)")
    add_spec_arguments(parser)
    args = parser.parse_args()
    if args.latency_ms <= 0:
        parser.error("--latency-ms must be above 0: the ideal is requests x latency, so with none there is "
                     "nothing to divide by (sms_memory.py measures the latency-free send)")
    spec = spec_from(args, quick=args.quick)
    runs = 1 if args.quick else args.runs
    base = free_port_base()
    with tempfile.TemporaryDirectory(prefix="bench-converge-") as tmp, \
            fleet_sandbox(spec, port_base=base, latency_ms=args.latency_ms) as sandbox:
        decl = write_fleet(spec, Path(tmp) / "repo", port_base=base)
        results = [one_run(sandbox, spec, decl, Path(tmp), n, args.latency_ms) for n in range(runs)]
    _, by = ideal_seconds(spec, args.latency_ms / 1000)
    digits = {"requests": 0, "probe_requests": 0, "noop_writes": 0, "noop_requests": 0, "actions": 0,
              "cpu_per_action_us": 1,
              "cpu_per_plan_action_us": 1, "max_rss_mb": 1}
    print_figures(summarise(results), digits=digits,
                  extra={"runs": runs, "latency_ms": args.latency_ms, "ideal_set_by": by,
                         "ogangi_in_flight": spec.ogangi_in_flight or 1, "minimum_requests": minimum_requests(spec),
                         "goals": GOALS})


if __name__ == "__main__":
    main()
