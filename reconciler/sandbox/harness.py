"""What every simulator shares: the ``/_sandbox/`` control API, request statistics, fault injection,
the simulated clock, persistence, and a real HTTP(S) server on loopback.

A simulator is a plain object implementing ``Simulator`` (routes + state); ``SandboxApp`` wraps it in
an ASGI app and ``SandboxServer`` serves that app with uvicorn, in a background thread (tests) or in
the caller's event loop (``reconcile sandbox``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.faults import FaultDraw, FaultInjector

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONTROL_PREFIX = "/_sandbox/"


class Simulator(Protocol):
    """One backend's behaviour. All methods run on the server's event loop thread."""

    name: str

    def routes(self) -> list[BaseRoute]:
        """The backend's API routes (Starlette routes, paths as the real API spells them)."""
        ...

    def advance(self, now: float) -> None:
        """Move lifecycles (participants, gateways, messages) forward to simulated time ``now``.
        Called before every API request and every ``/_sandbox/state`` dump."""
        ...

    def reset(self) -> None:
        """Back to the fixtures the simulator starts with."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-able: served by ``GET /_sandbox/state`` and persisted by ``--state``."""
        ...

    def restore(self, data: dict[str, Any]) -> None:
        """Load what ``snapshot()`` returned."""
        ...

    def malformed(self, body: bytes) -> bytes:
        """A corrupted version of a reply body in this backend's format (truncated JSON or XML)."""
        ...


class RequestStats:
    """Counts requests by ``METHOD /route-template`` (e.g. ``GET /api/campaigns/{campaign_id}``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self._counts.values()), "requests": dict(sorted(self._counts.items()))}

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


class DroppedConnection(Exception):
    """Raised inside the ASGI app after the response started, so uvicorn closes the socket."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


#: the most the latency timer may aim early: lateness beyond this is a busy machine, not the timer
MAX_TIMER_LATENESS_S = 0.002


@dataclass
class _Captured:
    status: int = 500
    headers: list[tuple[bytes, bytes]] | None = None
    body: bytes = b""


