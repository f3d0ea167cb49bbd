"""The HTTP policy every adapter shares: one ``httpx.AsyncClient`` per backend on pooled keep-alive
connections (``http_transport``), concurrency and rate limits, timeouts, retries with backoff and jitter,
and translation of every transport, status and parse failure into the exception tree of
``reconciler.errors`` (always chained with ``from``). In a pass, the backend's reader, writer and SMS
sender share one ``BackendHttp`` (``reconciler.backends.sessions``), so its limits hold per backend.

Retry rules (the reason this module exists):
- nothing reached the server (connect refused / connect timeout): retried, whatever the method;
- the server said it did not act (429, 503, or a parse function raising ``TemporaryBackendError`` with
  ``not_processed=True``): retried, honouring ``Retry-After``;
- anything after the request may have arrived (read timeout, dropped connection, 500/502/504, a
  malformed reply): retried only for idempotent requests; a non-idempotent one raises
  ``UnknownOutcomeError`` so the caller can resolve it (the SMS ledger, a re-observation).
- a reply over one of the backend's bounds (``ReplyLimitError``) is not retried: the same request would
  get the same reply; for a non-idempotent request it is an ``UnknownOutcomeError`` (it did arrive).

Replies are bounded whatever transport carries them (``BoundedReplies`` wraps ours and httpx's own, which
is used behind a proxy), per backend by its ``limits``: the head (``maxHeaderBytes``, 64 KiB;
``maxHeaderLines``, 100), the body as received (``maxBodyBytes``, 32 MiB: a larger Content-Length is
refused before reading, any other body is counted as it streams in), the body decoded (gzip and deflate
only, decoded here in pieces of 64 KiB, never by httpx: ``maxDecodedBytes``, 64 MiB, and
``maxCompressionRatio``, 200, once 1 MiB is decoded), and the time to read it (the read timeout bounds
the whole body, not each read). The first bound gone over raises ``ReplyLimitError`` at once; what was
read so far is dropped and the connection closed. Paged listings are bounded too (``ListingBudget``:
``maxListPages``, 10,000, ``maxListItems``, 100,000) and fetched ``limits.concurrency`` pages at a time
(``fetch_in_order``).

Text from a reply (error bodies, messages inside replies) is scrubbed with ``Redactor.scrub_reply`` before
it becomes part of an error: a server that echoes the request's headers must not put our credentials into
plans, logs, the state store or ``/status``.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
import urllib.request
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import structlog

from reconciler.backends.http_transport import CompleteBody, KeepAliveTransport
from reconciler.errors import (
    AuthError,
    BackendError,
    BackendUnavailableError,
    ConflictError,
    MalformedReplyError,
    NotFoundError,
    PermanentBackendError,
    ReplyLimitError,
    TemporaryBackendError,
    UnknownOutcomeError,
)
from reconciler.backends.protocol import ConnectContext, RequestObserver
from reconciler.backends.sessions import BackendSessions
from reconciler.model import BackendLimits, BackendSpec, TlsSettings
from reconciler.secrets import Redactor

T = TypeVar("T")
log = structlog.get_logger("reconciler.backends.http")
ACCEPT_ENCODING = "gzip, deflate"  # what BoundedReplies decodes; never br or zstd, even if httpx could
DECODE_PIECE = 64 * 1024  # decoded output is produced in pieces of at most this many bytes
RATIO_FLOOR = 1 << 20  # the compression ratio is checked once this many bytes are decoded
ERROR_TEXT_WINDOW = 4096  # characters of an error body scrubbed before the first ERROR_TEXT are kept
ERROR_TEXT = 200


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
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempt, 30))  # 2**1100 would overflow a float
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


def _proxy_for(base_url: str) -> str | None:
    """The proxy an ``HTTP(S)_PROXY`` / ``ALL_PROXY`` variable names for this backend, unless ``NO_PROXY``
    exempts it."""
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(url.host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def keep_alive_transport(base_url: str, verify: bool | ssl.SSLContext, connections: int,
                         limits: BackendLimits | None = None) -> KeepAliveTransport | None:
    """Our lean keep-alive transport, or ``None`` (httpx's own transport) when an ``HTTP(S)_PROXY`` /
    ``ALL_PROXY`` variable applies to this backend and ``NO_PROXY`` does not exempt it: httpx's transport
    speaks to proxies, ours does not."""
    if _proxy_for(base_url) is not None:
        return None
    limits = limits or BackendLimits()
    return KeepAliveTransport(verify=verify, max_connections=connections, max_header_bytes=limits.max_header_bytes,
                              max_header_lines=limits.max_header_lines, max_body_bytes=limits.max_body_bytes)


def backend_transport(base_url: str, verify: bool | ssl.SSLContext, limits: BackendLimits) -> httpx.AsyncBaseTransport:
    """Our keep-alive transport, or httpx's own through the proxy the environment names for this backend
    (``BackendHttp`` wraps either in ``BoundedReplies``, so an explicit transport replaces httpx's
    environment proxy handling here)."""
    ours = keep_alive_transport(base_url, verify, limits.concurrency, limits)
    if ours is not None:
        return ours
    pool = httpx.Limits(max_connections=limits.concurrency, max_keepalive_connections=limits.concurrency)
    return httpx.AsyncHTTPTransport(verify=verify, limits=pool, proxy=_proxy_for(base_url))


def error_message(response: httpx.Response, redactor: Redactor | None = None) -> tuple[str, str | None]:
    """The backend's own words for a failed reply: JSON ``message``/``code`` when present, else text; with
    ``redactor``, scrubbed (``scrub_reply``) before it is cut short, so no secret is left half-cut."""
    scrub = redactor.scrub_reply if redactor is not None else (lambda text: text)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or ""
        code = body.get("code")
        if message:
            return scrub(str(message)[:ERROR_TEXT_WINDOW])[:ERROR_TEXT * 5], None if code is None else str(code)
    text = scrub(response.text[:ERROR_TEXT_WINDOW].strip().replace("\n", " "))
    return (text[:ERROR_TEXT] or response.reason_phrase or f"HTTP {response.status_code}"), None


# --- bounded replies -------------------------------------------------------------------------------


class _Inflater:
    """A gzip or deflate decoder whose output comes in pieces of at most ``DECODE_PIECE`` bytes, so that
    a compression bomb never holds more than one piece (httpx's decoders inflate a whole read at once)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._gzip = coding in ("gzip", "x-gzip")
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)
        self._fresh = True  # deflate may be raw (no zlib header), as many servers send it: tried on the first piece

    def feed(self, data: bytes) -> Iterator[bytes]:
        fresh, self._fresh = self._fresh, False
        produced = False
        try:
            for piece in self._drain(data):
                produced = True
                yield piece
        except zlib.error as exc:
            if not (fresh and not produced and not self._gzip):
                raise MalformedReplyError(f"reply body is not valid {self.coding}: {exc}") from exc
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                yield from self._drain(data)
            except zlib.error as again:
                raise MalformedReplyError(f"reply body is not valid {self.coding}: {again}") from again

    def flush(self) -> bytes:
        try:
            return self._zlib.flush()
        except zlib.error as exc:
            raise MalformedReplyError(f"reply body is not valid {self.coding}: {exc}") from exc

    def _drain(self, data: bytes) -> Iterator[bytes]:
        inflate = self._zlib
        while not inflate.eof:  # anything after the end of the compressed stream is ignored, as httpx does
            piece = inflate.decompress(data, DECODE_PIECE)
            data = inflate.unconsumed_tail
            if piece:
                yield piece
            if not data and len(piece) < DECODE_PIECE:
                return


def _inflaters(response: httpx.Response) -> list[_Inflater]:
    """The decoders of the reply's ``Content-Encoding``, outermost first; ``MalformedReplyError`` for a
    coding we did not ask for and cannot decode (br, zstd, compress)."""
    value = response.headers.get("content-encoding")
    if not value:
        return []
    codings = [c.strip().lower() for c in value.split(",") if c.strip() and c.strip().lower() != "identity"]
    for coding in codings:
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise MalformedReplyError(f"reply is encoded with {coding!r}, which is not decoded here "
                                      f"(requests ask for {ACCEPT_ENCODING})")
    return [_Inflater(coding) for coding in reversed(codings)]


def _decoded(inflaters: list[_Inflater], pieces: Iterable[bytes]) -> Iterator[bytes]:
    for inflater in inflaters:
        pieces = _through(inflater, pieces)
    return iter(pieces)


def _through(inflater: _Inflater, pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from inflater.feed(piece)


def _flushed(inflaters: list[_Inflater]) -> Iterator[bytes]:
    for index, inflater in enumerate(inflaters):
        tail = inflater.flush()
        if tail:
            yield from _decoded(inflaters[index + 1:], (tail,))


class _BoundedBody(httpx.AsyncByteStream):
    """A reply body counted as it streams in, decoded here with bounded output, within one deadline."""

    def __init__(self, raw: httpx.AsyncByteStream, limits: BackendLimits, inflaters: list[_Inflater],
                 request: httpx.Request, deadline: float | None) -> None:
        self._raw = raw
        self._limits = limits
        self._inflaters = inflaters
        self._request = request
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limits, inflaters = self._limits, self._inflaters
        received = decoded = 0
        chunks = self._raw.__aiter__()
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except TimeoutError as exc:
                raise httpx.ReadTimeout("timed out reading the reply body", request=self._request) from exc
            received += len(chunk)
            if received > limits.max_body_bytes:
                raise ReplyLimitError(f"reply body over {limits.max_body_bytes} bytes (limits.maxBodyBytes)")
            if not inflaters:
                yield chunk
                continue
            for piece in _decoded(inflaters, (chunk,)):
                decoded += len(piece)
                self._check_decoded(decoded, received)
                yield piece
        for piece in _flushed(inflaters):
            decoded += len(piece)
            self._check_decoded(decoded, received)
            yield piece

    def _check_decoded(self, decoded: int, received: int) -> None:
        limits = self._limits
        coding = ", ".join(i.coding for i in reversed(self._inflaters))
        if decoded > limits.max_decoded_bytes:
            raise ReplyLimitError(f"reply body over {limits.max_decoded_bytes} bytes once decoded ({coding}) "
                                  "(limits.maxDecodedBytes)")
        if decoded > RATIO_FLOOR and decoded > limits.max_compression_ratio * max(received, 1):
            raise ReplyLimitError(f"reply body decodes ({coding}) to more than {limits.max_compression_ratio:g} "
                                  "times its size (limits.maxCompressionRatio)")

    async def aclose(self) -> None:
        await self._raw.aclose()


class BoundedReplies(httpx.AsyncBaseTransport):
    """Wraps the transport of one backend (ours, or httpx's own behind a proxy) so that every reply, the
    ones httpx reads inside an auth flow included, is bounded by the backend's ``limits`` and decoded
    here (``Content-Encoding`` is removed from the headers, so httpx never inflates anything itself)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limits: BackendLimits) -> None:
        self.inner = inner
        self._limits = limits
        self._head_checked = isinstance(inner, KeepAliveTransport)  # ours bounds the head while reading it

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        try:
            return self._bounded(response, request)
        except BaseException:
            await response.aclose()
            raise

    def _bounded(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
        limits = self._limits
        stream = response.stream
        encoded = "content-encoding" in response.headers
        if isinstance(stream, CompleteBody) and not encoded:  # ours, read with the head: the common case
            if stream.size > limits.max_body_bytes:
                raise ReplyLimitError(f"reply body over {limits.max_body_bytes} bytes (limits.maxBodyBytes)")
            return response
        if not self._head_checked:
            raw = response.headers.raw
            if len(raw) > limits.max_header_lines:
                raise ReplyLimitError(f"reply has more than {limits.max_header_lines} header lines "
                                      "(limits.maxHeaderLines)")
            if sum(len(name) + len(value) + 4 for name, value in raw) > limits.max_header_bytes:
                raise ReplyLimitError(f"reply headers over {limits.max_header_bytes} bytes (limits.maxHeaderBytes)")
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise ReplyLimitError(f"reply of {declared} bytes announced, over {limits.max_body_bytes} bytes "
                                  "(limits.maxBodyBytes)")
        inflaters = _inflaters(response) if encoded else []
        if encoded:
            del response.headers["content-encoding"]
            if "content-length" in response.headers:
                del response.headers["content-length"]
        read = request.extensions.get("timeout", {}).get("read")
        deadline = None if read is None else asyncio.get_running_loop().time() + read
        response.stream = _BoundedBody(stream, limits, inflaters, request, deadline)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- paged listings --------------------------------------------------------------------------------


class ListingBudget:
    """The pages and items one paged listing may have (``limits.maxListPages`` / ``maxListItems``); going
    over either is a ``ReplyLimitError`` naming the backend and the listing."""

    def __init__(self, http: BackendHttp, operation: str) -> None:
        self.backend = http.backend
        self.operation = operation
        self.max_pages = http.limits.max_list_pages
        self.max_items = http.limits.max_list_items
        self.pages = self.items = 0

    def claim(self, total_pages: int, per_page: int) -> None:
        """The listing says it has ``total_pages`` pages of ``per_page`` items (its first page's count)."""
        if total_pages > self.max_pages:
            raise self._over(f"the listing says it has {total_pages} pages, over limits.maxListPages "
                             f"({self.max_pages})")
        if per_page and (total_pages - 1) * per_page + 1 > self.max_items:
            raise self._over(f"the listing says it has {total_pages} pages of {per_page} items, over "
                             f"limits.maxListItems ({self.max_items})")

    def add(self, items: int) -> None:
        """One more page of ``items`` items."""
        self.pages += 1
        self.items += items
        if self.pages > self.max_pages:
            raise self._over(f"the listing has more than {self.max_pages} pages (limits.maxListPages)")
        if self.items > self.max_items:
            raise self._over(f"the listing has more than {self.max_items} items (limits.maxListItems)")

    def _over(self, message: str) -> ReplyLimitError:
        return ReplyLimitError(message, backend=self.backend, operation=self.operation)


async def fetch_in_order(fetch: Callable[[int], Awaitable[T]], numbers: Iterable[int], width: int,
                         take: Callable[[T], None]) -> None:
    """``take(await fetch(n))`` for every number in order, with at most ``width`` fetches in flight (a
    sliding window: never one task per page of a listing that claims millions). When a fetch or ``take``
    raises, the fetches in flight are cancelled."""
    pending = iter(numbers)
    window: deque[asyncio.Future[T]] = deque()
    try:
        for number in pending:
            window.append(asyncio.ensure_future(fetch(number)))
            if len(window) >= max(width, 1):
                break
        while window:
            result = await window.popleft()
            for number in pending:
                window.append(asyncio.ensure_future(fetch(number)))
                break
            take(result)
    finally:
        for task in window:
            task.cancel()
        if window:
            await asyncio.gather(*window, return_exceptions=True)


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


def _url_auth(url: httpx.URL) -> httpx.Auth:
    """Basic auth from the URL's user info when it has one (as httpx's client does), else none."""
    if url.username or url.password:
        return httpx.BasicAuth(url.username, url.password)
    return _NO_AUTH


_NO_AUTH = httpx.Auth()
_WRITING_METHODS = frozenset({"PUT", "PATCH", "DELETE"})
#: added to twice the request timeout (connect and reply are timed apart) for the longest a request takes
REQUEST_MARGIN_SECONDS = 5.0


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
        before_write: Callable[[float], None] | None = None,
        sessions: BackendSessions | None = None,
    ) -> None:
        self.backend = backend
        self.limits = limits
        self._on_request = on_request
        self._before_write = before_write
        #: the longest one request can take (connect, send, reply): the writer lease must outlive it
        self.request_bound = 2 * limits.timeout_seconds + REQUEST_MARGIN_SECONDS
        self.retry = retry or RetryPolicy(max_retries=limits.max_retries)
        self.redactor = redactor or Redactor()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._gate = asyncio.Semaphore(limits.concurrency)
        self._rate = RequestRateLimiter(limits.requests_per_second, sleep=sleep)
        #: requests sent, by (method, status or error class name): for metrics and tests
        self.sent: Counter[tuple[str, str]] = Counter()
        verify = tls_verify(tls, root)
        self._transport = BoundedReplies(transport or backend_transport(base_url, verify, limits), limits)
        #: the backend's configuration (base URL, headers, cookies, timeout, auth); requests go through ``_send``
        self.client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            headers={"Accept-Encoding": ACCEPT_ENCODING, **dict(headers or {})},
            verify=verify,
            timeout=httpx.Timeout(limits.timeout_seconds),
            limits=httpx.Limits(max_connections=limits.concurrency, max_keepalive_connections=limits.concurrency),
            transport=self._transport,
        )
        self._base = str(self.client.base_url).rstrip("/") + "/"  # the path httpx joins relative URLs to
        self._sessions = sessions
        if sessions is not None:
            sessions.adopt(self)

    @classmethod
    def for_backend(cls, spec: BackendSpec, ctx: ConnectContext, **options: Any) -> BackendHttp:
        """The policy for a declared backend: its URL, limits and TLS settings, the run's redactor and
        request observer (``options``: auth, headers, and for tests transport and sleep)."""
        return cls(backend=spec.name, base_url=spec.url, limits=spec.limits, tls=spec.tls, root=ctx.root,
                   redactor=ctx.redactor, on_request=ctx.on_request, before_write=ctx.before_write,
                   sessions=ctx.sessions, **options)

    async def aclose(self) -> None:
        """Close the connections; for a client its pass shares (``BackendSessions``), say that this role is
        done with it: it closes once the pass has ended and no role holds it."""
        if self._sessions is None or self._sessions.release(self):
            await self.close_connections()

    async def close_connections(self) -> None:
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
        where: dict[str, Any] = {"backend": self.backend, "operation": operation}
        async with self._gate:
            await self._rate.acquire()
            if self._before_write is not None and (not idempotent or method in _WRITING_METHODS):
                self._before_write(self.request_bound)  # a writer that lost its lease stops here
            try:
                response = await self._send(method, self._absolute(url), dict(request))
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
            except BackendError as exc:  # a reply over a bound or in an unknown encoding; a refused login
                self._count(method, type(exc).__name__)
                self._place(exc, operation)
                if isinstance(exc, ReplyLimitError) and not idempotent:
                    raise UnknownOutcomeError(f"{exc.message}; the request may have taken effect",
                                              status=exc.status, **where) from exc
                raise
        self._count(method, str(response.status_code))
        self._raise_for_status(response, where)
        try:
            return parse(response)
        except BackendError as exc:
            self._place(exc, operation)
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            text = self.redactor.scrub_reply(str(exc)[:ERROR_TEXT_WINDOW])[:ERROR_TEXT]
            raise MalformedReplyError(
                f"unreadable reply: {exc.__class__.__name__}: {text}",
                status=response.status_code,
                **where,
            ) from exc

    async def _send(self, method: str, url: str, request: dict[str, Any]) -> httpx.Response:
        """One request, its auth flow included, read whole: what ``httpx.AsyncClient.request`` does for us,
        without what we never use. The request is built by the client (``build_request``: its base headers,
        cookies, timeout, body encoding, so every request is byte-for-byte what httpx built) and its auth flow
        is run as httpx runs it; the client's send loop is skipped: it handed every reply to the cookie jar
        (through urllib's request and message wrappers, though our backends set no cookies: we extract them
        when a reply has ``Set-Cookie``), wrapped every body to time it and checked every reply for a redirect,
        which we never follow. That loop cost 100-250 µs of CPU per request (``bench/client_cpu.py``:
        ``backendhttp`` against ``backendhttp_httpx_send``). ``auth`` in ``request`` overrides the client's, as for ``client.request``."""
        client = self.client
        if client.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        auth: httpx.Auth | None = request.pop("auth") if "auth" in request else client.auth  # None: none
        built = client.build_request(method, url, **request)
        flow = (auth or _url_auth(built.url)).async_auth_flow(built)
        try:
            outgoing = await anext(flow)
            while True:
                response = await self._exchange(outgoing)
                try:
                    try:
                        outgoing = await flow.asend(response)
                    except StopAsyncIteration:
                        await response.aread()
                        return response
                    await response.aread()  # a reply inside the flow (a login, a Digest challenge)
                except BaseException:
                    await response.aclose()
                    raise
        finally:
            await flow.aclose()

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        """The reply to one request from the transport, as httpx's client takes it (cookies included)."""
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.RequestError as exc:
            exc.request = request  # as httpx's client does: the request the failure belongs to
            raise
        response.request = request
        if "set-cookie" in response.headers:
            self.client.cookies.extract_cookies(response)
        return response

    def _place(self, exc: BackendError, operation: str) -> None:
        """Name this backend and operation in ``exc`` and scrub its text, which may come from the reply."""
        exc.backend = exc.backend or self.backend
        exc.operation = exc.operation or operation
        exc.message = self.redactor.scrub_reply(exc.message)

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
        message, code = error_message(response, self.redactor)
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
