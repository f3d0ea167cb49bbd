"""Triggers feeding the daemon's single-flight loop. Any number of triggers while a pass runs collapse
into exactly one more pass; the reasons are kept so logs and metrics can say why a pass ran."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import structlog
from watchfiles import awatch

log = structlog.get_logger("reconciler.daemon")


class PassTrigger:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._reasons: set[str] = set()

    def fire(self, reason: str) -> None:
        self._reasons.add(reason)
        self._event.set()

    async def wait(self) -> set[str]:
        """Wait for at least one trigger; return (and clear) every reason collected so far."""
        await self._event.wait()
        self._event.clear()
        reasons, self._reasons = self._reasons, set()
        return reasons


async def watch_files(paths: Sequence[Path], trigger: PassTrigger, stop: asyncio.Event, *,
                      debounce_ms: int = 200) -> None:
    """File changes under ``paths`` (an editor's save or a ``git pull`` is one batch, thanks to the debounce)."""
    existing = [p for p in paths if p.exists()]
    if not existing:
        return
    async for changes in awatch(*existing, debounce=debounce_ms, step=20, stop_event=stop, recursive=True):
        names = sorted({Path(p).name for _, p in changes})
        log.info("trigger.files", changed=names[:10], count=len(changes))
        trigger.fire("files")


async def every(seconds: float, reason: str, trigger: PassTrigger, stop: asyncio.Event) -> None:
    """Fire ``reason`` every ``seconds`` until ``stop`` (the resync that corrects drift, git polling)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            trigger.fire(reason)
