"""The dashboard's routes on the daemon's server: pages, their event streams, and the static assets.

Live updates are server-sent events: a stream renders its page again whenever the snapshot's version
moves (``live``) and sends the new ``<main>`` when its HTML changed (``event: update``); every
``HEARTBEAT_S`` it says ``event: alive`` with the server's time, so the page can tell a quiet daemon from
a lost one. Streams are bounded in number (``MAX_STREAMS``) and in life (``STREAM_LIFE_S``: the browser
reconnects by itself), and all end when the daemon stops, so a shutdown never waits on an open page.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from reconciler.daemon.dashboard.assets import Assets
from reconciler.daemon.dashboard.auth import SECURITY_HEADERS
from reconciler.daemon.dashboard.live import DaemonState, DashboardFeed, LiveState, log, run_ticks
from reconciler.masking import mask_numbers_in
from reconciler.daemon.dashboard.rendering import Pages, View

HEARTBEAT_S = 5.0
STREAM_LIFE_S = 600.0
MAX_STREAMS = 32
FRESH_S = 0.5  # a page load reads the store again when the snapshot is older than this
_HEADERS = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}


def server_event(kind: str, data: str) -> str:
    """One SSE message; every line of ``data`` gets its own ``data:`` field (a bare CR too is a line end)."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f"event: {kind}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


class Dashboard:
    """The dashboard of one daemon: ``routes()`` go into its app, ``run()`` ticks until ``close()``."""

    def __init__(self, daemon: DaemonState, *, scrub: Callable[[str], str]) -> None:
        self.feed = DashboardFeed()
        self.live = LiveState(daemon, self.feed)
        self.assets = Assets()
        self.scrub = scrub
        self.pages = Pages(lambda text: mask_numbers_in(scrub(text)), assets=self.assets)
        self.stopping = asyncio.Event()
        self._rendered: dict[View, tuple[int, str, bool]] = {}

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self.overview), Route("/history", self.history), Route("/campaigns/{name}", self.campaign),
                Route("/events/overview", self.events), Route("/events/history", self.events),
                Route("/events/campaigns/{name}", self.events), Route("/static/{name}", self.assets.serve)]

    async def run(self) -> None:
        await run_ticks(self.live, self.stopping, scrub=self.scrub)

    async def close(self) -> None:
        """End the ticks and every open stream (the server then shuts down without waiting on them)."""
        self.stopping.set()
        await self.live.wake()

    # --- pages --------------------------------------------------------------------------------------

    def render(self, view: View) -> tuple[str, bool]:
        """The view's fragment for the current version (shared by every stream showing it)."""
        version = self.live.version
        cached = self._rendered.get(view)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        html, found = self.pages.fragment(self.live.snapshot, view)
        if len(self._rendered) > 4 * MAX_STREAMS:
            self._rendered.clear()
        self._rendered[view] = (version, html, found)
        return html, found

    async def _page(self, view: View) -> Response:
        if time.monotonic() - self.live.refreshed > FRESH_S:
            try:
                await self.live.refresh(history=True)
            except Exception as exc:  # noqa: BLE001  (the last snapshot is shown; the ticks log and retry)
                log.warning("dashboard.refresh_failed", error=self.scrub(f"{type(exc).__name__}: {exc}")[:300])
        main, found = self.render(view)
        return HTMLResponse(self.pages.shell(view, main), status_code=200 if found else 404, headers=_HEADERS)

    async def overview(self, request: Request) -> Response:
        return await self._page(View("overview"))

    async def history(self, request: Request) -> Response:
        return await self._page(View("history"))

    async def campaign(self, request: Request) -> Response:
        return await self._page(View("campaign", request.path_params["name"]))

    # --- live ---------------------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        path = request.url.path
        view = View("campaign", request.path_params["name"]) if "name" in request.path_params else \
            View("history" if path.endswith("/history") else "overview")
        if self.live.watchers >= MAX_STREAMS:
            return PlainTextResponse(f"too many open dashboards (at most {MAX_STREAMS})\n", status_code=503,
                                     headers={"retry-after": "10"})
        return StreamingResponse(self._stream(view), media_type="text/event-stream",
                                 headers={**_HEADERS, "x-accel-buffering": "no"})

    async def _stream(self, view: View) -> AsyncIterator[str]:
        self.live.watchers += 1
        try:
            yield "retry: 2000\n\n"
            sent, version, ends = "", -1, time.monotonic() + STREAM_LIFE_S
            while not self.stopping.is_set() and time.monotonic() < ends:
                if self.live.version != version:
                    version = self.live.version
                    html, _ = self.render(view)
                    if html != sent:
                        sent = html
                        yield server_event("update", html)
                if not await self.live.wait_change(version, HEARTBEAT_S) and not self.stopping.is_set():
                    yield server_event("alive", f"{datetime.now(UTC):%H:%M:%S}")
        finally:
            self.live.watchers -= 1
