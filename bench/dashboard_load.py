"""The dashboard's overview with 100 campaigns and 10,000 gateways: server render time and, in headless
Chromium, time to ``DOMContentLoaded``; and the daemon's extra memory while a dashboard is open.

    .venv/bin/python bench/dashboard_load.py [--runs 15] [--skip-rss]

Load: the view layer is fed a synthetic daemon state (``tests/daemon/dashboard_fleet.fleet_snapshot``: 89
IoT rollouts over 10,000 gateways, every gateway in its campaign, 10 SMS campaigns mid-send and one YateOTA
campaign), not a real sandbox: a real daemon would first have to roll 10,000 gateways out, and the page
costs the same whatever produced the state. ``server_render_ms`` is view-models plus Jinja for the whole
page (median of ``--runs``); ``dom_content_loaded_ms`` is Chromium's navigation timing for the page served
over loopback by a Starlette server that renders it on every request (request, render, transfer, parse;
the CSS and script are the daemon's own, served as the daemon serves them: cached once fetched). Goal: under 300 ms to first render.

Memory: what the dashboard's code costs (jinja2, the package, its compiled templates: RSS of a process before
and after importing it and rendering each page once); and a real ``reconcile watch`` over the sandbox (an IoT rollout of 20 gateways, a YateOTA campaign, an
SMS send of 300): its RSS (``/proc/PID/status``) once settled, then with a page loaded and an event stream
connected for ``HOLD_S`` seconds; the difference is the dashboard's extra memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fleet, sandbox and daemon helpers

from reconciler.daemon.dashboard.assets import Assets  # noqa: E402
from reconciler.daemon.dashboard.rendering import Pages, View  # noqa: E402
from tests.daemon.dashboard_fleet import fleet_snapshot  # noqa: E402

CAMPAIGNS_IOT, CAMPAIGNS_SMS, GATEWAYS = 89, 10, 10_000
GOAL_MS = 300
HOLD_S = 10.0
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_times(pages: Pages, runs: int) -> tuple[list[float], int]:
    snapshot = fleet_snapshot(iot_campaigns=CAMPAIGNS_IOT, gateways=GATEWAYS, sms_campaigns=CAMPAIGNS_SMS,
                              members=1.0)
    assert snapshot.desired is not None and len(snapshot.desired.campaigns) == 100
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        html, _ = pages.page(snapshot, View("overview"))
        times.append((time.perf_counter() - started) * 1000)
        size = len(html.encode())
    return times, size


def serve_overview(pages: Pages) -> tuple[uvicorn.Server, str]:
    snapshot = fleet_snapshot(iot_campaigns=CAMPAIGNS_IOT, gateways=GATEWAYS, sms_campaigns=CAMPAIGNS_SMS,
                              members=1.0)

    async def overview(request: Request) -> Response:
        return HTMLResponse(pages.page(snapshot, View("overview"))[0])

    async def no_stream(request: Request) -> Response:
        return Response(status_code=204)  # no daemon behind this page: an event source stops at a 204

    app = Starlette(routes=[Route("/", overview), Route("/static/{name}", Assets().serve),
                            Route("/events/overview", no_stream)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{port}/"


def browser_times(url: str, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)  # warm: the browser's own start-up is not the page's
        for _ in range(runs):
            page.goto(url, wait_until="domcontentloaded")
            times.append(page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))
        browser.close()
    return times


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def daemon_extra_rss() -> dict[str, float]:
    """RSS of a real daemon before and while a dashboard is open (a page load and an event stream)."""
    from reconciler.sandbox.run import SandboxOptions, running_sandbox
    from tests.daemon.daemon_process import DaemonProcess
    from tests.daemon.dashboard_repo import SECRETS, fleet_repo, numbers

    folder = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        with running_sandbox(SandboxOptions(port_base=0, gateway_count=40, seed=3)) as sandbox:
            decl = fleet_repo(folder / "ops", sandbox, recipients=numbers(300), per_second=300)
            daemon = DaemonProcess(folder, str(decl), "--state", f"sqlite:///{folder}/state.db", "--resync", "5",
                                   env=SECRETS)
            try:
                daemon.wait_ready()
                time.sleep(HOLD_S)  # the send is over and a few resyncs ran: settled
                before = rss_kb(daemon.process.pid)
                stream_open = threading.Event()

                def watch() -> None:
                    with httpx.stream("GET", daemon.url + "/events/overview", timeout=HOLD_S + 10) as reply:
                        stream_open.set()
                        started = time.monotonic()
                        for _ in reply.iter_text():
                            if time.monotonic() - started > HOLD_S:
                                break

                watcher = threading.Thread(target=watch)
                watcher.start()
                stream_open.wait(10)
                for path in ("/", "/campaigns/fw-rollout", "/campaigns/outage-notice", "/history"):
                    daemon.get(path).raise_for_status()
                time.sleep(HOLD_S / 2)
                during = rss_kb(daemon.process.pid)
                watcher.join()
            finally:
                daemon.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"daemon_rss_mb": before / 1024, "daemon_rss_with_dashboard_mb": during / 1024,
            "dashboard_extra_rss_mb": (during - before) / 1024}


CODE_COST = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
def rss():
    return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
import starlette.applications, uvicorn, structlog, prometheus_client, httpx
import reconciler.engine.reconcile, reconciler.daemon.metrics, reconciler.daemon.webhooks, reconciler.state.store
before = rss()
from reconciler.daemon.dashboard.app import Dashboard
from reconciler.daemon.dashboard.rendering import Pages, View
from tests.daemon.dashboard_fleet import fleet_snapshot
pages, snapshot = Pages(), fleet_snapshot()
for view in (View("overview"), View("history"), View("campaign", "fw-rollout-000"), View("campaign", "notice-000")):
    pages.page(snapshot, view)
print(rss() - before)
"""


def dashboard_code_rss() -> float:
    """What the dashboard's code costs a daemon: jinja2, the package and its compiled templates (MB)."""
    import subprocess

    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", CODE_COST.format(root=root)], capture_output=True, text=True,
                          check=True, cwd=root)
    return int(done.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--skip-rss", action="store_true", help="only the page load (no sandbox, no daemon)")
    args = parser.parse_args()
    pages = Pages()
    renders, size = render_times(pages, args.runs)
    print(f"state: 100 campaigns, {GATEWAYS:,} gateways (synthetic daemon state); page {size / 1024:.0f} KiB")
    print(f"server_render_ms: {statistics.median(renders):.1f} (min {min(renders):.1f}, max {max(renders):.1f})")
    figures: dict[str, float] = {"server_render_ms": round(statistics.median(renders), 1)}
    if os.path.exists(CHROMIUM):
        server, url = serve_overview(pages)
        try:
            loads = browser_times(url, args.runs)
        finally:
            server.should_exit = True
        print(f"dom_content_loaded_ms: {statistics.median(loads):.1f} (min {min(loads):.1f}, max {max(loads):.1f}); "
              f"goal < {GOAL_MS}")
        figures["dom_content_loaded_ms"] = round(statistics.median(loads), 1)
    else:
        print(f"dom_content_loaded_ms: not measured ({CHROMIUM} is missing)")
    if not args.skip_rss:
        memory = {"dashboard_code_rss_mb": dashboard_code_rss(), **daemon_extra_rss()}
        for name, value in memory.items():
            print(f"{name}: {value:.1f}")
        figures.update({name: round(value, 1) for name, value in memory.items()})
    print(__import__("json").dumps(figures))


if __name__ == "__main__":
    main()
