"""Reading package uploads for the IoT campaign manager sandbox without holding the file.

Both upload forms are read chunk by chunk from ``request.stream()``: the file part is hashed and
counted as it passes, and nothing but its size and SHA-256 is kept. A multipart request over the
size limit is still read to its end (and thrown away), so the client receives the 413 instead of a
connection reset in the middle of its upload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from reconciler.sandbox.iot_campaigns.model import ApiError

MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True)
class ReceivedFile:
    """What an upload delivered: the file's size and hash, its name and description."""

    name: str
    description: str
    size: int
    sha256: str


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    field_name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


class _MultipartCollector:
    """python-multipart callbacks: hash the ``file`` part, keep the small text fields."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self.saw_file = False
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._part = _Part()

    def _header_end(self) -> None:
        name = self._header_name.decode("latin-1").strip().lower()
        self._part.headers[name] = self._header_value.decode("utf-8", "replace").strip()
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._part.headers.get("content-disposition", ""))
        self._part.field_name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._part.filename = None if filename is None else filename.decode("utf-8", "replace")
        if self._part.field_name == "file":
            self.saw_file = True
            self.filename = self._part.filename

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.field_name == "file":
            self.digest.update(data[start:end])
            self.size += end - start
        elif len(self._part.value) < MAX_FIELD_BYTES:
            self._part.value.extend(data[start:end])

    def _part_end(self) -> None:
        if self._part.field_name and self._part.field_name != "file":
            self.fields[self._part.field_name] = self._part.value.decode("utf-8", "replace")


async def read_multipart_upload(request: Request, *, limit: int) -> ReceivedFile:
    """The ``file`` part (its filename is the program name) and the optional ``description``."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(400, "expected multipart/form-data with a boundary")
    collector = _MultipartCollector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    except FormParserError as exc:
        raise ApiError(400, f"unreadable multipart body: {exc}") from exc
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received <= limit:
                parser.write(chunk)
        if received <= limit:
            parser.finalize()
    except FormParserError as exc:
        raise ApiError(400, f"unreadable multipart body: {exc}") from exc
    if received > limit:
        raise ApiError(413, f"request of {received} bytes exceeds the upload limit of {limit} bytes")
    if not collector.saw_file:
        raise ApiError(400, "the multipart field 'file' is required")
    if not collector.filename:
        raise ApiError(400, "the uploaded file needs a filename (it becomes the package name)")
    return ReceivedFile(collector.filename, collector.fields.get("description", ""), collector.size,
                        collector.digest.hexdigest())


async def read_streaming_upload(request: Request) -> ReceivedFile:
    """A non-multipart body holding the file; ``name`` and ``description`` are query parameters."""
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    name = request.query_params.get("name", "")
    if not name:
        raise ApiError(400, "the query parameter 'name' is required for a streaming upload")
    return ReceivedFile(name, request.query_params.get("description", ""), size, digest.hexdigest())
