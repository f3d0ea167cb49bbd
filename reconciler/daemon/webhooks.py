"""Webhook receivers: one route, ``POST /webhooks/<backend type>/<token>``, for what backends push (the SMS
gateway's sending results, the IoT campaign manager's callbacks, a plug-in's own).

The backend type's descriptor reads the body (its ``push`` parser) into a ``PushReport``: ledger rows to
settle and whether to run a pass; this module only authenticates, bounds and counts. A type answers to its
own name and to its descriptor's ``push_paths`` (``/webhooks/iot/<token>``, handed out before the route was
generic); any other segment is 404. No sender can sign, so each receiver URL carries a secret token,
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

from reconciler.backends.descriptor import PushError
from reconciler.backends.registry import push_receiver
from reconciler.daemon.metrics import DaemonMetrics
from reconciler.engine.pushes import settle_pushed
from reconciler.state.ledger import SendLedger

log = structlog.get_logger("reconciler.daemon.webhooks")
MAX_BODY = 1024 * 1024
BODY_TIMEOUT_S = 30.0
REPLAY_WINDOW_S = 3600
REPLAY_MEMORY = 10_000
LOG_FIELDS, LOG_KEY_CHARS, LOG_VALUE_CHARS = 8, 32, 64  # what a parser's log fields may add to one event


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

    async def receive(self, request: Request) -> Response:
        """One push: authenticated, bounded, read by its backend type's parser, then acted on."""
        receiver = push_receiver(str(request.path_params.get("backend", "")))
        if receiver is None or receiver.push is None:
            return JSONResponse({"error": "unknown receiver"}, status_code=404)
        source = receiver.type
        body = await self._accept(request, source)
        if isinstance(body, Response):
            return body
        try:
            report = receiver.push(body)
        except (PushError, ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            self._metrics.webhooks.labels(source, "malformed").inc()
            return JSONResponse({"error": str(exc)[:200]}, status_code=400)
        ledger = self._ledger() if report.fates else None
        moved = settle_pushed(ledger, report.fates) if ledger is not None and report.fates else 0
        self._metrics.webhooks.labels(source, "accepted").inc()
        fields = {str(k)[:LOG_KEY_CHARS]: str(v)[:LOG_VALUE_CHARS] for k, v in list(report.log.items())[:LOG_FIELDS]}
        log.info("webhook.received", **{**fields, "backend": source, "settled": moved})
        if report.wake is not None:
            self._on_event(report.wake)
        return JSONResponse({"accepted": True} if report.fates is None else {"accepted": True, "settled": moved})
