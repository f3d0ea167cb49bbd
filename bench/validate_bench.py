"""Validation throughput: documents validated per second, by ``load_desired_state`` and by the schema check alone.

Generates a valid repository of 10,000 documents in 1,000 files (every kind, realistic sizes: each
file is one team's campaigns against its own backends, with packages, inline and CSV recipients,
gateway lists, windows and quiet hours) in a temporary folder. Goal: at least 5,000 documents per
second for the whole load (``documents_per_second``, the figure ``run_all.py`` checks).

Two schema fast paths are compared in the same run (issue 18): the shipped one, jsonschema_rs'
compiled validator (``is_valid``), and the hand-compiled closures it replaced (``hand_compiled_check.py``,
kept only here). Each whole load is timed ``--runs`` times per fast path, alternating, after a warm-up
load; then the schema check alone is timed on every parsed document, with jsonschema itself (what
explains invalid documents) on the first ``--jsonschema-docs`` for reference. The comparisons are in
documents per CPU second of this process (``load_...``, ``check_...``), which other work on a shared
machine disturbs far less than the wall clock; ``documents_per_second`` is wall-clock, as the goal is.

    .venv/bin/python bench/validate_bench.py [--files 1000] [--runs 3] [--profile]

The figures are the last lines, ``name: value``, then all of them as one JSON object.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from hand_compiled_check import compile_fast_check

from reconciler.diagnostics import Diagnostic
from reconciler.load import load_desired_state, schema_check
from reconciler.load.yaml_source import parse_documents
from reconciler.model import Kind

GOAL = 5_000  # documents per second (measures.md)

IOT_TEAM = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: iot-{i}, labels: {{team: team-{i}, env: prod}}}}
spec:
  type: iot-campaigns
  url: https://iotc-{i}.example.net
  auth: {{username: ops-{i}, password: {{env: IOT_PASSWORD_{i}}}}}
  limits: {{concurrency: 16, requestsPerSecond: 50, timeoutSeconds: 10}}
  options: {{pageSize: 100}}
---
apiVersion: reconciler/v1
kind: Package
metadata: {{name: fw-{i}}}
spec: {{backend: iot-{i}, file: ../packages/fw-{p}.bin, description: Gateway firmware 2.{p}.0}}
---
apiVersion: reconciler/v1
kind: Package
metadata: {{name: cfg-{i}}}
spec: {{backend: iot-{i}, file: ../packages/cfg-{p}.json, description: Gateway configuration 2.{p}}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata:
  name: fw-rollout-{i}
  annotations: {{owner: team-{i}, ticket: OPS-{i}}}
spec:
  backend: iot-{i}
  description: Roll gateway firmware 2.{p} to the fleet of team {i}
  packages: [fw-{i}, cfg-{i}]
  settings: {{rebootPolicy: graceful, logLevel: info}}
  state: running
  approval: auto
  distributionList: {{id: fleet-{i}, reevaluationIntervalSeconds: 3600}}
  callbacks:
    completed: ops-webhook
    stateChange: {{destination: ops-webhook, trackedStates: [ACTIVATION_COMPLETE, DOWNLOAD_FAILED]}}
  rollout: {{waves: [5%, 25%, 100%], successThreshold: 95%, maxFailureRate: 5%}}
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: fw-{i}-north}}
spec:
  campaign: fw-rollout-{i}
  gateways: [{gateways}]
---
apiVersion: reconciler/v1
kind: GatewayAssignment
metadata: {{name: fw-{i}-south}}
spec:
  campaign: fw-rollout-{i}
  gatewaysFile: ../fleets/south-{p}.txt
  packages: [fw-{i}]
---
apiVersion: reconciler/v1
kind: Schedule
metadata: {{name: fw-{i}-nights}}
spec:
  campaign: fw-rollout-{i}
  download: {{begin: "2027-03-01T01:00:00Z", end: "2027-03-01T05:00:00Z"}}
  activation: {{begin: "2027-03-02T01:00:00Z", end: "2027-03-02T03:00:00Z"}}
"""

