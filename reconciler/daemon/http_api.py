"""The daemon's HTTP endpoints (loopback by default): health, readiness, metrics, status, webhooks.

The server must stay answerable whatever its clients do, because ``/healthz`` is how a supervisor
decides the daemon is alive and the state store needs descriptors of its own. So (``ServerOptions``):

- a connection must deliver a complete request head within ``header_timeout_s`` of being accepted (or of
  its previous response); one that does not, idle or trickling, is closed (408 if it sent anything);
- a request head over ``max_header_bytes`` is answered 431 and closed;
- at most ``max_connections`` connections are open, and never more than the descriptor limit less a
  reserve (``fd_reserve``, plus what one accept burst may take) for the store, the log and the
  backends; at the cap, the connection waiting longest for a request is closed to admit the new one (a
  probe's request arrives right after its connect), and a new one is refused only when every open
  connection is busy with a request;
- ``/status`` (the declarations and what was observed) and the dashboard are served on a non-loopback
  address only with a UI token, and then only to ``Authorization: Bearer <token>`` or the dashboard's
  sign-in cookie (``reconciler.daemon.dashboard.auth.AccessGuard``).

The options are process settings: ``reconcile watch`` sets them once (``configure_server``) before the
service builds its server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import resource
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from reconciler.daemon.dashboard.auth import AccessGuard
from reconciler.daemon.metrics import DaemonMetrics
from reconciler.daemon.webhooks import WebhookReceivers

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
log = structlog.get_logger("reconciler.daemon.http")


@dataclass(frozen=True)
class ServerOptions:
    ui_token: str | None = None  # guards the dashboard and /status (--ui-token-env, or --status-token-env)
    header_timeout_s: float = 5.0  # a request head must be complete this long after accept (or the last reply)
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int = 4096
    fd_reserve: int = 256  # descriptors kept free for the store, logs, file watching and backend clients
    max_header_bytes: int = 64 * 1024
    # the kernel's queue of connections not yet accepted, which is also how many one turn of the event loop
    # accepts (so it counts against the descriptors, see ``connection_budget``)
    backlog: int = 1024


_options = ServerOptions()


def configure_server(options: ServerOptions) -> None:
    """Set the options the next ``http_server`` uses (``reconcile watch`` calls this once at start)."""
    global _options
    _options = options


def server_options() -> ServerOptions:
    return _options


def build_app(*, metrics: DaemonMetrics, ready: Callable[[], tuple[bool, str]],
              status: Callable[[], dict[str, Any]], webhooks: WebhookReceivers,
              dashboard: Sequence[BaseRoute] = ()) -> Starlette:
    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        ok, why = ready()
        return PlainTextResponse(("ready\n" if ok else f"not ready: {why}\n"), status_code=200 if ok else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=METRICS_TYPE)

    async def status_endpoint(request: Request) -> Response:
        return JSONResponse(status())

    return Starlette(routes=[
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics_endpoint),
        Route("/status", status_endpoint),
        Route("/webhooks/{backend}/{token}", webhooks.receive, methods=["POST"]),
        *dashboard,
    ])


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon decides what SIGTERM and SIGHUP mean."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# --- descriptors and connections ------------------------------------------------------------------


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit on open descriptors to the hard limit (to 2**20, else 2**16, when the hard
    limit is unlimited: the kernel caps it); returns (soft, hard) as they are now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in ((hard,) if hard != resource.RLIM_INFINITY else (1 << 20, 1 << 16)):
        if soft != resource.RLIM_INFINITY and soft < wanted:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
                return wanted, hard
            except (ValueError, OSError):
                continue
    return soft, hard


@dataclass(frozen=True)
class ConnectionBudget:
    max_connections: int
    backlog: int
    descriptor_limit: int


def connection_budget(options: ServerOptions, *, descriptor_limit: int | None = None) -> ConnectionBudget:
    """How many connections the server may hold, given the descriptor limit: the limit less the reserve and
    less one accept burst (asyncio accepts up to ``backlog`` sockets before the server sees any of them)."""
    if descriptor_limit is None:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        descriptor_limit = soft if soft != resource.RLIM_INFINITY else 1 << 20
    backlog = max(16, min(options.backlog, descriptor_limit // 8))
    room = descriptor_limit - options.fd_reserve - backlog
    return ConnectionBudget(max(8, min(options.max_connections, room)), backlog, descriptor_limit)


class ConnectionGuard:
    """The connections of one server: which are waiting for a request (evictable, oldest first), counts."""

    def __init__(self, options: ServerOptions, budget: ConnectionBudget) -> None:
        self.options = options
        self.max_connections = budget.max_connections
        self.open: set[GuardedHttpProtocol] = set()
        self.waiting: OrderedDict[GuardedHttpProtocol, None] = OrderedDict()
        self.counts = {"refused": 0, "evicted": 0, "header_timeout": 0, "header_too_large": 0}

    def admit(self, newcomer: GuardedHttpProtocol) -> bool:
        """Make room for ``newcomer`` (closing the connection that waited longest for a request) or refuse it."""
        while len(self.open) >= self.max_connections:
            if not self.waiting:
                self.counts["refused"] += 1
                log.warning("http.connection_refused", reason="every connection is busy with a request",
                            max_connections=self.max_connections)
                return False
            oldest, _ = self.waiting.popitem(last=False)
            self.open.discard(oldest)  # its descriptor is freed now, though connection_lost comes later
            self.counts["evicted"] += 1
            log.warning("http.connection_evicted", reason="connection limit reached; closed the one idle longest",
                        max_connections=self.max_connections)
            oldest.drop()
        self.open.add(newcomer)
        return True

    def idle(self, connection: GuardedHttpProtocol) -> None:
        self.waiting[connection] = None
        self.waiting.move_to_end(connection)

    def busy(self, connection: GuardedHttpProtocol) -> None:
        self.waiting.pop(connection, None)

    def gone(self, connection: GuardedHttpProtocol) -> None:
        self.open.discard(connection)
        self.waiting.pop(connection, None)


_TIMEOUT_REPLY = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_TOO_LARGE_REPLY = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
                    b"connection: close\r\n\r\n")


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head deadline, a head size limit and a place in the
    connection budget (``ConnectionGuard``). Subclassed per server with ``guard`` set."""

    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admitted = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._awaiting_head = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self.guard.admit(self):
            transport.abort()  # frees the descriptor now; connection_lost follows and is ignored
            return
        self._admitted = True
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._cancel_head_timer()
        self.guard.gone(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # bytes count towards the next head only once the previous request's body is all in (a reply may
        # go out before a body the app did not want has finished arriving)
        if self._awaiting_head and (self.cycle is None or not self.cycle.more_body):
            self._head_bytes += len(data)
        super().data_received(data)
        if self._awaiting_head and self._head_bytes > self.guard.options.max_header_bytes \
                and not self.transport.is_closing():
            self.guard.counts["header_too_large"] += 1
            log.warning("http.header_too_large", limit_bytes=self.guard.options.max_header_bytes)
            self._close_with(_TOO_LARGE_REPLY)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        self.guard.busy(self)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle again (no pipelined request was started)
            self._await_head()

    def drop(self) -> None:
        """Close now (evicted to make room); the descriptor is freed at once."""
        self._awaiting_head = False
        self._cancel_head_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    # --- the request-head deadline ------------------------------------------------------------------

    def _await_head(self) -> None:
        self._awaiting_head = True
        self._head_bytes = 0
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.guard.options.header_timeout_s, self._head_timed_out)
        self.guard.idle(self)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport is None or self.transport.is_closing():
            return
        self.guard.counts["header_timeout"] += 1
        self.guard.busy(self)
        self._close_with(_TIMEOUT_REPLY if self._head_bytes else b"")

    def _close_with(self, reply: bytes) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        if reply:
            self.transport.write(reply)
        self.transport.close()


# --- the address ----------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_server(app: Starlette, listen: str, options: ServerOptions | None = None) -> QuietServer:
    options = options or _options
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    loopback = is_loopback(host)
    if not loopback and options.ui_token is None:
        log.warning("http.status_not_served", listen=listen,
                    reason="a non-loopback address without a UI token: /status and the dashboard answer 403; "
                           "use --ui-token-env NAME")
    budget = connection_budget(options)
    guard = ConnectionGuard(options, budget)
    protocol = type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"guard": guard})
    config = uvicorn.Config(AccessGuard(app, token=options.ui_token, loopback=loopback), host=host,
                            port=int(port), log_level="warning", access_log=False, lifespan="off",
                            log_config=None, http=protocol, ws="none",
                            timeout_keep_alive=options.keep_alive_s,  # type: ignore[arg-type]
                            # uvicorn's own limit (503 beyond it) is only a backstop: it counts connections
                            # until asyncio reports them lost, which those the guard just closed are not yet
                            limit_concurrency=budget.max_connections + 2 * budget.backlog, backlog=budget.backlog)
    server = QuietServer(config)
    server.connection_guard = guard  # type: ignore[attr-defined]  # for tests and benchmarks
    return server

