"""``BackendHttp`` sends through its own loop (``_send``), not ``httpx.AsyncClient.send``: what reaches the
server must be byte-for-byte what httpx's client sends with the same configuration, cookies a server sets
must still be sent back, and a per-call ``auth`` must still override the client's, against a real loopback
server."""

from __future__ import annotations

import asyncio

import httpx

from reconciler.backends.http import BackendHttp
from reconciler.backends.http_transport import KeepAliveTransport
from reconciler.model import BackendLimits
from tests.backends.support import RawServer, Reply, fixed, json_replies, serving

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def policy(url: str, **options: object) -> BackendHttp:
    return BackendHttp(backend="b", base_url=url + "/api/", limits=BackendLimits(max_retries=0),
                       headers={"Accept": "application/json"}, **options)  # type: ignore[arg-type]


def _json(response: httpx.Response) -> object:
    return response.json()


async def test_requests_are_byte_for_byte_what_the_httpx_client_sends() -> None:
    server = await serving(json_replies(lambda method, path, query, body: {"ok": True}))
    auth = httpx.BasicAuth("admin", "pw")
    http = policy(server.url, auth=auth)
    client = httpx.AsyncClient(base_url=server.url + "/api/", auth=auth, transport=KeepAliveTransport(),
                               headers={"Accept-Encoding": "gzip, deflate", "Accept": "application/json"})
    calls: list[tuple[str, str, dict[str, object]]] = [
        ("GET", "gateways/gw%2F1", {"params": {"page": 2, "q": "a b/ü"}}),
        ("POST", "campaigns", {"json": {"name": "c-1", "gateways": ["gw-1"]}}),
        ("PUT", "/api/x;y=1?z=%41", {"content": b"raw", "headers": {"X-Trace": "t"}}),
        ("DELETE", "programs/p~1", {}),
    ]
    try:
        for method, url, request in calls:
            await http.call(method, url, operation="op", idempotent=True, parse=_json, **request)
            await client.request(method, url, **request)  # type: ignore[arg-type]
    finally:
        await http.aclose()
        await client.aclose()
        server.server.close()  # type: ignore[union-attr]
    ours, theirs = server.requests[0::2], server.requests[1::2]
    assert [r.head for r in ours] == [r.head for r in theirs]
    assert [r.body for r in ours] == [r.body for r in theirs]
    assert b"/api/gateways/gw%2F1?page=2&q=a+b%2F%C3%BC " in ours[0].head


async def test_a_cookie_the_server_sets_is_sent_back_on_the_next_request() -> None:
    first = b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: 2\r\n\r\n{}"

    def make(server: RawServer) -> Reply:
        async def reply(writer: asyncio.StreamWriter) -> bool:
            server.write(writer, first if len(server.requests) == 1 else OK)
            return True
        return reply

    server = await serving(make)
    http = policy(server.url)
    try:
        for _ in range(2):
            await http.call("GET", "status", operation="op", idempotent=True, parse=_json)
    finally:
        await http.aclose()
        server.server.close()  # type: ignore[union-attr]
    assert b"cookie:" not in server.requests[0].head.lower()
    assert b"\r\nCookie: session=abc\r\n" in server.requests[1].head


async def test_a_per_call_auth_overrides_the_clients() -> None:
    server = await serving(fixed(OK))
    http = policy(server.url, auth=httpx.BasicAuth("client", "one"))
    try:
        await http.call("GET", "a", operation="op", idempotent=True, parse=_json)
        await http.call("POST", "login", operation="login", idempotent=False, parse=_json,
                        auth=httpx.BasicAuth("login", "two"))
    finally:
        await http.aclose()
        server.server.close()  # type: ignore[union-attr]
    client_header = httpx.BasicAuth("client", "one")._auth_header.encode()
    login_header = httpx.BasicAuth("login", "two")._auth_header.encode()
    assert b"Authorization: " + client_header in server.requests[0].head
    assert b"Authorization: " + login_header in server.requests[1].head
    assert client_header not in server.requests[1].head
