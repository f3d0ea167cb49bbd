"""Servers that misbehave on purpose, for the reliability tests (no tests in here): each runs its own
asyncio loop in a thread, so that the real ``reconcile`` entry point (in-process or a subprocess) can talk
to it over loopback.

- ``HostileIot``: an IoT campaign manager whose login works and whose listings are hostile (a gzip bomb,
  a body announced at 1 GiB, 1 GiB unannounced until the connection closes, an endless chunked body, a
  head of 1,000 lines, a listing claiming 3,000,000 pages), or whose login reply itself is the bomb; or,
  for comparison, benign (empty listings).
- ``EchoProxy``: a reverse proxy in front of a sandbox simulator that answers some requests itself with
  an error whose body echoes the request's headers and the credentials they carry, decoded and
  re-encoded every way a careless server might (Basic decoded, URL-encoded, Base64).
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
import zlib
from collections.abc import Awaitable, Callable
from urllib.parse import quote, quote_plus

import httpx

MiB = 1 << 20
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class LoopThread:
    """An asyncio loop in a daemon thread, serving ``handler`` on a free loopback port."""

    def __init__(self, handler: Handler) -> None:
        self.loop = asyncio.new_event_loop()
        self._handler = handler
        ready = threading.Event()
        self.port = 0

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()
            server.close()

        self.thread = threading.Thread(target=run, daemon=True, name="hostile-server")
        self.thread.start()
        ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """One request: method, target, headers (as sent), body (Content-Length or chunked)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:] if line)]
    fields = {name.lower(): value for name, value in headers}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        body = b"".join(parts)
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return method, target, headers, body


def reply(status: int, body: bytes, content_type: str = "application/json", extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n"
            % (status, content_type.encode(), len(body), extra) + body)


def gzip_zeros(megabytes: int) -> bytes:
    """``megabytes`` MiB of zeros, gzip-compressed to about 1 KB per MiB (2 GiB: 2.1 MB)."""
    chunk = b"\0" * MiB
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + block * megabytes + b"\x03\x00"
            + struct.pack("<II", crc, (megabytes * MiB) & 0xFFFFFFFF))


# --- a hostile IoT campaign manager ---------------------------------------------------------------

HOSTILE_MODES = ("gzip-bomb", "huge-body", "huge-body-close", "endless-chunked", "header-flood", "page-bomb",
                 "login-bomb", "benign")


class HostileIot:
    """An IoT campaign manager: ``POST /api/tokens`` gives a token (unless ``mode`` is ``login-bomb``);
    every listing answers per ``mode``. ``sent`` counts the bytes it wrote, ``requests`` what it was asked."""

    def __init__(self, mode: str, *, bomb_mib: int = 2048) -> None:
        assert mode in HOSTILE_MODES
        self.mode = mode
        self.bomb = gzip_zeros(bomb_mib) if mode in ("gzip-bomb", "login-bomb") else b""
        self.sent = 0
        self.requests: list[str] = []
        self.server = LoopThread(self.handle)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            method, target, _, _ = await read_request(reader)
            self.requests.append(f"{method} {target}")
            if target.startswith("/api/tokens") and self.mode != "login-bomb":
                await self._write(writer, reply(200, b'{"accessToken": "hostile-test-token"}'))
            elif self.mode in ("gzip-bomb", "login-bomb"):
                await self._write(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                          b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(self.bomb))
                for start in range(0, len(self.bomb), 65536):
                    await self._write(writer, self.bomb[start:start + 65536])
            elif self.mode == "huge-body":
                await self._write(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                          b"Content-Length: 1073741824\r\n\r\n")
                await self._forever(writer, b"\0" * 65536)
            elif self.mode == "huge-body-close":  # 1 GiB, framed by the end of the connection: nothing announced
                await self._write(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                          b"Connection: close\r\n\r\n")
                for _ in range(16384):
                    await self._write(writer, b"\0" * 65536)
                return
            elif self.mode == "endless-chunked":
                await self._write(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                          b"Transfer-Encoding: chunked\r\n\r\n")
                await self._forever(writer, b"10000\r\n" + b" " * 65536 + b"\r\n")
            elif self.mode == "header-flood":
                flood = b"".join(b"X-Flood-%d: v\r\n" % i for i in range(1000))
                await self._write(writer, b"HTTP/1.1 200 OK\r\n" + flood + b"Content-Length: 2\r\n\r\n{}")
            elif self.mode == "benign":  # empty listings: what a dry run costs when nothing is hostile
                kind = "programs" if "/api/programs" in target else "campaigns"
                await self._write(writer, reply(200, json.dumps({kind: [], "pageInfo": {"totalPages": 1}}).encode()))
            else:  # page-bomb
                kind = "programs" if "/api/programs" in target else "campaigns"
                page = {kind: [], "pageInfo": {"page": 0, "pageSize": 100, "totalPages": 3_000_000,
                                               "totalElements": 300_000_000}}
                page[kind] = [{"id": f"{kind}-{i}", "name": f"{kind}-{i}", "status": "CREATED", "packages": []}
                              for i in range(100)]
                await self._write(writer, reply(200, json.dumps(page).encode()))

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        self.sent += len(data)
        await writer.drain()

    async def _forever(self, writer: asyncio.StreamWriter, piece: bytes) -> None:
        while True:
            await self._write(writer, piece)


