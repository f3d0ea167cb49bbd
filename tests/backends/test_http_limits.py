"""Replies are bounded, against real loopback servers that misbehave on purpose: a body over
``limits.maxBodyBytes`` (announced, chunked without end, until close without end), a compression bomb
(``maxCompressionRatio``, ``maxDecodedBytes``), a head over ``maxHeaderBytes`` / ``maxHeaderLines``; each is
a ``ReplyLimitError`` of the backend, raised while the body streams in (the server is stopped from
sending long before it would finish), on our transport and on httpx's own (used behind a proxy). Framing
is strict: what ``int()`` would forgive in a Content-Length or chunk size is a protocol error."""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from reconciler.backends.http import BackendHttp
from reconciler.backends.http_transport import KeepAliveTransport
from reconciler.errors import MalformedReplyError, ReplyLimitError, UnknownOutcomeError
from reconciler.load import load_desired_state
from reconciler.model import BackendLimits
from tests.backends.support import RawServer, Reply, fixed, serving, yateota_spec

MiB = 1 << 20


def endless(framing: str) -> Callable[[RawServer], Reply]:
    """A 200 whose body never ends, sent as fast as the client reads it."""
    piece = b"x" * 65536

    def make(server: RawServer) -> Reply:
        async def reply(writer: asyncio.StreamWriter) -> bool:
            if framing == "content-length":
                server.write(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
            elif framing == "chunked":
                server.write(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            else:
                server.write(writer, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            while True:
                server.write(writer, b"10000\r\n" + piece + b"\r\n" if framing == "chunked" else piece)
                await writer.drain()
        return reply
    return make


def zeros_deflated(megabytes: int, coding: str) -> bytes:
    """``megabytes`` MiB of zeros as gzip (or zlib-wrapped deflate): about 1 KB per MiB, built from one
    compressed MiB repeated (a full flush makes every block alike)."""
    chunk = b"\0" * MiB
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    body = block * megabytes + b"\x03\x00"  # an empty final block
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
    if coding == "gzip":
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body + struct.pack("<II", crc, (megabytes * MiB) & 0xFFFFFFFF)
    adler = 1
    for _ in range(megabytes):
        adler = zlib.adler32(chunk, adler)
    return b"\x78\xda" + body + struct.pack(">I", adler)


def bomb(megabytes: int, coding: str = "gzip") -> Callable[[RawServer], Reply]:
    data = zeros_deflated(megabytes, coding)

    def make(server: RawServer) -> Reply:
        async def reply(writer: asyncio.StreamWriter) -> bool:
            server.write(writer, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: %s\r\n"
                         b"Content-Length: %d\r\n\r\n" % (coding.encode(), len(data)))
            for start in range(0, len(data), 65536):
                server.write(writer, data[start:start + 65536])
                await writer.drain()
            return True
        return reply
    return make


def policy(url: str, **limits: object) -> BackendHttp:
    async def no_sleep(delay: float) -> None:
        return None

    return BackendHttp(backend="hostile-b", base_url=url, limits=BackendLimits(**limits),  # type: ignore[arg-type]
                       sleep=no_sleep)


async def call(http: BackendHttp, *, idempotent: bool = True) -> object:
    try:
        return await http.call("GET" if idempotent else "POST", "/list", operation="list", idempotent=idempotent,
                               parse=lambda r: len(r.content))
    finally:
        await http.aclose()


@pytest.mark.parametrize("framing", ["content-length", "chunked", "until-close"])
async def test_a_body_over_max_body_bytes_is_an_error_while_it_streams_in(framing: str) -> None:
    server = await serving(endless(framing))
    started = time.monotonic()
    with pytest.raises(ReplyLimitError) as caught:
        await call(policy(server.url, max_body_bytes=4 * MiB, timeout_seconds=5))
    assert "hostile-b list: " in str(caught.value) and "limits.maxBodyBytes" in str(caught.value)
    assert len(server.requests) == 1  # not retried: the same request would get the same reply
    assert server.sent < 4 * MiB + 8 * MiB  # read as it streamed in and stopped, not read whole first
    assert time.monotonic() - started < 5


async def test_the_default_body_bound_is_32_mib() -> None:
    server = await serving(endless("chunked"))
    with pytest.raises(ReplyLimitError, match=f"over {32 * MiB} bytes"):
        await call(policy(server.url))
    assert server.sent < 48 * MiB


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_compression_bomb_stops_at_the_ratio_bound(coding: str) -> None:
    server = await serving(bomb(256, coding))  # 256 MiB of zeros in 260 KB
    with pytest.raises(ReplyLimitError, match="limits.maxCompressionRatio"):
        await call(policy(server.url))


async def test_a_compressed_body_over_max_decoded_bytes_is_an_error() -> None:
    server = await serving(bomb(64))
    with pytest.raises(ReplyLimitError, match="limits.maxDecodedBytes"):
        await call(policy(server.url, max_decoded_bytes=8 * MiB, max_compression_ratio=1e9))


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
async def test_a_compressed_body_within_bounds_is_decoded(coding: str) -> None:
    text = b"".join(b'{"id": "gw-%05d", "state": "DOWNLOADING"},' % i for i in range(60_000))  # 2.6 MB, ratio ~20
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[coding]
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    data = packer.compress(text) + packer.flush()
    name = coding.removeprefix("raw-").encode()
    server = await serving(fixed(b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
                                 % (name, len(data)) + data))
    http = policy(server.url)
    try:
        body = await http.call("GET", "/list", operation="list", idempotent=True, parse=lambda r: r.content)
    finally:
        await http.aclose()
    assert body == text


async def test_a_tiny_compression_bomb_under_one_mib_decoded_is_not_judged_by_its_ratio() -> None:
    server = await serving(bomb(1))
    assert await call(policy(server.url)) == MiB


async def test_a_coding_we_did_not_ask_for_is_malformed_not_decoded_by_httpx() -> None:
    server = await serving(fixed(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\nok"))
    with pytest.raises(MalformedReplyError, match="'br'"):
        await call(policy(server.url, max_retries=0))
    assert b"accept-encoding: gzip, deflate\r\n" in server.heads[0].lower()


@pytest.mark.parametrize(("head", "bound"), [
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"Content-Length: 2\r\n\r\nok",
     "limits.maxHeaderLines"),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\nok", "limits.maxHeaderBytes"),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 120 + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     "limits.maxHeaderBytes|limits.maxHeaderLines"),
], ids=["lines", "bytes", "interim-flood"])
async def test_a_head_over_its_bounds_is_an_error(head: bytes, bound: str) -> None:
    server = await serving(fixed(head))
    with pytest.raises(ReplyLimitError, match=bound):
        await call(policy(server.url))


async def test_a_reply_over_a_bound_to_a_non_idempotent_request_is_an_unknown_outcome() -> None:
    server = await serving(endless("chunked"))
    with pytest.raises(UnknownOutcomeError, match="may have taken effect") as caught:
        await call(policy(server.url, max_body_bytes=MiB), idempotent=False)
    assert isinstance(caught.value.__cause__, ReplyLimitError)


@pytest.mark.parametrize("make", [endless("chunked"), endless("until-close"), bomb(256)], ids=["chunked", "close", "bomb"])
async def test_the_bounds_hold_on_httpx_own_transport_behind_a_proxy(
        make: Callable[[RawServer], Reply], monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a proxy httpx's own transport carries the request (the proxy here answers itself)."""
    proxy = await serving(make)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http = policy("http://backend.invalid:8080", max_body_bytes=4 * MiB)
    assert not isinstance(http.client._transport.inner, KeepAliveTransport)  # type: ignore[attr-defined]
    with pytest.raises(ReplyLimitError):
        await call(http)
    assert proxy.heads[0].startswith(b"GET http://backend.invalid:8080/list HTTP/1.1")
    assert proxy.sent < 4 * MiB + 8 * MiB


async def test_a_head_over_its_bounds_is_an_error_on_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"Content-Length: 2\r\n\r\nok"
    proxy = await serving(fixed(head))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ReplyLimitError, match="limits.maxHeaderLines"):
        await call(policy("http://backend.invalid:8080"))


async def test_a_slow_endless_body_ends_at_the_read_timeout_not_never() -> None:
    def make(server: RawServer) -> Reply:
        async def reply(writer: asyncio.StreamWriter) -> bool:
            server.write(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while True:
                server.write(writer, b"1\r\nx\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
        return reply

    server = await serving(make)
    started = time.monotonic()
    with pytest.raises(Exception, match="no reply: ReadTimeout"):
        await call(policy(server.url, timeout_seconds=0.5, max_retries=0))
    assert time.monotonic() - started < 2


# --- strict framing --------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n0123456789",
    b"HTTP/1.1 200 OK\r\nContent-Length: +10\r\n\r\n0123456789",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n0123456789abcdef",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\x0c\r\n\r\n0123456789",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1 0\r\n\r\n0123456789",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10, 10\r\n\r\n0123456789",
    b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n0123456789abcdef\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-No-Colon\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 +20 OK\r\nContent-Length: 2\r\n\r\nok",
], ids=["cl-underscore", "cl-plus", "cl-negative", "cl-hex", "cl-formfeed", "cl-space-inside", "cl-list", "cl-empty",
        "cl-differing", "cl-and-te", "te-not-chunked", "chunk-0x", "chunk-underscore", "chunk-plus",
        "chunk-leading-space", "chunk-no-crlf", "no-colon", "space-in-name", "bare-lf", "status-2-digits",
        "http2", "status-plus"])
async def test_ambiguous_framing_is_a_protocol_error(data: bytes) -> None:
    server = await serving(fixed(data))
    async with httpx.AsyncClient(base_url=server.url, transport=KeepAliveTransport(), timeout=2) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/x")


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length:  002 \r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2 ;ext=1\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
], ids=["cl-repeated-same", "cl-padded", "chunk-ext", "no-reason", "obs-fold"])
async def test_strict_framing_still_reads_what_is_valid(data: bytes) -> None:
    server = await serving(fixed(data))
    async with httpx.AsyncClient(base_url=server.url, transport=KeepAliveTransport(), timeout=2) as client:
        assert (await client.get("/x")).text == "ok"


async def test_a_streamed_body_gives_its_connection_back_when_complete() -> None:
    body = b"y" * (200 * 1024)  # over the 64 KiB read with the head: streamed
    server = await serving(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body))
    connections = []
    original = server.handle

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await original(reader, writer)

    assert server.server is not None
    server.server.close()
    server.server = await asyncio.start_server(counting, "127.0.0.1", 0)
    async with httpx.AsyncClient(base_url=server.url, transport=KeepAliveTransport(max_connections=1),
                                 timeout=2) as client:
        sizes = [len((await client.get("/x")).content) for _ in range(3)]
    assert (sizes, len(connections)) == ([len(body)] * 3, 1)


async def test_a_body_abandoned_half_way_closes_its_connection_and_frees_its_slot() -> None:
    server = await serving(endless("chunked"))
    transport = KeepAliveTransport(max_connections=1)
    async with httpx.AsyncClient(base_url=server.url, transport=transport, timeout=2) as client:
        for _ in range(3):  # one slot: a leaked slot would hang the second request
            async with client.stream("GET", "/x") as reply:
                async for _part in reply.aiter_raw():
                    break
    assert len(server.requests) == 3


# --- the bounds are the Backend's, from its YAML ----------------------------------------------------


BACKEND_YAML = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {name: b1}
spec:
  type: yateota
  url: http://127.0.0.1:9
  auth: {secret: {env: S}}
  limits: {%s}
"""


def test_the_bounds_are_read_from_the_backends_limits_with_documented_defaults(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(BACKEND_YAML % (
        "maxHeaderBytes: 2048, maxHeaderLines: 20, maxBodyBytes: 4096, maxDecodedBytes: 8192, "
        "maxCompressionRatio: 50, maxListPages: 7, maxListItems: 70"), encoding="utf-8")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.yaml").write_text(BACKEND_YAML % "concurrency: 4", encoding="utf-8")
    custom = load_desired_state([tmp_path / "b.yaml"], root=tmp_path)
    default = load_desired_state([tmp_path / "d"], root=tmp_path)
    assert custom.desired is not None and default.desired is not None, custom.diagnostics
    assert custom.desired.backends["b1"].limits == BackendLimits(
        max_header_bytes=2048, max_header_lines=20, max_body_bytes=4096, max_decoded_bytes=8192,
        max_compression_ratio=50.0, max_list_pages=7, max_list_items=70)
    assert default.desired.backends["b1"].limits == BackendLimits(concurrency=4)
    assert (BackendLimits().max_header_bytes, BackendLimits().max_header_lines, BackendLimits().max_body_bytes,
            BackendLimits().max_decoded_bytes, BackendLimits().max_compression_ratio, BackendLimits().max_list_pages,
            BackendLimits().max_list_items) == (65536, 100, 32 * MiB, 64 * MiB, 200.0, 10_000, 100_000)


@pytest.mark.parametrize("limits", ["maxBodyBytes: 10", "maxHeaderLines: 0", "maxCompressionRatio: 0.5",
                                    "maxListPages: 0", "maxBodyBytes: 1.5", "maxDecodedBytes: -1"])
def test_bounds_out_of_range_are_refused_by_the_loader(tmp_path: Path, limits: str) -> None:
    (tmp_path / "b.yaml").write_text(BACKEND_YAML % limits, encoding="utf-8")
    result = load_desired_state([tmp_path / "b.yaml"], root=tmp_path)
    assert not result.valid and any("limits" in d.message or limits.split(":")[0] in d.message
                                    for d in result.diagnostics), result.diagnostics


async def test_the_backends_bounds_reach_its_http_policy(tmp_path: Path) -> None:
    from reconciler.backends.protocol import ConnectContext
    from reconciler.backends.yateota.adapter import YateOtaClient
    from reconciler.secrets import Redactor

    server = await serving(endless("chunked"))
    spec = yateota_spec(server.url, name="yate-b", secret_env="S",
                        limits=BackendLimits(max_body_bytes=64 * 1024, max_retries=0))
    client = YateOtaClient.connect(spec, ConnectContext(root=tmp_path, environ={"S": "secret-1"}, redactor=Redactor()))
    try:
        with pytest.raises(ReplyLimitError, match="yate-b query_campaigns: reply body over 65536 bytes"):
            await client.query_campaigns()
    finally:
        await client.aclose()