class SandboxApp:
    """The ASGI app of one simulator: control endpoints first, then faults, stats and the API."""

    def __init__(
        self,
        simulator: Simulator,
        *,
        clock: SimClock,
        faults: FaultInjector | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.simulator = simulator
        self.clock = clock
        self.faults = faults or FaultInjector()
        self.stats = RequestStats()
        self.state_file = state_file
        self._timer_lateness = 0.0  # seconds: the mean of how late the latency timer woke, learned
        self.api_routes = simulator.routes()
        self.api = Router(routes=self.api_routes)
        self.control = Router(routes=self._control_routes())

    # --- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"].startswith(CONTROL_PREFIX):
            await self.control(scope, receive, send)
            return
        reply_due = asyncio.get_running_loop().time()
        self.stats.count(f"{scope['method']} {self._template(scope)}")
        fate = self.faults.draw()
        reply_due += fate.latency_s
        if fate.error:
            await self._sleep_until(reply_due)
            await self._error_reply(scope, receive, send)
            return
        self.simulator.advance(self.clock.now())
        captured = await self._run_api(scope, receive)
        await self._sleep_until(reply_due)
        await self._deliver(captured, fate, send)

    async def _sleep_until(self, due: float) -> None:
        """Wait until ``due`` on the loop's clock. The injected latency is the simulator's response time,
        its own work included (as with a real backend), so the machine's speed does not add to it. Timers
        wake late (by 0.3 ms on a small VM; epoll also rounds every wait up to a whole millisecond), so
        the simulator learns its timer's mean lateness and aims that much early: otherwise a backend
        asked for 10 ms answered in 10.9."""
        loop = asyncio.get_running_loop()
        delay = due - loop.time() - self._timer_lateness
        if delay <= 0:
            return
        await asyncio.sleep(delay)
        late = loop.time() - due  # how far from ``due`` this wake-up landed, aiming early included
        self._timer_lateness = min(max(self._timer_lateness + late * 0.1, 0.0), MAX_TIMER_LATENESS_S)

    def _template(self, scope: Scope) -> str:
        for route in self.api_routes:
            match, _ = route.matches(scope)
            if match is Match.FULL and isinstance(route, Route):
                return route.path
        return scope["path"]

    async def _run_api(self, scope: Scope, receive: Receive) -> _Captured:
        captured = _Captured()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured.body += message.get("body", b"")

        await self.api(scope, receive, capture)
        return captured

    async def _deliver(self, captured: _Captured, fate: FaultDraw, send: Send) -> None:
        body = captured.body
        if fate.malformed and body:
            body = self.simulator.malformed(body)
        headers = [(k, v) for k, v in captured.headers or [] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        if fate.timeout:
            try:
                await asyncio.sleep(self.faults.settings.timeout_s)
            except asyncio.CancelledError:  # server shutting down while a client waits
                raise DroppedConnection() from None
        await send({"type": "http.response.start", "status": captured.status, "headers": headers})
        if fate.drop or fate.timeout:
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            raise DroppedConnection()
        await send({"type": "http.response.body", "body": body})

    async def _error_reply(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.faults.settings
        status = settings.error_status
        headers = {"Retry-After": str(int(settings.retry_after_s))} if status in (429, 503) else {}
        reply = JSONResponse(
            {"code": "SANDBOX_FAULT", "message": f"injected fault: HTTP {status}"},
            status_code=status,
            headers=headers,
        )
        await reply(scope, receive, send)

    # --- /_sandbox/ ------------------------------------------------------------------------------

    def _control_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/stats", self._get_stats, methods=["GET"]),
            Route("/_sandbox/faults", self._post_faults, methods=["POST"]),
            Route("/_sandbox/faults", self._get_faults, methods=["GET"]),
            Route("/_sandbox/clock", self._post_clock, methods=["POST"]),
            Route("/_sandbox/clock", self._get_clock, methods=["GET"]),
            Route("/_sandbox/state", self._get_state, methods=["GET"]),
            Route("/_sandbox/reset", self._post_reset, methods=["POST"]),
        ]

    async def _get_stats(self, request: Request) -> Response:
        return JSONResponse(self.stats.as_dict())

    async def _get_faults(self, request: Request) -> Response:
        return JSONResponse(self.faults.settings.as_dict())

    async def _post_faults(self, request: Request) -> Response:
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        try:
            settings = self.faults.configure(body)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"code": "BAD_REQUEST", "message": str(exc)}, status_code=400)
        return JSONResponse(settings.as_dict())

    async def _get_clock(self, request: Request) -> Response:
        return JSONResponse({"now": self.clock.now(), "offset_s": self.clock.offset})

    async def _post_clock(self, request: Request) -> Response:
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        try:
            now = self.clock.advance(float(body.get("advance_s", 0)))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"code": "BAD_REQUEST", "message": str(exc)}, status_code=400)
        self.simulator.advance(now)
        return JSONResponse({"now": now, "offset_s": self.clock.offset})

    async def _get_state(self, request: Request) -> Response:
        self.simulator.advance(self.clock.now())
        return JSONResponse(self.simulator.snapshot())

    async def _post_reset(self, request: Request) -> Response:
        self.simulator.reset()
        self.stats.clear()
        self.faults.configure({**self.faults.settings.as_dict(), **_NO_FAULTS})
        return JSONResponse({"reset": True})

    # --- persistence -----------------------------------------------------------------------------

    def load_state(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text(encoding="utf-8"))
        self.clock.set_offset(float(data.get("clock_offset_s", 0.0)))
        self.simulator.restore(data["simulator"])

    def save_state(self) -> None:
        if self.state_file is None:
            return
        data = {"clock_offset_s": self.clock.offset, "simulator": self.simulator.snapshot()}
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.state_file)


_NO_FAULTS = {
    "latency_ms": 0.0,
    "error_rate": 0.0,
    "timeout_rate": 0.0,
    "drop_rate": 0.0,
    "malformed_rate": 0.0,
}


async def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return JSONResponse({"code": "BAD_REQUEST", "message": "body is not JSON"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"code": "BAD_REQUEST", "message": "body must be an object"}, status_code=400)
    return body


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate and key (PEM files) and the CA that signed it, for clients to trust."""

    cert_file: Path
    key_file: Path
    ca_file: Path


class SandboxServer:
    """Serves one ``SandboxApp`` on loopback. ``port=0`` picks a free port (tests)."""

    def __init__(
        self,
        app: SandboxApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsFiles | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.tls = tls
        logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            ssl_certfile=str(tls.cert_file) if tls else None,
            ssl_keyfile=str(tls.key_file) if tls else None,
        )
        self.server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", None) or []
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.config.port)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def serve(self) -> None:
        """Run in the current event loop until ``stop()`` (or a signal handled by the caller)."""
        self.app.load_state()
        try:
            await self.server.serve()
        finally:
            self.app.save_state()

    def start_in_thread(self, *, timeout: float = 10.0) -> SandboxServer:
        """Start in a daemon thread and wait until it accepts connections."""
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve()), daemon=True)
        self._thread.start()
        waited = 0.0
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"sandbox server for {self.app.simulator.name} failed to start")
            if waited > timeout:
                raise TimeoutError(f"sandbox server for {self.app.simulator.name} did not start")
            threading.Event().wait(0.01)
            waited += 0.01
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
