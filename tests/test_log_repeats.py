"""Repeated identical log events are rate-limited: a fault that recurs on every request (once: 195 MB of
tracebacks in a minute) is written once per window, and the next line after the window says how many
were dropped. The standard ``logging`` records the daemon captures (uvicorn's, asyncio's) are limited too."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from reconciler.logs import RepeatLimiter, StdlibBridge, configure_logging
from reconciler.secrets import Redactor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def events(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture
def logged() -> Iterator[tuple[io.StringIO, Clock]]:
    out, clock = io.StringIO(), Clock()
    configure_logging(redactor=Redactor(), level="debug", stream=out, json=True)
    processors = structlog.get_config()["processors"]
    index = next(n for n, p in enumerate(processors) if isinstance(p, RepeatLimiter))
    processors[index] = RepeatLimiter(10.0, clock=clock)
    structlog.configure(processors=processors)
    yield out, clock


def test_identical_events_within_the_window_are_written_once_then_counted(logged) -> None:  # type: ignore[no-untyped-def]
    out, clock = logged
    log = structlog.get_logger("t")
    for _ in range(1000):
        log.error("state.unavailable", error="cannot open state store", path="/x/state.db")
    assert len(events(out)) == 1
    clock.now += 10.5
    log.error("state.unavailable", error="cannot open state store", path="/x/state.db")
    written = events(out)
    assert len(written) == 2 and "suppressed" not in written[0] and written[1]["suppressed"] == 999
    log.error("state.unavailable", error="cannot open state store", path="/x/state.db")
    assert len(events(out)) == 2  # a new window began with the second line


def test_events_that_differ_in_any_field_or_level_are_all_written(logged) -> None:  # type: ignore[no-untyped-def]
    out, _ = logged
    log = structlog.get_logger("t")
    for n in range(50):
        log.info("pass.done", seconds=n)
    log.warning("pass.done", seconds=0)
    log.info("pass.skipped", seconds=0)
    assert len(events(out)) == 52


def test_the_same_exception_raised_again_is_a_repeat(logged) -> None:  # type: ignore[no-untyped-def]
    out, _ = logged
    log = structlog.get_logger("t")
    for _ in range(200):
        try:
            b"\xff".decode("utf-8")
        except UnicodeDecodeError:
            log.exception("request.failed")
    for _ in range(3):
        try:
            raise TypeError("another fault")
        except TypeError:
            log.exception("request.failed")
    written = events(out)
    assert len(written) == 2
    assert "UnicodeDecodeError" in written[0]["exception"] and "TypeError" in written[1]["exception"]


def test_standard_logging_records_are_rendered_and_limited_when_captured() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    # as in the daemon, where uvicorn's loggers are left unconfigured (an in-process sandbox of another test
    # may have given them handlers of their own that do not propagate)
    uvicorn = logging.getLogger("uvicorn")
    saved = uvicorn.propagate, list(uvicorn.handlers)
    uvicorn.propagate, uvicorn.handlers = True, []
    try:
        configure_logging(redactor=Redactor(), level="info", stream=out, json=True, capture_stdlib=True)
        uvicorn_log = logging.getLogger("uvicorn.error")
        for _ in range(500):
            try:
                raise TypeError("unsupported operand types(s) or combination of types: 'str' and 'str'")
            except TypeError as exc:
                uvicorn_log.error("Exception in ASGI application\n", exc_info=exc)
        logging.getLogger("asyncio").error("socket.accept() out of system resource")
        logging.getLogger("httpx").info("HTTP Request: GET http://x/ 200")  # below WARNING: not captured
        written = events(out)
        assert [(e["logger"], e["level"]) for e in written] == [("uvicorn.error", "error"), ("asyncio", "error")]
        assert "Traceback" in written[0]["exception"] and "TypeError" in written[0]["exception"]
    finally:
        for handler in [h for h in root.handlers if isinstance(h, StdlibBridge)]:
            root.removeHandler(handler)
        uvicorn.propagate, uvicorn.handlers = saved[0], saved[1]
