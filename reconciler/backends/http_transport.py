"""A lean HTTP/1.1 transport for httpx: keep-alive connections on asyncio streams, and nothing else.

httpx's default transport (httpcore on anyio) cost 0.9 ms of CPU per request at one request in flight
and 1.7 ms at sixteen on the benchmark machine, against 0.35 ms for the client layer above it: its
pool re-examines every connection on every request start and end (a ``getpeername`` and a ``poll``
system call for each idle one) and anyio wraps every read and write in cancel scopes. Our backends
are few and speak HTTP/1.1, and ``BackendHttp`` already bounds how many requests are in flight, so
this transport only has to:

- keep idle connections per origin (last used first) and open a new one when none is idle, never
  more than ``max_connections`` at once;
- never reuse a connection the server closed while it was idle: the connection taken for a request is
  asked (one ``poll`` with no wait) whether anything is waiting on it, since a FIN that arrived with
  or just after the last reply may not have been read by the event loop yet; connections idle longer
  than ``keepalive_expiry`` (4 s: under the 5 s of uvicorn and of many servers, so that none is closing
  a connection as we write to it) are closed, and so is one on which bytes came after a complete
  chunked reply (a reply it does not belong to);
- send any request body httpx builds (bytes, multipart, async file streams; chunked when httpx asks
  for it) and read responses framed by Content-Length, chunked encoding, or the end of the connection;
- read framing strictly (an ambiguous frame is how a reply smuggles a second one) with llhttp, the C parser
  of Node.js, through ``httptools``: a status line is ``HTTP/1.0`` or ``HTTP/1.1`` and three digits; every
  header line has a colon after a token name; ``Content-Length`` is ASCII digits only (``int()`` would take
  ``+10``, ``1_0``), never repeated with another value, never together with ``Transfer-Encoding``, which
  may only be ``chunked``; chunk sizes are hex digits only (``int(x, 16)`` would take ``0x1f``, ``1_f``)
  and every chunk ends in CRLF. Anything else is a ``RemoteProtocolError``. Where llhttp is laxer than
  these rules (a ``Transfer-Encoding`` other than ``chunked``, an ``HTTP/2.0`` or ``HTTP/0.9`` status
  line, control characters in the reason phrase) a check here says no; where it is stricter than a client
  may be (RFC 9112 has a client unfold obs-fold lines and lets it merge repeated identical
  ``Content-Length`` headers) the head is normalised and parsed once more;
- bound the reply head (``max_header_bytes``, default 64 KiB, and ``max_header_lines``, default 100,
  interim 1xx replies and chunked trailers included), the number of chunks of a chunked body (one per
  256 bytes of ``max_body_bytes``, at least 4,096) and its bytes that are not data (size lines,
  extensions, trailers: ``max_header_bytes`` and 32 a chunk), raising ``ReplyLimitError`` while reading;
- stream bodies: one of up to 64 KiB with a Content-Length is read with the head (the connection goes
  back to the pool at once); any other body is read as the caller iterates it, in pieces of at most
  64 KiB, and the connection is pooled when the body is complete or closed when the caller stops early.
  Body size, decoding and their bounds are the business of the layer above (``BackendHttp``), which
  applies them to httpx's own transport too;
- apply the request's connect, write and read timeouts (the read timeout bounds the whole reply, head
  and body, not each read);
- fail with the exceptions httpx's own transport raises (``ConnectError``/``ConnectTimeout`` when
  nothing was sent; ``WriteError``, ``ReadError``, ``ReadTimeout``, ``RemoteProtocolError`` after), so
  ``BackendHttp``'s retry rules see exactly what they saw before.

The request target is sent as httpx built it (``url.raw_path``), never re-quoted, so signed Ogangi
paths and HTTP Digest ``uri`` values stay byte-identical.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field

import httpx

from reconciler.backends.http_framing import CHUNKED, LENGTH, NONE, ChunkedBody, ReplyHead, parse_head
from reconciler.errors import ReplyLimitError

DEFAULT_PORTS = {"http": 80, "https": 443}
CHUNK_END = b"0\r\n\r\n"
READ_CHUNK = 64 * 1024  # the largest piece of a body read at once; smaller Content-Length bodies come with the head
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_LINES = 100
MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    def reusable(self, now: float, expiry: float) -> bool:
        if self.reader.at_eof() or self.writer.is_closing() or now - self.idle_since >= expiry:
            return False
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return False
        waiting = select.poll()  # poll, not select: no limit on descriptor numbers
        try:  # readable while idle: the server's FIN (or stray bytes) is waiting, so it is not ours to use
            waiting.register(sock.fileno(), select.POLLIN)
            return not waiting.poll(0)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        self.writer.close()


class CompleteBody(httpx.ByteStream):
    """A body read whole with the head (a Content-Length of at most 64 KiB): ``size`` bytes, and the
    connection is already back in the pool."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.size = len(data)


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over pooled asyncio connections (``verify`` as for httpx: a bool or an SSL context)."""

    def __init__(self, *, verify: bool | ssl.SSLContext = True, max_connections: int = 16,
                 keepalive_expiry: float = 4.0, max_header_bytes: int = MAX_HEADER_BYTES,
                 max_header_lines: int = MAX_HEADER_LINES, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None  # made on the first https connection (loading CAs costs ~20 ms)
        self._slots = asyncio.Semaphore(max_connections)
        self._expiry = keepalive_expiry
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False
        self.max_header_bytes = max_header_bytes
        self.max_header_lines = max_header_lines
        self.max_chunks = max(4096, max_body_bytes // 256)

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.scheme, request.url.host, request.url.port or DEFAULT_PORTS[request.url.scheme])
        timeouts = request.extensions.get("timeout", {})
        await self._slots.acquire()
        connection: _Connection | None = None
        try:
            connection = self._reuse(origin) or await self._connect(origin, request, timeouts.get("connect"))
            await _send(connection, request, timeouts.get("write"))
            read = timeouts.get("read")
            deadline = None if read is None else asyncio.get_running_loop().time() + read
            head, body = await self._receive(connection, request, deadline)
        except BaseException:
            if connection is not None:
                connection.close()
            self._slots.release()
            raise
        stream: httpx.AsyncByteStream
        if body is not None:
            self.release(origin, connection, keep=head.keep_alive)
            stream = CompleteBody(body)
        else:
            stream = _StreamedBody(self, origin, connection, request, head, deadline)
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": head.reason}
        return httpx.Response(head.status, headers=head.headers, stream=stream, extensions=extensions)

    def release(self, origin: tuple[str, str, int], connection: _Connection, *, keep: bool) -> None:
        """The request is over: pool its connection (``keep``) or close it, and free its slot."""
        if keep and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(origin, []).append(connection)
        else:
            connection.close()
        self._slots.release()

    def _reuse(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.reusable(now, self._expiry):
                return connection
            connection.close()
        return None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            verify = self._verify
            self._ssl = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        return self._ssl

    async def _connect(self, origin: tuple[str, str, int], request: httpx.Request,
                       timeout: float | None) -> _Connection:
        scheme, host, port = origin
        secure = scheme == "https"
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._ssl_context() if secure else None,
                    server_hostname=host if secure else None, limit=max(self.max_header_bytes, READ_CHUNK))
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out", request=request) from exc
        except OSError as exc:  # refused, unreachable, TLS handshake or certificate refused
            raise httpx.ConnectError(f"{exc.__class__.__name__}: {exc}", request=request) from exc
        return _Connection(reader, writer)

    async def _receive(self, connection: _Connection, request: httpx.Request,
                       deadline: float | None) -> tuple[ReplyHead, bytes | None]:
        """The reply's head, and its body when it is empty or small enough to read with the head
        (``None``: the body is to be streamed)."""
        with _reading(request):
            async with asyncio.timeout_at(deadline):
                head = await self._read_head(connection.reader, request)
                if head.framing == NONE:
                    return head, b""
                if head.framing == LENGTH and head.length <= READ_CHUNK:
                    return head, await connection.reader.readexactly(head.length)
                return head, None

    async def _read_head(self, reader: asyncio.StreamReader, request: httpx.Request) -> ReplyHead:
        size = lines = 0
        while True:  # 1xx interim replies (we never ask for one, but a server may send them) are skipped
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as exc:
                raise self._head_too_large() from exc
            size += len(raw)
            lines += raw.count(b"\r\n") - 2
            if size > self.max_header_bytes:
                raise self._head_too_large()
            if lines > self.max_header_lines:
                raise ReplyLimitError(f"reply has more than {self.max_header_lines} header lines "
                                      "(limits.maxHeaderLines)")
            head = parse_head(raw, request.method, max_chunks=self.max_chunks, max_header_lines=self.max_header_lines,
                              max_header_bytes=self.max_header_bytes)
            if not 100 <= head.status < 200:
                return head
            lines += 1  # an interim reply counts as a line too: a flood of them is bounded like headers

    def _head_too_large(self) -> ReplyLimitError:
        return ReplyLimitError(f"reply headers over {self.max_header_bytes} bytes (limits.maxHeaderBytes)")


class _StreamedBody(httpx.AsyncByteStream):
    """A body read as it is iterated, holding its connection (and transport slot) until the body is
    complete (the connection is pooled) or the stream is closed early (the connection is closed)."""

    def __init__(self, transport: KeepAliveTransport, origin: tuple[str, str, int], connection: _Connection,
                 request: httpx.Request, head: ReplyHead, deadline: float | None) -> None:
        self._transport = transport
        self._origin = origin
        self._connection: _Connection | None = connection
        self._request = request
        self._head = head
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        keep = False
        try:
            reader, head = connection.reader, self._head
            if head.framing == LENGTH:
                left = head.length
                while left:
                    data = await self._read(reader.readexactly(min(left, READ_CHUNK)))
                    left -= len(data)
                    yield data
            elif head.framing == CHUNKED and head.chunked is not None:
                async for data in self._chunks(reader, head.chunked):
                    yield data
            else:
                while data := await self._read(reader.read(READ_CHUNK)):
                    yield data
            keep = head.keep_alive and not (head.chunked is not None and head.chunked.stray)
        finally:
            self._release(keep=keep)

    async def aclose(self) -> None:
        self._release(keep=False)

    def _release(self, *, keep: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._transport.release(self._origin, connection, keep=keep)

    async def _read(self, reading: Awaitable[bytes]) -> bytes:
        with _reading(self._request):
            async with asyncio.timeout_at(self._deadline):
                return await reading

    async def _chunks(self, reader: asyncio.StreamReader, chunked: ChunkedBody) -> AsyncIterator[bytes]:
        """The data of a chunked body: what arrives is fed to llhttp until it says the body is complete."""
        while not chunked.complete:
            data = await self._read(reader.read(READ_CHUNK))
            if not data:
                raise httpx.RemoteProtocolError("the server closed the connection without sending the complete "
                                                "reply", request=self._request)
            with _reading(self._request):
                pieces = chunked.feed(data)
            for piece in pieces:
                yield piece


async def _send(connection: _Connection, request: httpx.Request, timeout: float | None) -> None:
    headers = request.headers.raw
    head = b"".join((request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n",
                     *(b"%s: %s\r\n" % (name, value) for name, value in headers), b"\r\n"))
    chunked = any(name.lower() == b"transfer-encoding" and b"chunked" in value.lower() for name, value in headers)
    writer = connection.writer
    try:
        async with asyncio.timeout(timeout):
            if isinstance(request.stream, httpx.ByteStream):
                body = b"".join([part async for part in _body(request)])
                writer.write(head + (_chunk(body) + CHUNK_END if chunked and body else body))
            else:
                writer.write(head)
                async for part in _body(request):
                    writer.write(_chunk(part) if chunked else part)
                    await writer.drain()
                if chunked:
                    writer.write(CHUNK_END)
            await writer.drain()
    except TimeoutError as exc:
        raise httpx.WriteTimeout("timed out sending the request", request=request) from exc
    except OSError as exc:
        raise httpx.WriteError(f"{exc.__class__.__name__}: {exc}", request=request) from exc


async def _body(request: httpx.Request) -> AsyncIterator[bytes]:
    async for part in request.stream:  # type: ignore[union-attr]
        if part:
            yield part


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@contextlib.contextmanager
def _reading(request: httpx.Request) -> Iterator[None]:
    """Reading a reply: asyncio's and the parser's failures as the httpx exceptions the retry rules read."""
    try:
        yield
    except TimeoutError as exc:
        raise httpx.ReadTimeout("timed out waiting for the reply", request=request) from exc
    except asyncio.IncompleteReadError as exc:
        what = "a reply" if not exc.partial else "the complete reply"
        raise httpx.RemoteProtocolError(f"the server closed the connection without sending {what}",
                                        request=request) from exc
    except ValueError as exc:
        raise httpx.RemoteProtocolError(f"malformed reply: {exc}", request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(f"{exc.__class__.__name__}: {exc}", request=request) from exc
