"""The daemon's schedule on an injected clock (``reconciler.daemon.clock``): the resync fires once per
interval of the clock's time, never early, a retry once when due, and a stop ends a wait at once. Time is
moved by hand, so these take milliseconds and cannot fire late or early by scheduling jitter."""

from __future__ import annotations

import asyncio

from reconciler.daemon.clock import ManualClock, sleep_unless
from reconciler.daemon.triggers import PassTrigger, every, fire_after


class RecordingTrigger(PassTrigger):
    """The daemon's trigger, which also keeps every reason it was fired with, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.fired: list[str] = []

    def fire(self, reason: str) -> None:
        self.fired.append(reason)
        super().fire(reason)


async def test_the_resync_fires_once_per_interval_and_never_early() -> None:
    clock, trigger, stop = ManualClock(), RecordingTrigger(), asyncio.Event()
    task = asyncio.create_task(every(60, "resync", trigger, stop, clock=clock))
    await clock.wait_for_sleepers()
    await clock.advance(59.9)
    assert trigger.fired == []
    await clock.advance(0.1)
    assert trigger.fired == ["resync"]
    await clock.advance(59.9)
    assert trigger.fired == ["resync"]
    await clock.advance(0.1)
    assert trigger.fired == ["resync", "resync"]
    await clock.advance(180)
    assert trigger.fired == ["resync"] * 5
    stop.set()
    await asyncio.wait_for(task, timeout=1)


async def test_a_stop_ends_the_wait_at_once_without_firing() -> None:
    clock, trigger, stop = ManualClock(), RecordingTrigger(), asyncio.Event()
    task = asyncio.create_task(every(3600, "resync", trigger, stop, clock=clock))
    await clock.wait_for_sleepers()
    stop.set()
    await asyncio.wait_for(task, timeout=1)  # the hour of clock time never passed
    assert trigger.fired == [] and clock.sleeping == 0


async def test_a_retry_fires_once_when_due_and_a_cancelled_one_never() -> None:
    clock, trigger = ManualClock(), RecordingTrigger()
    due = asyncio.create_task(fire_after(5, "retry", trigger, clock=clock))
    called_off = asyncio.create_task(fire_after(3, "called-off", trigger, clock=clock))
    await clock.wait_for_sleepers(2)
    called_off.cancel()
    await clock.advance(4.99)
    assert trigger.fired == []
    await clock.advance(0.01)
    assert trigger.fired == ["retry"] and due.done()
    await clock.advance(100)
    assert trigger.fired == ["retry"]


async def test_sleepers_wake_in_order_each_at_its_own_time() -> None:
    clock, woke = ManualClock(), []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((seconds, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(s)) for s in (30, 10, 20)]
    await clock.wait_for_sleepers(3)
    started = clock.now()
    await clock.advance(25)
    assert woke == [(10, 10.0), (20, 20.0)] and clock.monotonic() == 25
    assert (clock.now() - started).total_seconds() == 25
    await clock.advance(5)
    assert woke[-1] == (30, 30.0)
    await asyncio.gather(*tasks)


async def test_sleep_unless_says_whether_the_stop_came_first() -> None:
    clock, stop = ManualClock(), asyncio.Event()
    waiting = asyncio.create_task(sleep_unless(clock, 10, stop))
    await clock.wait_for_sleepers()
    await clock.advance(10)
    assert await waiting is False
    waiting = asyncio.create_task(sleep_unless(clock, 10, stop))
    await clock.wait_for_sleepers()
    stop.set()
    assert await asyncio.wait_for(waiting, timeout=1) is True
