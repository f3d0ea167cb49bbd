"""Webhook receivers: the SMS gateway's pushes and the IoT campaign manager's callbacks.

Neither sender can sign, so each receiver URL carries a secret token (``/webhooks/<source>/<token>``),
compared in constant time as UTF-8 bytes (any token a URL can carry, non-ASCII included, is just a wrong
token: 404, counted as unauthenticated). Bodies over ``MAX_BODY`` are refused, and so is a body that takes
longer than ``BODY_TIMEOUT_S`` to arrive; a body seen in the last hour is a replay and is ignored
(counted, answered 200 so the sender does not retry).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.backends.sms_gateway.replies import GatewayPushError, parse_push
from reconciler.daemon.metrics import DaemonMetrics
from reconciler.engine.sms_push import apply_gateway_push
from reconciler.state.ledger import SendLedger

log = structlog.get_logger("reconciler.daemon.webhooks")
MAX_BODY = 1024 * 1024
BODY_TIMEOUT_S = 30.0
REPLAY_WINDOW_S = 3600
REPLAY_MEMORY = 10_000


def _utf8(text: str) -> bytes:
    """``hmac.compare_digest`` refuses str with non-ASCII characters (a TypeError, i.e. a 500 per request):
    compare the UTF-8 bytes (surrogates, which a decoded URL may hold, encoded as they are)."""
    return text.encode("utf-8", "surrogatepass")


class ReplayGuard:
    """Remembers recent body digests (bounded) so the same delivery is acted on once."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._clock = clock

    def first_time(self, body: bytes) -> bool:
        now = self._clock()
        while self._seen and (len(self._seen) > REPLAY_MEMORY or next(iter(self._seen.values())) < now - REPLAY_WINDOW_S):
            self._seen.popitem(last=False)
        digest = hashlib.sha256(body).hexdigest()
        if digest in self._seen:
            return False
        self._seen[digest] = now
        return True


class WebhookReceivers:
    def __init__(self, *, token: str | None, metrics: DaemonMetrics, ledger: Callable[[], SendLedger | None],
                 on_event: Callable[[str], None]) -> None:
        self._token = _utf8(token) if token else None
        self._metrics = metrics
        self._ledger = ledger
        self._on_event = on_event
        self._replays = ReplayGuard()

    async def _accept(self, request: Request, source: str) -> bytes | Response:
        given = _utf8(str(request.path_params.get("token", "")))
        if self._token is None or not hmac.compare_digest(given, self._token):
            self._metrics.webhooks.labels(source, "unauthenticated").inc()
            return JSONResponse({"error": "unknown receiver"}, status_code=404)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
            self._metrics.webhooks.labels(source, "too-large").inc()
            return JSONResponse({"error": "body too large"}, status_code=413)
        body = b""
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > MAX_BODY:
                        self._metrics.webhooks.labels(source, "too-large").inc()
                        return JSONResponse({"error": "body too large"}, status_code=413)
        except TimeoutError:
            self._metrics.webhooks.labels(source, "too-slow").inc()
            return JSONResponse({"error": f"body not received within {BODY_TIMEOUT_S:g} s"}, status_code=408)
        if not self._replays.first_time(body):
            self._metrics.webhooks.labels(source, "replay").inc()
            return JSONResponse({"ignored": "replay"})
        return body

    async def sms_gateway(self, request: Request) -> Response:
        body = await self._accept(request, "sms-gateway")
        if isinstance(body, Response):
            return body
        try:
            push = parse_push(json.loads(body))
        except (ValueError, RecursionError, GatewayPushError) as exc:  # RecursionError: absurdly nested JSON
            self._metrics.webhooks.labels("sms-gateway", "malformed").inc()
            return JSONResponse({"error": str(exc)[:200]}, status_code=400)
        ledger = self._ledger()
        moved = apply_gateway_push(ledger, push) if ledger is not None else 0
        self._metrics.webhooks.labels("sms-gateway", "accepted").inc()
        log.info("webhook.sms_gateway", kind=push.kind.value, settled=moved)
        if push.kind.value != "results":
            self._on_event("sms-gateway push")
        return JSONResponse({"accepted": True, "settled": moved})

    async def iot_callback(self, request: Request) -> Response:
        body = await self._accept(request, "iot-campaigns")
        if isinstance(body, Response):
            return body
        try:
            event = json.loads(body)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            self._metrics.webhooks.labels("iot-campaigns", "malformed").inc()
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        self._metrics.webhooks.labels("iot-campaigns", "accepted").inc()
        log.info("webhook.iot", campaign=str(event.get("campaignId", ""))[:64], state=str(event.get("state", ""))[:64])
        self._on_event("iot callback")
        return JSONResponse({"accepted": True})