def hostile_iot_repo(url: str, limits: str = "") -> str:
    """A Backend ``iot`` at ``url`` and one campaign on it (``limits``: extra ``limits`` fields)."""
    return f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: iot}}
spec:
  type: iot-campaigns
  url: "{url}"
  auth: {{username: admin, password: {{env: IOT_PASSWORD}}}}
  limits: {{timeoutSeconds: 10, maxRetries: 1{limits}}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: rollout}}
spec: {{backend: iot, description: "Rollout", state: stopped}}
"""


# --- a proxy that echoes credentials ----------------------------------------------------------------


def echoed(method: str, target: str, headers: list[tuple[str, str]], as_json: bool) -> bytes:
    """An error body that repeats the request's headers and every credential in them, decoded and
    re-encoded: the worst a careless server does. JSON with a ``message`` (the client keeps more of it)
    and the headers as an object, or plain text."""
    secrets: list[str] = []
    lines = []
    for name, value in headers:
        lines.append(f"{name}: {value}")
        if name.lower() == "authorization" and value.lower().startswith("basic "):
            user_pass = base64.b64decode(value[6:]).decode("utf-8", "replace")
            lines.append(f"(you are {user_pass})")
            secrets.append(user_pass.partition(":")[2])
        elif name.lower() == "authorization":
            secrets.append(value.partition(" ")[2])
        elif name.lower() in ("x-authentication", "mobile-api-secret"):
            secrets.append(value)
    seen = []  # unlabelled: only the secret's own forms can give these away
    for secret in secrets:
        seen += [secret, base64.b64encode(secret.encode()).decode(),
                 base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="), quote(secret, safe=""),
                 quote_plus(secret), "".join(f"%{b:02x}" for b in secret.encode())]
    labelled = [line for line in lines if line.lower().startswith(("authorization", "(you", "x-authentication"))]
    for secret in secrets:
        labelled += [f"login?password={quote(secret, safe='')}", f"form password={quote_plus(secret)}"]
    text = (f"{method} {target} refused for ({' '.join(seen)}). " + " ".join(labelled)
            + " | all headers: " + " ".join(lines))
    if as_json:
        return json.dumps({"message": text, "code": "ECHO", "headers": dict(headers)}).encode()
    return text.encode()


class EchoProxy:
    """A reverse proxy to ``upstream`` (a sandbox simulator); requests for which ``echo(method, target,
    body)`` is true (or every request while ``echo_all``) get ``status`` with ``echoed`` headers instead.
    Tokens the upstream hands out in login replies are collected in ``tokens`` (secrets to scan for)."""

    def __init__(self, upstream: str, echo: Callable[[str, str, bytes], bool], *, status: int = 400,
                 as_json: bool = True) -> None:
        self.upstream = upstream
        self.echo = echo
        self.status = status
        self.as_json = as_json
        self.echo_all = False
        self.echoes = 0
        self.tokens: set[str] = set()
        self.server = LoopThread(self.handle)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with httpx.AsyncClient(base_url=self.upstream, verify=False, timeout=30) as client:
            while True:
                method, target, headers, body = await read_request(reader)
                if self.echo_all or self.echo(method, target, body):
                    self.echoes += 1
                    content_type = "application/json" if self.as_json else "text/plain"
                    writer.write(reply(self.status, echoed(method, target, headers, self.as_json), content_type))
                    await writer.drain()
                    continue
                forwarded = [(n, v) for n, v in headers if n.lower() not in
                             ("host", "content-length", "transfer-encoding", "connection", "accept-encoding")]
                answer = await client.request(method, target, headers=forwarded, content=body)
                if target.startswith("/api/tokens") and answer.is_success:
                    token = answer.json().get("accessToken") or answer.json().get("token")
                    if token:
                        self.tokens.add(str(token))
                extra = b"".join(b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in answer.headers.items()
                                 if n.lower() in ("www-authenticate", "retry-after"))
                writer.write(reply(answer.status_code, answer.content,
                                   answer.headers.get("content-type", "application/json"), extra))
                await writer.drain()
