"""``reconcile watch`` in the test's own process and on a clock the test moves (``ManualClock``): the
resync and retry intervals are jumped, not waited out, while passes do their real work (HTTP to the sandbox,
a real store)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from reconciler.daemon.clock import ManualClock
from reconciler.daemon.service import WatchService, WatchSettings
from reconciler.engine.reconcile import PassRequest
from reconciler.planner import PlanOptions
from reconciler.secrets import Redactor
from tests.daemon.daemon_process import free_port

RESYNC_S = 600.0


async def until(check: Callable[[], object], *, timeout: float = 30.0) -> None:
    """Real time, for what a pass does over HTTP: poll ``check`` without blocking the daemon's loop."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        await asyncio.sleep(0.02)


async def settled(service: WatchService, seconds: float = 0.3) -> int:
    """The pass count after giving a pass that should not happen the time to start."""
    await asyncio.sleep(seconds)
    return service.passes


async def resync(service: WatchService, clock: ManualClock) -> None:
    """Jump to the next resync and wait for the pass it triggers to finish."""
    passes = service.passes
    await clock.advance(service.settings.resync_seconds)
    await until(lambda: service.passes > passes)


@asynccontextmanager
async def watching(decl: Path, clock: ManualClock, *, state_url: str, environ: dict[str, str],
                   risk_duplicate_sms: bool = False, fates_every: float = 0.0) -> AsyncIterator[WatchService]:
    """The daemon as ``reconcile watch`` builds it, on ``clock``, after its first pass; stopped at the end."""
    request = replace(PassRequest(paths=()), options=PlanOptions(risk_duplicate_sms=risk_duplicate_sms))
    settings = WatchSettings(paths=(decl,), root=None, state_url=state_url, listen=f"127.0.0.1:{free_port()}",
                             resync_seconds=RESYNC_S, debounce_ms=50, fates_every=fates_every, request=request)
    service = WatchService(settings, environ=environ, redactor=Redactor(), clock=clock)
    running = asyncio.create_task(service.run())
    try:
        await until(lambda: service.passes >= 1 or running.done())
        assert not running.done(), running.result()
        yield service
    finally:
        service.stop.set()
        service.trigger.fire("stop")
        assert await asyncio.wait_for(running, timeout=30) == 0
