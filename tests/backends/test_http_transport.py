"""The keep-alive transport under ``BackendHttp``: connections are reused, a connection the server closed
is not, every framing of a reply is read, the request target travels unchanged, and failures surface as
the httpx exceptions the retry rules read (nothing sent: connect errors; after sending: read and
protocol errors)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from reconciler.backends.http import BackendHttp
from reconciler.backends.http_transport import KeepAliveTransport
from reconciler.model import BackendLimits
from tests.backends.support import RawServer, Reply, fixed, serving

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def get(raw: RawServer, transport: KeepAliveTransport, path: str = "/x", **options: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=raw.url, transport=transport, timeout=1.0) as client:
        return await client.request("GET", path, **options)  # type: ignore[arg-type]


async def test_sequential_requests_share_one_connection() -> None:
    raw = await serving(fixed(OK))
    async with httpx.AsyncClient(base_url=raw.url, transport=KeepAliveTransport()) as client:
        texts = [(await client.get("/x")).text for _ in range(5)]
    assert (texts, raw.connections, len(raw.heads)) == (["ok"] * 5, 1, 5)


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    raw = await serving(fixed(OK, keep=False))
    async with httpx.AsyncClient(base_url=raw.url, transport=KeepAliveTransport()) as client:
        first = await client.get("/x")
        await asyncio.sleep(0.05)  # the server's FIN arrives while the connection is idle
        second = await client.get("/x")
    assert (first.text, second.text, raw.connections) == ("ok", "ok", 2)


async def test_the_request_target_is_sent_exactly_as_built() -> None:
    raw = await serving(fixed(OK))
    await get(raw, KeepAliveTransport(), "/rest/api/tools/sendSMS/7/NDk%3D/a%2Fb==/key/f00d?x=%41")
    assert raw.heads[0].startswith(b"GET /rest/api/tools/sendSMS/7/NDk%3D/a%2Fb==/key/f00d?x=%41 HTTP/1.1\r\n")


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3;x=1\r\n!!!\r\n0\r\nTrailer: t\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nok!!!",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok!!!",
], ids=["chunked", "until-close", "interim-100"])
async def test_every_framing_of_a_reply_is_read(data: bytes) -> None:
    raw = await serving(fixed(data, keep=False))
    reply = await get(raw, KeepAliveTransport())
    assert (reply.status_code, reply.text) == (200, "ok!!!")


async def test_a_streamed_request_body_is_sent_chunked() -> None:
    raw = await serving(fixed(OK))

    async def parts() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"def"

    reply = await get(raw, KeepAliveTransport(), content=parts())
    assert (reply.text, raw.bodies) == ("ok", [b"abcdef"])


async def test_a_refused_connection_is_a_connect_error() -> None:
    raw = await serving(fixed(OK))
    url = raw.url
    assert raw.server is not None
    raw.server.close()
    await raw.server.wait_closed()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=url, transport=KeepAliveTransport()) as client:
            await client.get("/x")


async def test_a_reply_cut_short_is_a_protocol_error_not_a_connect_error() -> None:
    raw = await serving(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", keep=False))
    with pytest.raises(httpx.RemoteProtocolError):
        await get(raw, KeepAliveTransport())


async def test_no_reply_in_time_is_a_read_timeout() -> None:
    async def silent(writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    raw = await serving(lambda server: silent)
    with pytest.raises(httpx.ReadTimeout):
        await get(raw, KeepAliveTransport(), timeout=0.2)


async def test_no_more_connections_than_allowed_and_idle_ones_are_reused() -> None:
    def slow(server: RawServer) -> Reply:
        async def reply(writer: asyncio.StreamWriter) -> bool:
            await asyncio.sleep(0.05)
            return await fixed(OK)(server)(writer)
        return reply

    raw = await serving(slow)
    async with httpx.AsyncClient(base_url=raw.url, transport=KeepAliveTransport(max_connections=2)) as client:
        replies = await asyncio.gather(*(client.get("/x") for _ in range(5)))
    assert ([r.text for r in replies], raw.connections, len(raw.heads)) == (["ok"] * 5, 2, 5)


async def test_a_backend_behind_a_configured_proxy_is_reached_through_it(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = await serving(fixed(OK))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http = BackendHttp(backend="test", base_url="http://backend.invalid:8080/api", limits=BackendLimits())
    try:
        text = await http.call("GET", "status", operation="status", idempotent=True, parse=lambda r: r.text)
    finally:
        await http.aclose()
    assert (text, proxy.heads[0].split(b"\r\n")[0]) == ("ok", b"GET http://backend.invalid:8080/api/status HTTP/1.1")


async def test_a_proxy_variable_that_exempts_the_backend_leaves_it_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = await serving(fixed(OK))
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    http = BackendHttp(backend="test", base_url=backend.url, limits=BackendLimits())
    try:
        text = await http.call("GET", "status", operation="status", idempotent=True, parse=lambda r: r.text)
    finally:
        await http.aclose()
    assert (text, backend.heads[0].split(b"\r\n")[0]) == ("ok", b"GET /status HTTP/1.1")


async def test_a_connection_closed_right_after_its_reply_is_not_reused_even_at_once() -> None:
    """The server's FIN may still be unread by the event loop when the next request starts: the socket is
    asked, so a request is never written into a connection the server has already closed."""
    raw = await serving(fixed(OK, keep=False))
    async with httpx.AsyncClient(base_url=raw.url, transport=KeepAliveTransport()) as client:
        texts = []
        for _ in range(20):
            texts.append((await client.get("/x")).text)
    assert (texts, raw.connections) == (["ok"] * 20, 20)
