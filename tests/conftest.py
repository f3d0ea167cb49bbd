"""Shared test set-up: every test starts with structlog's default configuration (the CLI configures
logging for its process, which must not leak from one test into the next)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
