"""Delivery: POST the outbox's due rows to their Notifications, record each result, try again later.

Run by the daemon as a background task while it holds the writer lease (``run``: woken after each pass,
otherwise asleep until the next row is due) and, best effort with a short bound, at the end of a one-shot
apply (``deliver_after_apply``); what is left waits in the outbox for the daemon or the next apply.

- a 2xx marks the row delivered (a fenced write); 408, 429, 5xx, a timeout or a network error is tried
  again after an exponential backoff with jitter (``Retry-After`` honoured, both capped), until the event
  is ``max_age`` old; any other status (3xx: redirects are not followed, 4xx) is permanent: the row is
  marked failed and logged, never retried;
- the Notification is read as declared now (a row whose Notification left git is marked failed), its
  URL and signing secret resolved at that moment and registered with the redactor: neither reaches a
  log, an error or the outbox;
- every attempt is bounded: ``timeoutSeconds`` from connect to the last byte read, and at most
  ``MAX_REPLY_BYTES`` of the reply are read (only for an error message); httpcore bounds the reply head
  (100 KiB);
- before each POST the writer lease must outlive it (``ensure_time``), as for any request with effects;
  a lost lease stops delivery at once.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import structlog

from reconciler.backends.http import RetryPolicy, parse_retry_after
from reconciler.errors import SecretError, StateStoreError
from reconciler.model import DesiredState, NotificationSpec
from reconciler.notify.payload import render_body, request_headers
from reconciler.secrets import Redactor, SecretRef, resolve_secret
from reconciler.state.database import Database
from reconciler.state.lease import LeaseLostError, WriterLease
from reconciler.state.outbox import Outbox, PendingDelivery
from reconciler.state.store import Store

log = structlog.get_logger("reconciler.notify")
MAX_REPLY_BYTES = 4096
LEASE_MARGIN_SECONDS = 5.0
ROUND_LIMIT = 50  # rows taken per round
APPLY_BUDGET_SECONDS = 5.0  # how long an apply spends delivering at its end


@dataclass(frozen=True)
class DeliveryPolicy:
    """How a notification is retried: the backends' backoff with jitter (``Retry-After`` wins), in slower
    steps, until the event is ``max_age`` old; then it is given up (marked failed)."""

    backoff: RetryPolicy = RetryPolicy(base_delay=2.0, max_delay=300.0, max_retry_after=3600.0)
    max_age: float = 24 * 3600.0

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """The backoff, or the receiver's ``Retry-After`` when it is longer: a ``Retry-After: 0`` never turns
        the outbox into a tight loop against a struggling receiver."""
        backoff = self.backoff.delay(attempts, None, rng)
        return backoff if retry_after is None else max(backoff, self.backoff.delay(attempts, retry_after, rng))


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Attempt:
    verdict: Verdict
    detail: str  # for the log and the row: status and an excerpt of the reply, or the error
    status: int | None = None
    retry_after: float | None = None


def verdict_for(status: int) -> Verdict:
    """2xx delivered; 408, 429 and 5xx worth another try; anything else refused for good."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in (408, 429) or status >= 500:
        return Verdict.RETRY
    return Verdict.FAILED


