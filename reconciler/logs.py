"""Logging set-up: structlog events with fields, JSON when not on a terminal, secrets scrubbed.

The redaction processor runs last before rendering, over every string in the event, so a secret that
slipped into an error message or a field never reaches the output.

Repeats are rate-limited (``RepeatLimiter``): an event identical to one written less than
``repeat_window_s`` ago (same level, name and fields; for an exception, the same type and message) is
dropped and counted, and the next one written after the window carries ``suppressed``: how many were
dropped since. A fault that recurs on every request (a flood of bad requests, a full descriptor table)
thus costs a few lines a minute instead of megabytes. With ``capture_stdlib`` (the daemon), records of the
standard ``logging`` module at WARNING and above (uvicorn's and asyncio's errors) go through the same
processors: redacted, rate-limited, rendered like every other event.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

from reconciler.secrets import Redactor

REPEAT_WINDOW_S = 10.0
REPEAT_MEMORY = 1024  # distinct events remembered; the oldest is forgotten first


def redaction_processor(redactor: Redactor) -> structlog.types.Processor:
    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return redactor.scrub(value)
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [scrub(v) for v in value]
        return value

    def process(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        return {key: scrub(value) for key, value in event.items()}

    return process


def _exception_key(value: Any) -> str:
    """An exception as "Type: message" (a traceback object differs on every raise, the fault does not)."""
    exc: Any = value
    if value is True:
        exc = sys.exc_info()[1]
    elif isinstance(value, tuple) and len(value) == 3:
        exc = value[1]
    if isinstance(exc, BaseException):
        return f"{type(exc).__qualname__}: {exc}"
    return repr(value)


class RepeatLimiter:
    """A structlog processor that drops repeats of an identical event within ``window_s`` and reports how
    many were dropped on the next one it lets through (``suppressed``). Thread-safe."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S, *, clock: Callable[[], float] = time.monotonic,
                 memory: int = REPEAT_MEMORY) -> None:
        self.window_s = window_s
        self._clock = clock
        self._memory = memory
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, list[float | int]] = OrderedDict()  # key -> [written at, dropped since]

    @staticmethod
    def key(method: str, event: MutableMapping[str, Any]) -> str:
        parts = [method]
        for name in sorted(event):
            if name == "timestamp":
                continue
            value = event[name]
            parts.append(f"{name}={_exception_key(value) if name in ('exc_info', 'exception') else repr(value)}")
        return "\x00".join(parts)

    def __call__(self, _: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if self.window_s <= 0:
            return event
        key = self.key(method, event)
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.window_s:
                entry[1] += 1
                raise structlog.DropEvent
            if entry is not None and entry[1]:
                event["suppressed"] = int(entry[1])
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > self._memory:
                self._seen.popitem(last=False)
        return event


class StdlibBridge(logging.Handler):
    """Hands records of the standard ``logging`` module to structlog (same processors, same output)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger = structlog.get_logger(record.name)
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                fields["exc_info"] = record.exc_info
            level = record.levelname.lower()
            emit = getattr(logger, level if level in ("debug", "info", "warning", "error", "critical") else "error")
            emit(record.getMessage(), **fields)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _capture_stdlib(level: int) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StdlibBridge)]:
        root.removeHandler(handler)
    bridge = StdlibBridge(level=max(level, logging.WARNING))
    root.addHandler(bridge)
    if root.level > bridge.level or root.level == logging.NOTSET:
        root.setLevel(bridge.level)


def configure_logging(*, redactor: Redactor, level: str = "info", stream: TextIO | None = None,
                      json: bool | None = None, repeat_window_s: float = REPEAT_WINDOW_S,
                      capture_stdlib: bool = False) -> None:
    """Configure structlog for the process (the CLI and the daemon call this once at start)."""
    out = stream or sys.stderr
    as_json = (not out.isatty()) if json is None else json
    renderer: structlog.types.Processor = (structlog.processors.JSONRenderer() if as_json
                                           else structlog.dev.ConsoleRenderer(colors=out.isatty()))
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            RepeatLimiter(repeat_window_s),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redaction_processor(redactor),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    if capture_stdlib:
        _capture_stdlib(numeric)
