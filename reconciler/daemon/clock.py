"""The daemon's time, injected: when to resync, when a backed-off resource is due, how long a standby waits
between looks at the lease. ``SystemClock`` is the real one; ``ManualClock`` moves only when told, so a test
of "drift is corrected at the next resync" or "a failed action is retried after its backoff" advances
time by the interval instead of waiting for it (and nothing fires early or late by scheduling jitter).

What a pass does (HTTP requests, the writer lease's expiry) keeps to real time: a backend does not wait
for a test's clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time for what is shown and stored, monotonic time for intervals, and a sleep on the latter."""

    def now(self) -> datetime:
        """The wall time, timezone-aware (UTC)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go back (intervals, deadlines)."""

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time."""


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


async def sleep_unless(clock: Clock, seconds: float, stop: asyncio.Event) -> bool:
    """Sleep ``seconds`` by ``clock`` unless ``stop`` is set first; True when it was (a shutdown must not
    wait out an interval)."""
    if stop.is_set():
        return True
    sleeping = asyncio.ensure_future(clock.sleep(seconds))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeping, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (sleeping, stopping):
            waiter.cancel()
        await asyncio.gather(sleeping, stopping, return_exceptions=True)
    return stop.is_set()


class ManualClock:
    """A clock that moves only when ``advance`` is awaited: sleepers due by then wake in order, each seeing
    the time it was due at. For tests and simulations of the daemon's schedule."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start if start is not None else datetime.now(UTC)  # plans see a realistic date
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._new_sleeper = asyncio.Event()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        due: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), due))
        self._new_sleeper.set()
        await due

    @property
    def sleeping(self) -> int:
        """How many sleeps are waiting for time to move."""
        return sum(1 for _, _, due in self._sleepers if not due.done())

    def next_due(self) -> float | None:
        """Seconds until the earliest waiting sleep ends (None: nobody sleeps)."""
        pending = [when for when, _, due in self._sleepers if not due.done()]
        return min(pending) - self._elapsed if pending else None

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Until at least ``count`` sleeps are waiting (the code under test has reached its next wait)."""
        while self.sleeping < count:
            self._new_sleeper.clear()
            await self._new_sleeper.wait()

    async def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, waking every sleep due meanwhile at its own time, and let what woke
        run up to its next wait."""
        target = self._elapsed + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, due = heapq.heappop(self._sleepers)
            if due.done():  # cancelled meanwhile
                continue
            self._elapsed = max(self._elapsed, when)
            due.set_result(None)
            await _let_others_run()
        self._elapsed = target
        await _let_others_run()


async def _let_others_run(rounds: int = 10) -> None:
    """A few turns of the event loop: woken tasks run to their next ``await`` on something not ready."""
    for _ in range(rounds):
        await asyncio.sleep(0)
