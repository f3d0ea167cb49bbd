"""Peak memory and CPU of the executor alone, for plans of N synthetic actions: the executor of the working
tree against the one of a git revision (``--against``, default HEAD), each N in a process of its own.

    .venv/bin/python bench/executor_memory.py [--sizes 10000,100000,200000] [--against HEAD] [--only new]

The plan has the shape the planner gives a large IoT fleet: per campaign of ``GATEWAYS_PER_CAMPAIGN``
gateways, create-campaign -> add-gateways -> two schedule-gateway actions per gateway -> start-campaign (which
waits on all of them), campaigns spread over two backends, ``Produced`` campaign ids. The writers perform
nothing (they yield to the event loop once, as a request would), there is no state store, and a progress sink
counts outcomes. Figures per executor and N: peak RSS of the process (``ru_maxrss``), the part of it the run
added (peak minus the RSS once the plan is built), and CPU (user + system) per action.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.actions import Action, Produced, Verb  # noqa: E402
from reconciler.model import Kind, ResourceKey  # noqa: E402
from reconciler.planner.plan import Plan  # noqa: E402
from reconciler.secrets import Redactor  # noqa: E402

GATEWAYS_PER_CAMPAIGN = 2_000
WINDOWS = ("download", "execution")
BACKENDS = ("iot-a", "iot-b")


def synthetic_plan(actions: int) -> Plan:
    """About ``actions`` actions: 2 per gateway and 3 per campaign."""
    built: list[Action] = []
    campaign = 0
    while len(built) < actions:
        name, backend = f"c{campaign:05d}", BACKENDS[campaign % len(BACKENDS)]
        gateways = min(GATEWAYS_PER_CAMPAIGN, max(1, (actions - len(built) - 3) // len(WINDOWS)))
        built.extend(campaign_actions(name, backend, gateways))
        campaign += 1
    return Plan(actions=tuple(built))


def campaign_actions(name: str, backend: str, gateways: int) -> list[Action]:
    key, base = ResourceKey(Kind.CAMPAIGN, name), f"{backend}/campaign/{name}"
    cid = Produced(f"{base}/create-campaign", "campaign_id")
    ids = [f"gw-{name}-{g:05d}" for g in range(gateways)]
    out = [Action(f"{base}/create-campaign", Verb.CREATE_CAMPAIGN, key, backend, {"name": name}),
           Action(f"{base}/add-gateways", Verb.ADD_GATEWAYS, key, backend, {"campaign_id": cid, "gateway_ids": ids},
                  (f"{base}/create-campaign",))]
    schedules = [Action(f"{base}/schedule-gateway/{gw}/{w}", Verb.SCHEDULE_GATEWAY, key, backend,
                        {"campaign_id": cid, "gateway_id": gw, "window": w, "begin_ms": 0, "end_ms": 3_600_000},
                        (f"{base}/add-gateways",)) for gw in ids for w in WINDOWS]
    start = Action(f"{base}/start-campaign", Verb.START_CAMPAIGN, key, backend, {"campaign_id": cid},
                   (f"{base}/add-gateways", *(s.id for s in schedules)))
    return [*out, *schedules, start]


class NoopWriter:
    async def apply(self, action: Action) -> Mapping[str, Any]:
        await asyncio.sleep(0)
        return {"campaign_id": 1} if action.verb is Verb.CREATE_CAMPAIGN else {}

    async def aclose(self) -> None:
        return None


class CountingProgress:
    def __init__(self) -> None:
        self.done_count = 0

    def planned(self, actions: int, messages: int) -> None:
        return None

    def done(self, outcome: Any) -> None:
        self.done_count += 1

    def sent(self, messages: int) -> None:
        return None


def rss_now_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_executor_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def measure(module_path: Path, actions: int) -> dict[str, float]:
    """In this process: build the plan, run the executor of ``module_path`` over it, report the figures."""
    module = load_module(module_path)
    plan = synthetic_plan(actions)
    writer, progress = NoopWriter(), CountingProgress()
    executor = module.Executor(writers={b: writer for b in BACKENDS}, store=None, redactor=Redactor(),
                               progress=progress)
    before_mb = rss_now_mb()
    cpu0, wall0 = time.process_time(), time.perf_counter()

    async def run() -> tuple[Any, float]:
        """The peak is read as the run ends, before ``asyncio.run`` tears its loop down (on CPython 3.11 the
        teardown after a large run raises ``ru_maxrss`` by some 240 MB at 200k actions, whichever executor)."""
        done = await executor.run(plan)
        return done, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    report, peak_mb = asyncio.run(run())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert report.ok and len(report.outcomes) == len(plan.actions) == progress.done_count
    return {"actions": len(plan.actions), "peak_rss_mb": round(peak_mb, 1),
            "run_added_mb": round(peak_mb - before_mb, 1), "cpu_us_per_action": round(cpu / len(plan.actions) * 1e6, 1),
            "wall_s": round(wall, 2)}


def in_child(module_path: Path, actions: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", str(module_path), str(actions)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"error: measuring {module_path.name} at {actions} actions failed:\n{done.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def old_module(revision: str, folder: Path) -> Path:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:reconciler/engine/execute.py"],
                            capture_output=True, text=True, check=True).stdout
    path = folder / "execute_old.py"
    path.write_text(source)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,200000")
    parser.add_argument("--against", default="HEAD", help="git revision whose executor is compared")
    parser.add_argument("--only", choices=("old", "new"), help="measure one executor only")
    parser.add_argument("--child", nargs=2, metavar=("MODULE", "ACTIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), int(args.child[1]))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
        executors = {"old": old_module(args.against, Path(tmp)), "new": ROOT / "reconciler/engine/execute.py"}
        print(f"{'executor':<9}{'actions':>9}{'peak RSS MB':>13}{'run added MB':>14}{'CPU us/action':>15}{'wall s':>8}")
        for n in sizes:
            for name, path in executors.items():
                if args.only and name != args.only:
                    continue
                f = in_child(path, n)
                print(f"{name:<9}{f['actions']:>9}{f['peak_rss_mb']:>13}{f['run_added_mb']:>14}"
                      f"{f['cpu_us_per_action']:>15}{f['wall_s']:>8}", flush=True)


if __name__ == "__main__":
    main()
