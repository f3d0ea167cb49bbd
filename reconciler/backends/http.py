"""The HTTP policy every adapter shares: one ``httpx.AsyncClient`` per backend on pooled keep-alive
connections (``http_transport``), concurrency and rate limits, timeouts, retries with backoff and jitter,
and translation of every transport, status and parse failure into the exception tree of
``reconciler.errors`` (always chained with ``from``).

Retry rules (the reason this module exists):
- nothing reached the server (connect refused / connect timeout): retried, whatever the method;
- the server said it did not act (429, 503, or a parse function raising ``TemporaryBackendError`` with
  ``not_processed=True``): retried, honouring ``Retry-After``;
- anything after the request may have arrived (read timeout, dropped connection, 500/502/504, a
  malformed reply): retried only for idempotent requests; a non-idempotent one raises
  ``UnknownOutcomeError`` so the caller can resolve it (the SMS ledger, a re-observation).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import structlog

from reconciler.backends.http_transport import KeepAliveTransport
from reconciler.errors import (
    AuthError,
    BackendError,
    BackendUnavailableError,
    ConflictError,
    MalformedReplyError,
    NotFoundError,
    PermanentBackendError,
    TemporaryBackendError,
    UnknownOutcomeError,
)
from reconciler.backends.protocol import ConnectContext, RequestObserver
from reconciler.model import BackendLimits, BackendSpec, TlsSettings
from reconciler.secrets import Redactor

T = TypeVar("T")
log = structlog.get_logger("reconciler.backends.http")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` wins when the server sends one."""

    max_retries: int = 4
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return rng.uniform(ceiling / 2, ceiling)


