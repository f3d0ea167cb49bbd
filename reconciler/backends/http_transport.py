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
  a connection as we write to it) are closed;
- send any request body httpx builds (bytes, multipart, async file streams; chunked when httpx asks
  for it) and read responses framed by Content-Length, chunked encoding, or the end of the connection;
- apply the request's connect, write and read timeouts;
- fail with the exceptions httpx's own transport raises (``ConnectError``/``ConnectTimeout`` when
  nothing was sent; ``WriteError``, ``ReadError``, ``ReadTimeout``, ``RemoteProtocolError`` after), so
  ``BackendHttp``'s retry rules see exactly what they saw before.

The request target is sent as httpx built it (``url.raw_path``), never re-quoted, so signed Ogangi
paths and HTTP Digest ``uri`` values stay byte-identical.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

NO_BODY_STATUSES = frozenset({204, 304})
DEFAULT_PORTS = {"http": 80, "https": 443}
CHUNK_END = b"0\r\n\r\n"


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


@dataclass
class _Reply:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over pooled asyncio connections (``verify`` as for httpx: a bool or an SSL context)."""

    def __init__(self, *, verify: bool | ssl.SSLContext = True, max_connections: int = 16,
                 keepalive_expiry: float = 4.0) -> None:
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None  # made on the first https connection (loading CAs costs ~20 ms)
        self._slots = asyncio.Semaphore(max_connections)
        self._expiry = keepalive_expiry
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.scheme, request.url.host, request.url.port or DEFAULT_PORTS[request.url.scheme])
        timeouts = request.extensions.get("timeout", {})
        async with self._slots:
            connection = self._reuse(origin) or await self._connect(origin, request, timeouts.get("connect"))
            try:
                await _send(connection, request, timeouts.get("write"))
                reply = await _receive(connection, request, timeouts.get("read"))
            except BaseException:
                connection.close()
                raise
            if reply.keep_alive and not self._closed:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(connection)
            else:
                connection.close()
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": reply.reason}
        return httpx.Response(reply.status, headers=reply.headers, stream=httpx.ByteStream(reply.body),
                              extensions=extensions)

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
                    server_hostname=host if secure else None)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out", request=request) from exc
        except OSError as exc:  # refused, unreachable, TLS handshake or certificate refused
            raise httpx.ConnectError(f"{exc.__class__.__name__}: {exc}", request=request) from exc
        return _Connection(reader, writer)


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


async def _receive(connection: _Connection, request: httpx.Request, timeout: float | None) -> _Reply:
    try:
        async with asyncio.timeout(timeout):
            return await _read_reply(connection.reader, request)
    except TimeoutError as exc:
        raise httpx.ReadTimeout("timed out waiting for the reply", request=request) from exc
    except asyncio.IncompleteReadError as exc:
        what = "a reply" if not exc.partial else "the complete reply"
        raise httpx.RemoteProtocolError(f"the server closed the connection without sending {what}",
                                        request=request) from exc
    except asyncio.LimitOverrunError as exc:
        raise httpx.RemoteProtocolError("reply header line too long", request=request) from exc
    except (ValueError, IndexError) as exc:
        raise httpx.RemoteProtocolError(f"malformed reply: {exc}", request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(f"{exc.__class__.__name__}: {exc}", request=request) from exc


async def _read_reply(reader: asyncio.StreamReader, request: httpx.Request) -> _Reply:
    while True:  # 1xx interim replies (we never ask for one, but a server may send them) are skipped
        status, reason, headers, keep_alive = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        if not 100 <= status < 200:
            break
    names = {name.lower(): value for name, value in headers}
    if request.method == "HEAD" or status in NO_BODY_STATUSES:
        body = b""
    elif b"chunked" in names.get(b"transfer-encoding", b"").lower():
        body = await _read_chunked(reader)
    elif b"content-length" in names:
        body = await reader.readexactly(int(names[b"content-length"]))
    else:  # framed by the end of the connection
        body, keep_alive = await reader.read(), False
    return _Reply(status, reason, headers, body, keep_alive)


def _parse_head(raw: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]], bool]:
    lines = raw[:-4].split(b"\r\n")
    version, status, *reason = lines[0].split(b" ", 2)
    if not version.startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and headers:  # obsolete line folding
            name, value = headers.pop()
            headers.append((name, value + b" " + line.strip()))
            continue
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    connection = b",".join(v for n, v in headers if n.lower() == b"connection").lower()
    keep_alive = b"close" not in connection and (version != b"HTTP/1.0" or b"keep-alive" in connection)
    return int(status), reason[0] if reason else b"", headers, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, ignored
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