class Deliverer:
    """Sends due outbox rows. ``desired`` gives the declarations in force (the daemon's last good load)."""

    def __init__(self, *, db: Database, lease: WriterLease | None, desired: Callable[[], DesiredState | None],
                 environ: Mapping[str, str], redactor: Redactor, policy: DeliveryPolicy = DeliveryPolicy(),
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.outbox = Outbox(db)
        self.lease = lease
        self.desired = desired
        self.environ = environ
        self.redactor = redactor
        self.policy = policy
        self.clock = clock
        self.rng = rng or random.Random()
        self.client = httpx.AsyncClient(follow_redirects=False, transport=transport,
                                        limits=httpx.Limits(max_connections=4, max_keepalive_connections=4))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def deliver_due(self, *, budget: float | None = None) -> int:
        """Send every due row (rounds of ``ROUND_LIMIT``); with ``budget`` (seconds), start no attempt after
        it and cut each attempt's timeout to what is left. Returns how many were delivered."""
        deadline = None if budget is None else time.monotonic() + budget
        delivered = 0
        while self.desired() is not None:  # none yet (a daemon before its first load): rows wait
            rows = self.outbox.due(now=self.clock(), limit=ROUND_LIMIT)
            if not rows:
                return delivered
            for row in rows:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return delivered
                delivered += await self._deliver(row, left)
        return delivered

    async def run(self, *, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """The daemon's loop: deliver what is due, then sleep until the next row is due, a pass added rows
        (``wake``) or the daemon stops. Ends when the lease is lost."""
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    await self.deliver_due()
                    next_due = self.outbox.next_due()
                except LeaseLostError:
                    return
                except StateStoreError as exc:
                    log.error("notification.store_failed", error=self.redactor.scrub(str(exc)))
                    next_due = self.clock() + self.policy.backoff.base_delay
                except Exception as exc:  # noqa: BLE001 - a background task must say why, not die silently
                    log.error("notification.deliverer_failed", error=self.redactor.scrub(f"{type(exc).__name__}: {exc}"))
                    next_due = self.clock() + self.policy.backoff.max_delay
                timeout = None if next_due is None else max(next_due - self.clock(), 0.05)
                await _first_of(stop, wake, timeout=timeout)
        finally:
            await self.aclose()

    async def _deliver(self, row: PendingDelivery, left: float | None) -> int:
        desired = self.desired()
        if desired is None:
            return 0
        spec = desired.notifications.get(row.notification)
        if spec is None:
            self.outbox.failed(row.seq, error="its Notification is no longer declared", now=self.clock())
            log.warning("notification.dropped", notification=row.notification, event_kind=row.event,
                        delivery=row.event_id, reason="the Notification is no longer declared")
            return 0
        attempt = await self._attempt(row, spec, Path(desired.root), left)
        return self._record(row, attempt)

    def _record(self, row: PendingDelivery, attempt: Attempt) -> int:
        now = self.clock()
        fields = {"notification": row.notification, "event_kind": row.event, "delivery": row.event_id,
                  "attempt": row.attempts + 1, "detail": attempt.detail}
        if attempt.verdict is Verdict.DELIVERED:
            self.outbox.delivered(row.seq, now=now)
            log.info("notification.delivered", **fields)
            return 1
        if attempt.verdict is Verdict.RETRY and now - row.created_at < self.policy.max_age:
            delay = self.policy.delay(row.attempts, attempt.retry_after, self.rng)
            self.outbox.retry_at(row.seq, at=now + delay, error=attempt.detail, now=now)
            log.warning("notification.retry", retry_in_seconds=round(delay, 1), **fields)
            return 0
        why = attempt.detail if attempt.verdict is Verdict.FAILED else \
            f"gave up after {row.attempts + 1} attempts in {self.policy.max_age / 3600:.0f} h: {attempt.detail}"
        self.outbox.failed(row.seq, error=why, now=now)
        log.error("notification.failed", **{**fields, "detail": why})
        return 0

    async def _attempt(self, row: PendingDelivery, spec: NotificationSpec, root: Path, left: float | None) -> Attempt:
        try:
            url = self._reveal(spec.url, root)
            secret = self._reveal(spec.signing_secret, root) if spec.signing_secret is not None else None
        except SecretError as exc:  # a file or variable that may yet appear: tried again
            return Attempt(Verdict.RETRY, self.redactor.scrub(str(exc)))
        if not _http_url(url):
            return Attempt(Verdict.RETRY, f"the URL of Notification {spec.name} is not an http:// or https:// URL")
        try:
            body = render_body(spec.format, json.loads(row.payload))
        except ValueError:
            return Attempt(Verdict.FAILED, "the queued event is not valid JSON")
        headers = request_headers(event=row.event, delivery=row.event_id, body=body, secret=secret)
        timeout = spec.timeout_seconds if left is None else max(min(spec.timeout_seconds, left), 1.0)
        if self.lease is not None:
            self.lease.ensure_time(timeout + LEASE_MARGIN_SECONDS)
        try:
            async with asyncio.timeout(timeout):
                async with self.client.stream("POST", url, content=body, headers=headers,  # a backstop:
                                              timeout=httpx.Timeout(timeout + 1.0)) as response:
                    excerpt = await _excerpt(response) if response.status_code >= 300 else b""
        except TimeoutError:
            return Attempt(Verdict.RETRY, f"no complete reply within {timeout:g} s")
        except httpx.HTTPError as exc:
            return Attempt(Verdict.RETRY, self.redactor.scrub(f"{type(exc).__name__}: {exc}")[:300])
        status = response.status_code
        text = self.redactor.scrub_reply(excerpt.decode("utf-8", "replace")).strip()
        detail = f"HTTP {status}" + (f": {text[:200]}" if text else "")
        return Attempt(verdict_for(status), detail, status, parse_retry_after(response.headers.get("retry-after")))

    def _reveal(self, value: str | SecretRef, root: Path) -> str:
        if isinstance(value, str):
            return value
        return resolve_secret(value, base_dir=root, environ=self.environ, redactor=self.redactor).reveal()


def _http_url(url: str) -> bool:
    """An absolute http(s) URL with a host (a URL from a secret reference was never checked by the schema)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def _excerpt(response: httpx.Response) -> bytes:
    """At most ``MAX_REPLY_BYTES`` of the reply body (the rest is never read)."""
    data = bytearray()
    async for chunk in response.aiter_raw():
        data += chunk[: MAX_REPLY_BYTES - len(data)]
        if len(data) >= MAX_REPLY_BYTES:
            break
    return bytes(data)


async def _first_of(*events: asyncio.Event, timeout: float | None) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def deliver_after_apply(store: Store, desired: DesiredState, *, environ: Mapping[str, str], redactor: Redactor,
                              budget: float = APPLY_BUDGET_SECONDS) -> int:
    """A one-shot apply's delivery: what is due, for at most ``budget`` seconds; the rest stays queued for
    the daemon or the next apply. Never fails the apply: a store problem is logged."""
    if not desired.notifications:
        return 0
    deliverer = Deliverer(db=store.db, lease=store.lease, desired=lambda: desired, environ=environ, redactor=redactor)
    try:
        return await deliverer.deliver_due(budget=budget)
    except StateStoreError as exc:  # a lost lease included: whatever was not recorded is sent again later
        log.warning("notification.store_failed", error=redactor.scrub(str(exc)))
        return 0
    finally:
        await deliverer.aclose()
