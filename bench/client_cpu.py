"""Client CPU per request of the HTTP clients we could put behind ``BackendHttp``, side by side in one run
(issue 19, item 3: CPU per action <= 100 µs, and the HTTP client is most of it).

    .venv/bin/python bench/client_cpu.py [--requests 500] [--rounds 3] [--quick]

A loopback HTTP/1.1 server in a separate process answers at once with a canned JSON reply (a GET gets
1 KiB, a POST gets a small object once its body is read), so ``time.process_time`` in this process is
the client's CPU only. Each variant sends ``--requests`` requests, one at a time (``c1``) and sixteen at a
time (``c16``), GET JSON and POST JSON, and parses the JSON reply:

- ``backendhttp``: ``BackendHttp.call`` as it is (the policy, our lean send loop, our transport);
- ``backendhttp_httpx_send``: the same policy sending through ``httpx.AsyncClient.send`` (what
  ``BackendHttp`` did before: cookie extraction, redirect and event-hook plumbing on every request);
- ``httpx_raw``: ``httpx.AsyncClient`` on our keep-alive transport (llhttp framing), no policy;
- ``aiohttp_raw``: one ``aiohttp.ClientSession``, ``yarl.URL(url, encoded=True)``, no policy;
- ``aiohttp_seam``: what an aiohttp-backed ``BackendHttp`` would have to do to keep the adapters as they
  are: build the ``httpx.Request`` (auth flows sign and authorise it), send its method, raw target and
  headers through aiohttp, and hand an ``httpx.Response`` to the parse function.

Rounds alternate the order of the variants; each figure is the median of the rounds (µs of client CPU
per request). About a minute with the defaults on an idle two-core machine. The figures are the last
lines, ``name: value``, then all of them as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import yarl

from canned_server import canned_server
from reconciler.backends.http import BackendHttp
from reconciler.backends.http_transport import KeepAliveTransport
from reconciler.model import BackendLimits

SMALL = b'{"items": [' + b",".join(b'{"id": "gw-%04d", "state": "DOWNLOADING"}' % i for i in range(24)) + b"]}"
CREATED = b'{"id": "5b0e8c2e-1f4d-4a35-9d0b-8a1f2c3d4e5f", "state": "CREATED"}'
PAYLOAD = {"name": "campaign-0001", "gateways": [f"gw-{i:04d}" for i in range(8)], "window": {"start": "02:00"}}
HEAD = b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 10:00:00 GMT\r\nserver: bench\r\ncontent-type: application/json\r\n"
REPLIES = {b"GET": HEAD + b"content-length: %d\r\n\r\n" % len(SMALL) + SMALL,
           b"POST": HEAD + b"content-length: %d\r\n\r\n" % len(CREATED) + CREATED}
KINDS = ("get", "post")
CONCURRENCY = (1, 16)
Send = Callable[[str], Awaitable[object]]


def reply_for(head: bytes) -> bytes:
    """The canned reply for a request: by its method."""
    return REPLIES[head.split(b" ", 1)[0]]


def _json(response: httpx.Response) -> Any:
    return response.json()


class HttpxSendBackendHttp(BackendHttp):
    """``BackendHttp`` sending through ``httpx.AsyncClient.send``, as it did before its lean send loop."""

    async def _send(self, method: str, url: str, request: dict[str, Any]) -> httpx.Response:
        auth = request.pop("auth", httpx.USE_CLIENT_DEFAULT)
        built = self.client.build_request(method, url, **request)
        return await self.client.send(built, auth=auth)


async def backendhttp(url: str, cls: type[BackendHttp] = BackendHttp) -> tuple[Send, Callable[[], Awaitable[None]]]:
    http = cls(backend="bench", base_url=url, limits=BackendLimits(concurrency=16))

    async def send(kind: str) -> object:
        if kind == "get":
            return await http.call("GET", "/api/items", operation="list", idempotent=True, parse=_json)
        return await http.call("POST", "/api/items", operation="create", idempotent=False, parse=_json, json=PAYLOAD)

    return send, http.aclose


async def httpx_raw(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    client = httpx.AsyncClient(base_url=url, transport=KeepAliveTransport(max_connections=16), timeout=30)

    async def send(kind: str) -> object:
        reply = await (client.get("/api/items") if kind == "get" else client.post("/api/items", json=PAYLOAD))
        reply.raise_for_status()
        return reply.json()

    return send, client.aclose


async def aiohttp_raw(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16), timeout=aiohttp.ClientTimeout(30))
    target = yarl.URL(url + "/api/items", encoded=True)

    async def send(kind: str) -> object:
        async with session.request("GET" if kind == "get" else "POST", target,
                                   json=None if kind == "get" else PAYLOAD) as reply:
            reply.raise_for_status()
            return await reply.json()

    return send, session.close


async def aiohttp_seam(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """The least an aiohttp ``BackendHttp`` does per request while adapters keep httpx requests/replies."""
    builder = httpx.AsyncClient(base_url=url, headers={"Accept-Encoding": "gzip, deflate"})
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16), timeout=aiohttp.ClientTimeout(30),
                                    auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"))

    async def send(kind: str) -> object:
        request = builder.build_request("GET" if kind == "get" else "POST", url + "/api/items",
                                        json=None if kind == "get" else PAYLOAD)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        async with session.request(request.method, yarl.URL(str(request.url), encoded=True),
                                   headers=headers, data=request.content or None) as reply:
            body = await reply.read()
            response = httpx.Response(reply.status, headers=list(reply.raw_headers), content=body, request=request)
        return _json(response)

    async def close() -> None:
        await session.close()
        await builder.aclose()

    return send, close


VARIANTS: dict[str, Callable[[str], Awaitable[tuple[Send, Callable[[], Awaitable[None]]]]]] = {
    "backendhttp": backendhttp,
    "backendhttp_httpx_send": lambda url: backendhttp(url, HttpxSendBackendHttp),
    "httpx_raw": httpx_raw,
    "aiohttp_raw": aiohttp_raw,
    "aiohttp_seam": aiohttp_seam,
}


async def cpu_per_request(send: Send, kind: str, requests: int, concurrency: int) -> float:
    """Microseconds of this process's CPU per request (after a warm-up), ``concurrency`` in flight."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await send(kind)

    await asyncio.gather(*(worker(10) for _ in range(concurrency)))
    each = max(requests // concurrency, 1)
    started = time.process_time()
    await asyncio.gather(*(worker(each) for _ in range(concurrency)))
    return (time.process_time() - started) * 1e6 / (each * concurrency)


async def figures(url: str, requests: int, rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {}
    for round_ in range(rounds):
        order = list(VARIANTS.items())
        if round_ % 2:
            order.reverse()
        for name, make in order:
            send, close = await make(url)
            try:
                for kind in KINDS:
                    for concurrency in CONCURRENCY:
                        figure = await cpu_per_request(send, kind, requests, concurrency)
                        samples.setdefault(f"{name}_{kind}_c{concurrency}_us", []).append(figure)
            finally:
                await close()
    return {key: round(statistics.median(values), 1) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 requests, one round")
    options = parser.parse_args()
    requests, rounds = (200, 1) if options.quick else (options.requests, options.rounds)
    with canned_server(reply_for) as url:
        results: dict[str, object] = dict(asyncio.run(figures(url, requests, rounds)))
    results.update(requests=requests, rounds=rounds)
    for name, value in results.items():
        print(f"{name}: {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
