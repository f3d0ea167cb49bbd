"""What the backend tests share (no tests in here): a loopback HTTP/1.1 server that answers with whatever
bytes a test chooses (well-formed, hostile, or JSON from a handler), and the ``BackendSpec`` of each backend
type pointing at a sandbox simulator with the sandbox's own credentials."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reconciler.model import BackendLimits, BackendSpec, TlsSettings
from reconciler.secrets import SecretRef

#: writes one reply to the request being answered, which is ``RawServer.requests[-1]`` until the reply first
#: awaits (other connections' requests arrive meanwhile); True keeps the connection
Reply = Callable[[asyncio.StreamWriter], Awaitable[bool]]


@dataclass(frozen=True)
class RawRequest:
    """One request as it arrived: its head (request line and headers) and its body."""

    head: bytes
    body: bytes

    @cached_property
    def _line(self) -> list[str]:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)

    @property
    def method(self) -> str:
        return self._line[0]

    @property
    def path(self) -> str:
        return urlsplit(self._line[1]).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self._line[1]).query)


class RawServer:
    """An HTTP/1.1 server on a free loopback port (in the test's event loop) answering every request with
    ``reply``. It records what arrived and what it sent: connections, requests, bytes written through
    ``write``, and the most requests in flight (and asyncio tasks alive) while one was being answered."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[RawRequest] = []
        self.connections = 0
        self.sent = 0
        self.in_flight = self.most_in_flight = self.most_tasks = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    @property
    def heads(self) -> list[bytes]:
        return [request.head for request in self.requests]

    @property
    def bodies(self) -> list[bytes]:
        return [request.body for request in self.requests]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(RawRequest(head, await _body(reader, head)))
                if not await self._answer(writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        writer.close()

    async def _answer(self, writer: asyncio.StreamWriter) -> bool:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.most_tasks = max(self.most_tasks, len(asyncio.all_tasks()))
        try:
            return await self.reply(writer)
        finally:
            self.in_flight -= 1

    def write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Send ``data``, counted in ``sent``."""
        writer.write(data)
        self.sent += len(data)


async def serving(make: Callable[[RawServer], Reply]) -> RawServer:
    """Start a ``RawServer`` whose reply ``make(server)`` builds (so the reply can count what it sends
    and read the request it answers)."""
    server = RawServer(lambda writer: asyncio.sleep(0, False))
    server.reply = make(server)
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    return server


def fixed(data: bytes, *, keep: bool = True) -> Callable[[RawServer], Reply]:
    """Every request answered with the same bytes; ``keep=False`` closes the connection after each."""
    def make(server: RawServer) -> Reply:
        async def reply(writer: asyncio.StreamWriter) -> bool:
            server.write(writer, data)
            await writer.drain()
            return keep
        return reply
    return make


JsonHandler = Callable[[str, str, dict[str, list[str]], bytes], Any]  # method, path, query, body -> JSON reply


def json_replies(handler: JsonHandler, *, delay: float = 0.0) -> Callable[[RawServer], Reply]:
    """Every request answered ``200`` with ``handler``'s JSON (after ``delay`` seconds), keep-alive."""
    def make(server: RawServer) -> Reply:
        async def reply(writer: asyncio.StreamWriter) -> bool:
            request = server.requests[-1]  # before any await: other connections' requests arrive meanwhile
            await asyncio.sleep(delay)
            data = json.dumps(handler(request.method, request.path, request.query, request.body)).encode()
            server.write(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % len(data) + data)
            await writer.drain()
            return True
        return reply
    return make


async def _body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    """The request's body, framed by Content-Length or chunked."""
    lowered = head.lower()
    if b"transfer-encoding: chunked" in lowered:
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readexactly(2)
        return b"".join(parts)
    for line in lowered.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    return b""


# --- BackendSpecs for the sandbox simulators -------------------------------------------------------


def gateway_spec(url: str, *, name: str = "gw", password_env: str = "GW_PASSWORD",
                 limits: BackendLimits = BackendLimits(), tls: TlsSettings = TlsSettings(verify=False),
                 **options: object) -> BackendSpec:
    """The SMS gateway simulator (user ``admin``), its self-signed certificate not verified unless ``tls``
    says otherwise."""
    return BackendSpec(name=name, type="sms-gateway", url=url, limits=limits, tls=tls, options=options,
                       auth={"username": "admin", "password": SecretRef(env=password_env)})


def ogangi_spec(url: str, *, name: str = "og", private_key_env: str = "OG_KEY", public_key: str = "sandbox-public",
                instance_id: str = "7", limits: BackendLimits = BackendLimits(), **options: object) -> BackendSpec:
    return BackendSpec(name=name, type="ogangi", url=url, limits=limits, options=options,
                       auth={"instanceId": instance_id, "publicKey": public_key,
                             "privateKey": SecretRef(env=private_key_env)})


def yateota_spec(url: str, *, name: str = "yate", secret_env: str = "YATE_SECRET",
                 limits: BackendLimits = BackendLimits(), **options: object) -> BackendSpec:
    return BackendSpec(name=name, type="yateota", url=url, limits=limits, options=options,
                       auth={"secret": SecretRef(env=secret_env)})


def iot_spec(url: str, *, name: str = "iot", user: str = "admin", password_env: str = "IOT_PASSWORD",
             limits: BackendLimits = BackendLimits(), options: Mapping[str, object] | None = None) -> BackendSpec:
    return BackendSpec(name=name, type="iot-campaigns", url=url, limits=limits, options=dict(options or {}),
                       auth={"username": user, "password": SecretRef(env=password_env)})