SMS_TEAM = """\
---
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: gw-{i}}}
spec:
  type: sms-gateway
  url: https://gw-{i}.example.net
  auth: {{username: admin, password: {{env: GW_PASSWORD_{i}}}}}
  options: {{authScheme: digest}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: notice-{i}}}
spec:
  backend: gw-{i}
  text: "Maintenance tonight 01:00-03:00 in #param#."
  recipients: {recipients}
  state: active
  rate: {{perSecond: 20}}
  deliveryReports: true
  onUnknownOutcome: skip
---
apiVersion: reconciler/v1
kind: Schedule
metadata: {{name: notice-{i}-hours}}
spec:
  campaign: notice-{i}
  active: {{from: "2027-12-05T08:00:00+01:00", until: "2027-12-05T20:00:00+01:00"}}
  quietHours: {{from: "21:00", to: "08:00", timezone: Europe/Berlin}}
"""

SIM_TEAM = """\
---
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: yate-{i}}}
spec:
  type: yateota
  url: https://ota-{i}.example.net
  auth: {{secret: {{env: YATE_SECRET_{i}}}}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: applet-{i}}}
spec:
  backend: yate-{i}
  campaignId: {campaign_id}
  state: running
  participants:
    retryFailed: {{maxAttempts: 3}}
    cancel: {{msisdn: ["4917000{i:05d}"]}}
---
apiVersion: reconciler/v1
kind: Schedule
metadata: {{name: applet-{i}-period}}
spec:
  campaign: applet-{i}
  active: {{from: "2027-01-10T00:00:00Z", until: "2027-03-31T00:00:00Z"}}
"""

SHARED_FILES = 20  # distinct package, fleet and recipient files, each named by many documents


def generate(folder: Path, files: int) -> int:
    """Write the repository; return the number of documents."""
    (folder / ".git").mkdir()  # the root
    for shared in ("packages", "fleets", "recipients"):
        (folder / "campaigns.d" / shared).mkdir(parents=True)
    for p in range(SHARED_FILES):
        (folder / "campaigns.d" / "packages" / f"fw-{p}.bin").write_bytes(bytes(range(256)) * (p + 1))
        (folder / "campaigns.d" / "packages" / f"cfg-{p}.json").write_text(f'{{"version": "2.{p}"}}\n')
        (folder / "campaigns.d" / "fleets" / f"south-{p}.txt").write_text(
            "# south fleet\n" + "".join(f"gw-{p}{g:04d}\n" for g in range(50)))
        (folder / "campaigns.d" / "recipients" / f"list-{p}.csv").write_text(
            "number,district\n" + "".join(f"+49171{p:02d}{r:05d},D{r % 7}\n" for r in range(200)))
    documents = 0
    for i in range(files):
        p = i % SHARED_FILES
        gateways = ", ".join(f"gw-n{i:04d}{g:02d}" for g in range(10))
        text = IOT_TEAM.format(i=i, p=p, gateways=gateways)
        if i % 2 == 0:
            recipients = (f"{{file: ../recipients/list-{p}.csv}}" if i % 10 == 0 else
                          "{inline: [" + ", ".join(f'"+4917{i:05d}{r:03d}"' for r in range(5)) + "]}")
            text += SMS_TEAM.format(i=i, recipients=recipients)
        else:
            text += SIM_TEAM.format(i=i, campaign_id=100 + i)
        documents += text.count("kind: ")
        sub = folder / "campaigns.d" / f"team-{i // 100:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"team-{i:04d}.yaml").write_text(text)
    return documents


Check = Callable[[Kind, Any], bool]


def hand_compiled() -> Check:
    """The retired fast path, as a ``passes_fast_check`` stand-in."""
    closures = {kind: compile_fast_check(schema_check.schema_for(kind), formats=schema_check.FORMATS)
                for kind in schema_check.SCHEMA_FILES}
    return lambda kind, value: closures[kind](value)


def jsonschema_only(kind: Kind, value: Any) -> bool:
    return bool(schema_check.validator_for(kind).is_valid(value))


