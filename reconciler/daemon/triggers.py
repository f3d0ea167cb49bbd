"""Triggers feeding the daemon's single-flight loop. Any number of triggers while a pass runs collapse
into exactly one more pass; the reasons are kept so logs and metrics can say why a pass ran.

The file watcher ignores the daemon's own files: a SQLite state store kept inside the watched tree
(``--state sqlite:///campaigns.d/.state.db``) is written by every pass, and its journal (``-wal``,
``-shm``, ``-journal``) and lock file with it; were they watched, each pass would trigger the next.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import structlog
from watchfiles import Change, DefaultFilter, awatch

from reconciler.daemon.clock import SYSTEM_CLOCK, Clock, sleep_unless

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


STORE_SUFFIXES = ("", "-wal", "-shm", "-journal", ".lock")
_ignored: set[str] = set()


def store_files(state_url: str, *, base_dir: Path = Path(".")) -> tuple[Path, ...]:
    """The files a SQLite state store (``sqlite:///PATH`` or a plain path) and the daemon's lock next to it
    write; none for a PostgreSQL store."""
    if "://" in state_url and not state_url.startswith("sqlite:///"):
        return ()
    path = Path(state_url.removeprefix("sqlite:///"))
    path = path if path.is_absolute() else base_dir / path
    return tuple(path.with_name(path.name + suffix) for suffix in STORE_SUFFIXES)


def ignore_files(paths: Iterable[Path]) -> None:
    """Files the watcher of this process never reports (``reconcile watch`` registers its state store)."""
    _ignored.update(_real(p) for p in paths)


def _real(path: Path | str) -> str:
    return os.path.realpath(os.path.abspath(path))


class DeclarationFilter(DefaultFilter):
    """watchfiles' default filter (editor swap files, ``.git``, caches) and the daemon's own files."""

    def __init__(self, ignore: Iterable[Path] = ()) -> None:
        super().__init__()
        self.ignored = frozenset(_ignored | {_real(p) for p in ignore})

    def __call__(self, change: Change, path: str) -> bool:
        return super().__call__(change, path) and _real(path) not in self.ignored


async def watch_files(paths: Sequence[Path], trigger: PassTrigger, stop: asyncio.Event, *,
                      debounce_ms: int = 200, ignore: Iterable[Path] = ()) -> None:
    """File changes under ``paths`` (an editor's save or a ``git pull`` is one batch, thanks to the debounce),
    except in ``ignore`` and the files registered with ``ignore_files``."""
    existing = [p for p in paths if p.exists()]
    if not existing:
        return
    async for changes in awatch(*existing, debounce=debounce_ms, step=20, stop_event=stop, recursive=True,
                                watch_filter=DeclarationFilter(ignore)):
        names = sorted({Path(p).name for _, p in changes})
        log.info("trigger.files", changed=names[:10], count=len(changes))
        trigger.fire("files")


async def every(seconds: float, reason: str, trigger: PassTrigger, stop: asyncio.Event, *,
                clock: Clock = SYSTEM_CLOCK) -> None:
    """Fire ``reason`` every ``seconds`` of ``clock`` until ``stop`` (the resync that corrects drift, git
    polling)."""
    while not await sleep_unless(clock, seconds, stop):
        trigger.fire(reason)


async def fire_after(seconds: float, reason: str, trigger: PassTrigger, *, clock: Clock = SYSTEM_CLOCK) -> None:
    """Fire ``reason`` once, ``seconds`` of ``clock`` from now (the earliest retry of a backed-off resource);
    cancel the task to call it off."""
    await clock.sleep(seconds)
    trigger.fire(reason)
