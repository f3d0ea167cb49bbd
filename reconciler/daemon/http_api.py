"""The daemon's HTTP endpoints (loopback by default): health, readiness, metrics, status, webhooks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from reconciler.daemon.metrics import DaemonMetrics
from reconciler.daemon.webhooks import WebhookReceivers

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def build_app(*, metrics: DaemonMetrics, ready: Callable[[], tuple[bool, str]],
              status: Callable[[], dict[str, Any]], webhooks: WebhookReceivers) -> Starlette:
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
        Route("/webhooks/sms-gateway/{token}", webhooks.sms_gateway, methods=["POST"]),
        Route("/webhooks/iot/{token}", webhooks.iot_callback, methods=["POST"]),
    ])


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon decides what SIGTERM and SIGHUP mean."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: Starlette, listen: str) -> QuietServer:
    host, _, port = listen.rpartition(":")
    config = uvicorn.Config(app, host=host.strip("[]") or "127.0.0.1", port=int(port), log_level="warning",
                            access_log=False, lifespan="off")
    return QuietServer(config)
