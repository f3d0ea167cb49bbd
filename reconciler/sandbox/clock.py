"""Simulated time for the sandbox: real time plus an offset that ``POST /_sandbox/clock`` advances.

Simulators never call ``time.time()``: they ask their ``SimClock``, so a test can move a campaign's
lifecycle forward by hours in one request and get the same result every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SimClock:
    """Epoch seconds as the simulators see them. Thread-safe: servers run in their own threads."""

    def __init__(self, *, start: float | None = None, real: Callable[[], float] = time.time) -> None:
        self._real = real
        self._offset = 0.0 if start is None else start - real()
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._real() + self._offset

    def advance(self, seconds: float) -> float:
        """Move simulated time forward (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self._real() + self._offset

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def set_offset(self, offset: float) -> None:
        """Restore a persisted offset (``--state FILE``)."""
        with self._lock:
            self._offset = max(offset, self._offset)
