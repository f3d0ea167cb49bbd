"""Logging set-up: structlog events with fields, JSON when not on a terminal, secrets scrubbed.

The redaction processor runs last before rendering, over every string in the event, so a secret that
slipped into an error message or a field never reaches the output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from reconciler.secrets import Redactor


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


def configure_logging(*, redactor: Redactor, level: str = "info", stream: TextIO | None = None,
                      json: bool | None = None) -> None:
    """Configure structlog for the process (the CLI and the daemon call this once at start)."""
    out = stream or sys.stderr
    as_json = (not out.isatty()) if json is None else json
    renderer: structlog.types.Processor = (structlog.processors.JSONRenderer() if as_json
                                           else structlog.dev.ConsoleRenderer(colors=out.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redaction_processor(redactor),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