class RequestRateLimiter:
    """Spaces request starts at most ``rate`` per second (``None``: no limit)."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._clock = clock
        self._sleep = sleep

    async def acquire(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        start = max(self._next, now)
        self._next = start + self._interval
        if start > now:
            await self._sleep(start - now)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def tls_verify(tls: TlsSettings, root: Path) -> bool | ssl.SSLContext:
    """The ``verify`` argument for httpx: on by default, a private CA by file, or off by choice."""
    if not tls.verify:
        return False
    if tls.ca_file:
        return ssl.create_default_context(cafile=str(root / tls.ca_file))
    return True


def keep_alive_transport(base_url: str, verify: bool | ssl.SSLContext,
                         connections: int) -> KeepAliveTransport | None:
    """Our lean keep-alive transport, or ``None`` (httpx's own transport) when an ``HTTP(S)_PROXY`` /
    ``ALL_PROXY`` variable applies to this backend and ``NO_PROXY`` does not exempt it: httpx's transport
    speaks to proxies, ours does not."""
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    if (url.scheme in proxies or "all" in proxies) and not urllib.request.proxy_bypass(url.host):
        return None
    return KeepAliveTransport(verify=verify, max_connections=connections)


def error_message(response: httpx.Response) -> tuple[str, str | None]:
    """The backend's own words for a failed reply: JSON ``message``/``code`` when present, else text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or ""
        code = body.get("code")
        if message:
            return str(message), None if code is None else str(code)
    text = response.text.strip().replace("\n", " ")
    return (text[:200] or response.reason_phrase or f"HTTP {response.status_code}"), None


def _certificate_refused(exc: BaseException) -> bool:
    """Whether a connect failure was our refusal of the server's certificate (retrying cannot help)."""
    visited: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in visited:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        visited.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


class BackendHttp:
    """One backend's HTTP client with the shared policy. Adapters call ``call()`` and nothing else."""

    def __init__(
        self,
        *,
        backend: str,
        base_url: str,
        limits: BackendLimits,
        tls: TlsSettings = TlsSettings(),
        root: Path = Path("."),
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        redactor: Redactor | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        on_request: RequestObserver | None = None,
    ) -> None:
        self.backend = backend
        self._on_request = on_request
        self.retry = retry or RetryPolicy(max_retries=limits.max_retries)
        self.redactor = redactor or Redactor()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._gate = asyncio.Semaphore(limits.concurrency)
        self._rate = RequestRateLimiter(limits.requests_per_second, sleep=sleep)
        #: requests sent, by (method, status or error class name): for metrics and tests
        self.sent: Counter[tuple[str, str]] = Counter()
        verify = tls_verify(tls, root)
        self.client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            headers=dict(headers or {}),
            verify=verify,
            timeout=httpx.Timeout(limits.timeout_seconds),
            limits=httpx.Limits(max_connections=limits.concurrency, max_keepalive_connections=limits.concurrency),
            transport=transport or keep_alive_transport(base_url, verify, limits.concurrency),
        )
        self._base = str(self.client.base_url).rstrip("/") + "/"  # the path httpx joins relative URLs to

    @classmethod
    def for_backend(cls, spec: BackendSpec, ctx: ConnectContext, **options: Any) -> BackendHttp:
        """The policy for a declared backend: its URL, limits and TLS settings, the run's redactor and
        request observer (``options``: auth, headers, and for tests transport and sleep)."""
        return cls(backend=spec.name, base_url=spec.url, limits=spec.limits, tls=spec.tls, root=ctx.root,
                   redactor=ctx.redactor, on_request=ctx.on_request, **options)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def call(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        idempotent: bool,
        parse: Callable[[httpx.Response], T],
        **request: Any,
    ) -> T:
        """Send one logical request (retrying per the module's rules) and return ``parse(response)``.

        ``parse`` runs only on 2xx replies; it raises ``MalformedReplyError`` for an unreadable body
        and any ``BackendError`` for an error reported inside the body.
        """
        attempt = 0
        while True:
            try:
                return await self._attempt(method, url, operation, idempotent, parse, request)
            except TemporaryBackendError as exc:
                retryable = idempotent or exc.not_processed
                if not retryable:
                    raise UnknownOutcomeError(
                        f"no usable reply ({exc.message}); the request may have taken effect",
                        backend=self.backend,
                        operation=operation,
                        status=exc.status,
                    ) from exc
                if attempt >= self.retry.max_retries:
                    raise
                delay = self.retry.delay(attempt, exc.retry_after, self._rng)
                log.debug("backend.retry", backend=self.backend, operation=operation,
                          attempt=attempt + 1, delay=round(delay, 3), error=exc.message)
                await self._sleep(delay)
                attempt += 1

    async def _attempt(
        self,
        method: str,
        url: str,
        operation: str,
        idempotent: bool,
        parse: Callable[[httpx.Response], T],
        request: Mapping[str, Any],
    ) -> T:
        where = {"backend": self.backend, "operation": operation}
        async with self._gate:
            await self._rate.acquire()
            try:
                response = await self.client.request(method, self._absolute(url), **request)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                self._count(method, type(exc).__name__)
                if _certificate_refused(exc):
                    raise PermanentBackendError(
                        "TLS certificate verification failed: trust the server's certificate with tls.caFile, "
                        "or (a self-signed device on a trusted network) set tls.verify: false", **where
                    ) from exc
                raise BackendUnavailableError(
                    f"cannot connect: {exc.__class__.__name__}", not_processed=True, **where
                ) from exc
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self._count(method, type(exc).__name__)
                raise TemporaryBackendError(
                    f"no reply: {exc.__class__.__name__}", **where
                ) from exc
        self._count(method, str(response.status_code))
        self._raise_for_status(response, where)
        try:
            return parse(response)
        except BackendError as exc:
            exc.backend = exc.backend or self.backend
            exc.operation = exc.operation or operation
            exc.message = self.redactor.scrub(exc.message)
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedReplyError(
                f"unreadable reply: {exc.__class__.__name__}: {self.redactor.scrub(str(exc))[:200]}",
                status=response.status_code,
                **where,
            ) from exc

    def _absolute(self, url: str) -> str:
        """``url`` joined to the base URL as httpx would join it; done here because httpx parses the URL
        once more to join it (URL parsing was a third of the client's CPU per request)."""
        return url if "://" in url else self._base + url.lstrip("/")

    def _count(self, method: str, status: str) -> None:
        self.sent[(method, status)] += 1
        if self._on_request is not None:
            self._on_request(self.backend, method, status)

    def _raise_for_status(self, response: httpx.Response, where: Mapping[str, str]) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        message, code = error_message(response)
        message = self.redactor.scrub(message)
        kwargs: dict[str, Any] = {"status": status, "code": code, **where}
        if status in (429, 503):
            raise TemporaryBackendError(
                message,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                not_processed=True,
                **kwargs,
            )
        if status >= 500 or status == 408:
            raise TemporaryBackendError(message, **kwargs)
        if status in (401, 403):
            raise AuthError(message, **kwargs)
        if status == 404:
            raise NotFoundError(message, **kwargs)
        if status == 409:
            raise ConflictError(message, **kwargs)
        raise PermanentBackendError(message, **kwargs)