#: name -> how to build it; the first is the shipped one
FAST_PATHS: dict[str, Callable[[], Check]] = {
    "jsonschema_rs": lambda: schema_check.passes_fast_check,
    "hand_compiled": hand_compiled,
}


def fast_paths() -> dict[str, Check]:
    """Each fast path, built once (jsonschema_rs' validators and the closures are compiled here)."""
    checks = {name: make() for name, make in FAST_PATHS.items()}
    for kind in schema_check.SCHEMA_FILES:
        for check in checks.values():
            check(kind, {})
    return checks


def parsed_documents(folder: Path) -> list[tuple[Kind, Any]]:
    """Every document of the repository, parsed as the loader parses it, with its kind."""
    found: list[tuple[Kind, Any]] = []
    for path in sorted(folder.rglob("*.yaml")):
        data = path.read_bytes()
        problems: list[Diagnostic] = []
        for doc in parse_documents(data, data.decode("utf-8"), file=str(path), problems=problems):
            found.append((Kind(doc.value["kind"]), doc.value))
    return found


def check_rate(check: Check, documents: list[tuple[Kind, Any]], runs: int) -> float:
    """Median documents per CPU second of ``check`` alone; every document must pass."""
    durations = []
    for _ in range(runs):
        started = time.process_time()
        passed = sum(1 for kind, value in documents if check(kind, value))
        durations.append(time.process_time() - started)
        if passed != len(documents):
            raise SystemExit(f"{passed} of {len(documents)} documents passed the check; all are valid")
    return len(documents) / statistics.median(durations)


def load_durations(target: list[Path], documents: int, checks: dict[str, Check],
                   runs: int) -> dict[str, list[tuple[float, float]]]:
    """Wall and CPU seconds of each whole load per fast path (``check_document`` made to use it), after
    one untimed load that warms the caches; the paths alternate so that drift hits both alike."""
    durations: dict[str, list[tuple[float, float]]] = {name: [] for name in checks}
    for run in range(runs + 1):
        for name, check in checks.items():
            with mock.patch.object(schema_check, "passes_fast_check", check):
                wall, cpu = time.perf_counter(), time.process_time()
                result = load_desired_state(target)
                if run:
                    durations[name].append((time.perf_counter() - wall, time.process_time() - cpu))
            if not result.valid:
                for diagnostic in result.diagnostics[:20]:
                    print(diagnostic.format(), file=sys.stderr)
                raise SystemExit("the generated repository is not valid")
            assert result.resources == documents, (result.resources, documents)
    return durations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jsonschema-docs", type=int, default=1000,
                        help="documents checked by jsonschema alone, for reference (it takes ~0.5 ms each)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary of one extra run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="validate-bench-") as tmp:
        folder = Path(tmp)
        documents = generate(folder, args.files)
        target = [folder / "campaigns.d"]
        checks = fast_paths()
        durations = load_durations(target, documents, checks, args.runs)
        parsed = parsed_documents(target[0])
        assert len(parsed) == documents, (len(parsed), documents)
        check = {name: check_rate(test, parsed, args.runs) for name, test in checks.items()}
        check["jsonschema"] = check_rate(jsonschema_only, parsed[:args.jsonschema_docs], 1)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(load_desired_state, target)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    shipped = [wall for wall, _ in durations["jsonschema_rs"]]
    median = statistics.median(shipped)
    figures: dict[str, Any] = {
        "runs": args.runs, "seconds_min": round(min(shipped), 3), "seconds_max": round(max(shipped), 3),
        "documents": documents, "files": args.files, "seconds": round(median, 3),
        "documents_per_second": round(documents / median),
        **{f"load_documents_per_cpu_second_{name}": round(documents / statistics.median(cpu for _, cpu in timed))
           for name, timed in durations.items()},
        **{f"check_documents_per_cpu_second_{name}": round(rate) for name, rate in check.items()},
    }
    for name, value in figures.items():
        print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
    print(json.dumps({**figures, "goals": {"documents_per_second": GOAL}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
