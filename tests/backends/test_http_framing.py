"""Reply framing read by llhttp (``http_framing``) and the rules kept beside it: where llhttp is laxer than
ours (Transfer-Encoding other than chunked, HTTP versions other than 1.0/1.1, control characters in the
reason) the reply is refused; where it is stricter than a client may be (obs-fold, repeated identical
Content-Length) the reply is read; a chunked body is bounded in chunks, trailer lines and framing bytes;
bytes after a complete reply keep its connection out of the pool; a reply dripping in one byte at a time
reads the same as one arriving whole. The loopback cases run against real servers that misbehave on
purpose (``test_http_limits``' ``Hostile``)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from reconciler.backends.http_framing import CHUNKED, CLOSE, LENGTH, NONE, FramingError, ReplyHead, parse_head
from reconciler.backends.http_transport import KeepAliveTransport
from reconciler.errors import ReplyLimitError
from tests.backends.support import RawServer as Hostile, Reply, fixed, serving as hostile


def head(raw: bytes, method: str = "GET") -> ReplyHead:
    return parse_head(raw, method, max_chunks=4096, max_header_lines=100, max_header_bytes=65536)


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 O\x1b[31mK\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n X-Folded: a\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
], ids=["te-gzip", "te-twice", "te-chunked-list", "te-gzip-no-body", "http2.0", "http0.9", "reason-escape",
        "cl-differing-spelling", "fold-first-line", "space-before-colon", "nul-in-value", "bare-cr",
        "upgrade"])
def test_what_llhttp_alone_would_let_through_or_we_refuse_is_a_framing_error(raw: bytes) -> None:
    with pytest.raises(FramingError):
        head(raw)


def test_a_head_is_read_into_status_reason_headers_and_framing() -> None:
    parsed = head(b"HTTP/1.1 201 Created\r\nContent-Type: application/json \r\nContent-Length:  002 \r\n\r\n")
    assert (parsed.status, parsed.reason, parsed.headers, parsed.keep_alive, parsed.framing, parsed.length) == (
        201, b"Created", [(b"Content-Type", b"application/json"), (b"Content-Length", b"002")], True, LENGTH, 2)


@pytest.mark.parametrize(("raw", "method", "framing", "keep_alive"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", NONE, True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", NONE, True),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET", NONE, True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", "GET", CHUNKED, True),
    (b"HTTP/1.1 200 OK\r\n\r\n", "GET", CLOSE, False),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n", "GET", LENGTH, False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", "GET", LENGTH, False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", "GET", NONE, True),
], ids=["empty", "head", "304", "chunked", "until-close", "connection-close", "http1.0", "http1.0-keep-alive"])
def test_framing_and_keep_alive_follow_the_head_and_the_method(raw: bytes, method: str, framing: str,
                                                                 keep_alive: bool) -> None:
    parsed = head(raw, method)
    assert (parsed.framing, parsed.keep_alive) == (framing, keep_alive)


def test_obs_fold_is_unfolded_and_identical_lengths_are_merged() -> None:
    parsed = head(b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n\t b\r\ncontent-length: 2\r\nContent-Length: 2 \r\n\r\n")
    assert (parsed.headers, parsed.length) == ([(b"X-Folded", b"a b"), (b"content-length", b"2")], 2)


def chunked_body(raw: bytes, *, max_chunks: int = 4096, max_header_lines: int = 100,
                 max_header_bytes: int = 65536) -> bytes:
    """The data of the chunked body in ``raw``, fed to the parser one byte at a time."""
    end = raw.index(b"\r\n\r\n") + 4
    parsed = parse_head(raw[:end], "GET", max_chunks=max_chunks, max_header_lines=max_header_lines,
                        max_header_bytes=max_header_bytes)
    assert parsed.chunked is not None
    pieces = [piece for index in range(end, len(raw)) for piece in parsed.chunked.feed(raw[index:index + 1])]
    assert parsed.chunked.complete
    return b"".join(pieces)


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_a_chunked_body_fed_byte_by_byte_is_its_data() -> None:
    assert chunked_body(CHUNKED_HEAD + b"2 ;a=\"b c\"\r\nok\r\nA\r\n0123456789\r\n0\r\nT: 1\r\n\r\n") == b"ok0123456789"


@pytest.mark.parametrize(("body", "bound"), [
    (b"1\r\nx\r\n" * 11 + b"0\r\n\r\n", "chunks"),
    (b"0\r\n" + b"T: x\r\n" * 11 + b"\r\n", "trailer lines"),
    (b"1;" + b"e" * 500 + b"\r\nx\r\n0\r\n\r\n", "extensions and trailers"),
    (b"0\r\nT: " + b"t" * 500, "extensions and trailers"),
], ids=["chunks", "trailer-lines", "long-extension", "endless-trailer"])
def test_a_chunked_body_is_bounded_in_chunks_trailer_lines_and_framing_bytes(body: bytes, bound: str) -> None:
    with pytest.raises(ReplyLimitError, match=bound):
        chunked_body(CHUNKED_HEAD + body, max_chunks=10, max_header_lines=10, max_header_bytes=256)


# --- over loopback ---------------------------------------------------------------------------------


async def get_twice(data: bytes, method: str = "GET") -> tuple[list[bytes], int]:
    """Two requests on a one-connection transport: the bodies read, and how many connections served them."""
    server = await hostile(fixed(data))
    connections = 0
    original = server.handle

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await original(reader, writer)

    assert server.server is not None
    server.server.close()
    server.server = await asyncio.start_server(counting, "127.0.0.1", 0)
    async with httpx.AsyncClient(base_url=server.url, transport=KeepAliveTransport(max_connections=1),
                                 timeout=2) as client:
        bodies = [(await client.request(method, "/x")).content for _ in range(2)]
    return bodies, connections


async def test_bytes_after_a_complete_chunked_reply_keep_its_connection_out_of_the_pool() -> None:
    assert await get_twice(CHUNKED_HEAD + b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n") == ([b"ok", b"ok"], 2)


async def test_a_clean_chunked_reply_gives_its_connection_back() -> None:
    assert await get_twice(CHUNKED_HEAD + b"2\r\nok\r\n0\r\n\r\n") == ([b"ok", b"ok"], 1)


async def test_a_reply_to_head_has_no_body_whatever_its_content_length() -> None:
    assert await get_twice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD") == ([b"", b""], 1)


def dripping(data: bytes) -> Reply:
    async def reply(writer: asyncio.StreamWriter) -> bool:
        for index in range(len(data)):
            writer.write(data[index:index + 1])
            await writer.drain()
            await asyncio.sleep(0)
        return True
    return reply


@pytest.mark.parametrize("data", [
    CHUNKED_HEAD + b"2\r\nok\r\n3;x=1\r\n!!!\r\n0\r\nTrailer: t\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\r\nContent-Length: 5\r\n\r\nok!!!",
], ids=["chunked", "interim"])
async def test_a_reply_dripping_in_one_byte_at_a_time_reads_as_one_arriving_whole(data: bytes) -> None:
    server = await hostile(lambda _server: dripping(data))
    async with httpx.AsyncClient(base_url=server.url, transport=KeepAliveTransport(), timeout=5) as client:
        reply = await client.get("/x")
    assert (reply.status_code, reply.text) == (200, "ok!!!")


async def test_a_cut_chunked_body_is_a_protocol_error() -> None:
    def make(server: Hostile) -> Reply:
        async def reply(writer: asyncio.StreamWriter) -> bool:
            server.write(writer, CHUNKED_HEAD + b"10\r\nonly-part")
            await writer.drain()
            return False
        return reply

    server = await hostile(make)
    async with httpx.AsyncClient(base_url=server.url, transport=KeepAliveTransport(), timeout=2) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="complete reply"):
            await client.get("/x")
