"""How a reply is framed, read by llhttp (the C parser of Node.js, through ``httptools``): the status line
and headers of a reply head, then the data of a chunked body. No I/O here: ``KeepAliveTransport`` reads
the bytes and hands them over.

llhttp's strict mode is our rule almost everywhere: ``Content-Length`` is ASCII digits only, never
repeated with another value, never with ``Transfer-Encoding``; chunk sizes are hex digits only and each
chunk ends in CRLF; a header line has a colon after a token name; lines end in CRLF. Where it differs,
the difference is handled here, each for a stated reason:

- laxer than our rules, so checked after it: a ``Transfer-Encoding`` other than exactly ``chunked``
  (llhttp reads ``gzip, chunked`` as chunked and ``gzip`` as "until close", leaving a coding nobody
  decodes), a version other than 1.0 or 1.1 (it takes ``HTTP/2.0`` and ``HTTP/0.9``), and control
  characters in the reason phrase (an ``ESC`` there would reach error messages and terminals);
- stricter than a client may be, so the head is normalised and parsed once more, only after llhttp
  refused it: RFC 9112 section 5.2 has a user agent replace obs-fold line folding with a space, and RFC
  9110 section 8.6 lets a recipient take repeated identical ``Content-Length`` headers as one;
- optional whitespace between a chunk size and its extensions (``2 ;ext``) is allowed, as RFC 9112's
  ``BWS`` allows it (``lenient_spaces_after_chunk_size``; ``2 3`` is still refused).

Every error is a ``FramingError`` (a ``ValueError``), which the transport raises as httpx's
``RemoteProtocolError``; going over a bound is a ``ReplyLimitError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httptools

from reconciler.errors import ReplyLimitError

NO_BODY_STATUSES = frozenset({204, 304})
NONE, LENGTH, CHUNKED, CLOSE = "none", "length", "chunked", "close"
VERSIONS = frozenset({"1.0", "1.1"})
FRAMING_BYTES_PER_CHUNK = 32  # a size line of up to 16 hex digits and its CRLF, the CRLF after the data, and room
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_FOLD = re.compile(rb"\r\n[ \t]+")


class FramingError(ValueError):
    """The reply is not framed as HTTP/1.1 allows (or as we accept): a protocol error."""


class _Events:
    """What llhttp reports about one reply (httptools calls these methods while it parses)."""

    __slots__ = ("parser", "reason", "headers", "lengths", "codings", "version", "keep_alive", "head_done",
                 "complete", "stray", "body", "chunks", "trailers")

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.lengths: list[bytes] = []
        self.codings: list[bytes] = []
        self.version = ""
        self.keep_alive = self.head_done = self.complete = self.stray = False
        self.body: list[bytes] = []
        self.chunks = self.trailers = 0

    def on_message_begin(self) -> None:
        if self.complete:  # bytes after the end of the reply: the connection is not ours to reuse
            self.stray = True

    def on_status(self, reason: bytes) -> None:
        self.reason += reason  # in pieces when the head came in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_done:
            self.trailers += 1  # trailers of a chunked body: counted, not kept
            return
        value = value.rstrip(b" \t")  # llhttp drops the leading optional whitespace, not the trailing
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length":
            self.lengths.append(value)
        elif lowered == b"transfer-encoding":
            self.codings.append(value)

    def on_headers_complete(self) -> None:
        self.head_done = True
        parser = self.parser
        if parser is not None:  # asked now: once the reply is complete llhttp no longer knows
            self.keep_alive = parser.should_keep_alive()
            self.version = parser.get_http_version()

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_chunk_header(self) -> None:
        self.chunks += 1

    def on_message_complete(self) -> None:
        self.complete = True


class ChunkedBody:
    """The data of a chunked body, from the bytes that carry it (fed in the order they arrive), within
    bounds: the number of chunks, of trailer lines, and the bytes that are not data (size lines,
    extensions, trailers: ``max_framing_bytes`` plus ``FRAMING_BYTES_PER_CHUNK`` a chunk)."""

    def __init__(self, parser: httptools.HttpResponseParser, events: _Events, *, max_chunks: int,
                 max_trailer_lines: int, max_framing_bytes: int) -> None:
        self._parser = parser
        self._events = events
        self._max_chunks = max_chunks
        self._max_trailer_lines = max_trailer_lines
        self._max_framing_bytes = max_framing_bytes
        self._framing_bytes = 0

    @property
    def complete(self) -> bool:
        return self._events.complete

    @property
    def stray(self) -> bool:
        """Whether bytes came after the end of the body (the connection must then be closed)."""
        return self._events.stray

    def feed(self, data: bytes) -> list[bytes]:
        """The data pieces carried by ``data``."""
        events = self._events
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not events.complete:
                raise FramingError(str(exc)) from exc
            events.stray = True  # llhttp refused what followed a complete body
        pieces, events.body = events.body, []
        self._framing_bytes += len(data) - sum(map(len, pieces))
        self._check(events)
        return pieces

    def _check(self, events: _Events) -> None:
        if events.chunks > self._max_chunks + 1:  # the last, empty chunk is one too
            raise ReplyLimitError(f"reply body in more than {self._max_chunks} chunks "
                                  "(one per 256 bytes of limits.maxBodyBytes)")
        if events.trailers > self._max_trailer_lines:
            raise ReplyLimitError(f"reply has more than {self._max_trailer_lines} trailer lines "
                                  "(limits.maxHeaderLines)")
        allowed = self._max_framing_bytes + FRAMING_BYTES_PER_CHUNK * events.chunks
        if self._framing_bytes > allowed:
            raise ReplyLimitError(f"reply chunk sizes, extensions and trailers over {allowed} bytes "
                                  "(limits.maxHeaderBytes)")


@dataclass(slots=True)
class ReplyHead:
    """A parsed reply head and how its body is framed (``chunked``: the body's reader)."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    framing: str
    length: int = 0
    chunked: ChunkedBody | None = None


def parse_head(raw: bytes, method: str, *, max_chunks: int, max_header_lines: int,
               max_header_bytes: int) -> ReplyHead:
    """The reply head ``raw`` (status line to the empty line, included) of a reply to ``method``;
    ``FramingError`` if it is malformed or ambiguous. The ``max_*`` bound a chunked body's framing."""
    parser, events = _parsed(raw)
    status = parser.get_status_code()
    if events.version not in VERSIONS:
        raise FramingError(f"not an HTTP/1.x status line: HTTP/{events.version}")
    if _CONTROL.search(events.reason):
        raise FramingError(f"control characters in the reason phrase: {events.reason[:40]!r}")
    codings = b",".join(events.codings)
    if codings and codings.replace(b" ", b"").replace(b"\t", b"").lower() != b"chunked":
        raise FramingError(f"unsupported Transfer-Encoding: {codings[:40]!r}")
    head = ReplyHead(status, events.reason, events.headers, events.keep_alive, NONE)
    if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
        return head
    if codings:
        head.framing = CHUNKED
        parser.set_dangerous_leniencies(lenient_spaces_after_chunk_size=True)  # RFC 9112's BWS: ``2 ;ext``
        head.chunked = ChunkedBody(parser, events, max_chunks=max_chunks, max_trailer_lines=max_header_lines,
                                   max_framing_bytes=max_header_bytes)
    elif events.lengths:
        head.length = int(events.lengths[0])  # digits only: llhttp checked them
        head.framing = LENGTH if head.length else NONE
    else:
        head.framing = CLOSE
        head.keep_alive = False
    return head


def _parsed(raw: bytes) -> tuple[httptools.HttpResponseParser, _Events]:
    try:
        return _fed(raw)
    except httptools.HttpParserError as exc:
        normalised = _normalised(raw)
        if normalised == raw:
            raise FramingError(str(exc)) from exc
    try:
        return _fed(normalised)
    except httptools.HttpParserError as exc:
        raise FramingError(str(exc)) from exc


def _fed(raw: bytes) -> tuple[httptools.HttpResponseParser, _Events]:
    events = _Events()
    parser = httptools.HttpResponseParser(events)
    events.parser = parser
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade as exc:
        raise FramingError("the server switched protocols, which was not asked for") from exc
    finally:
        events.parser = None  # no reference cycle; nothing after the head needs it
    if not events.head_done:
        raise FramingError("the reply head does not end")
    return parser, events


def _normalised(raw: bytes) -> bytes:
    """``raw`` with obs-fold replaced by a space and repeated identical ``Content-Length`` lines dropped
    (the two things llhttp refuses that a client must or may accept); ``raw`` itself when neither applies
    or when the values differ (llhttp then refuses it again)."""
    status_end = raw.find(b"\r\n")
    if raw[status_end + 2:status_end + 3] in (b" ", b"\t"):
        return raw  # a folded line with no header before it
    unfolded = raw[:status_end] + _FOLD.sub(b" ", raw[status_end:])
    lines = unfolded.split(b"\r\n")
    lengths = [index for index, line in enumerate(lines) if line[:15].lower() == b"content-length:"]
    if len({lines[index][15:].strip(b" \t") for index in lengths}) == 1:
        for index in reversed(lengths[1:]):
            del lines[index]
    return b"\r\n".join(lines)
