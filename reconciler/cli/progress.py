"""How an apply advances, on stderr (never mixed into the plan or the report on stdout): on a terminal a
live display of actions and SMS messages with rate and time left; without one (CI, a pipe) one line every
``LINE_EVERY`` seconds (``RECONCILE_PROGRESS_SECONDS`` sets another), so a long send shows it is alive
without flooding a log."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from reconciler.engine.execute import Outcome, OutcomeStatus

LINE_EVERY = 10.0
EVERY_ENV = "RECONCILE_PROGRESS_SECONDS"  # another interval for the line without a terminal


class ApplyProgress:
    """Totals and counts of one apply; ``line()`` says where it stands."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.actions_total = self.actions_done = self.not_done = 0
        self.messages_total = self.messages_sent = 0
        self._messages_started: float | None = None
        self.changed = threading.Event()

    def planned(self, actions: int, messages: int) -> None:
        self.actions_total, self.messages_total = actions, messages
        self.changed.set()

    def done(self, outcome: Outcome) -> None:
        self.actions_done += 1
        if outcome.status is not OutcomeStatus.SUCCEEDED:
            self.not_done += 1
        self.changed.set()

    def sent(self, messages: int) -> None:
        if self._messages_started is None:
            self._messages_started = self.clock()
        self.messages_sent += messages
        self.changed.set()

    def rate(self) -> float:
        """SMS handed over per second since the first one."""
        if self._messages_started is None:
            return 0.0
        return self.messages_sent / max(self.clock() - self._messages_started, 1e-3)

    def eta(self) -> float | None:
        rate, left = self.rate(), self.messages_total - self.messages_sent
        return left / rate if rate > 0 and left > 0 else None

    def line(self) -> str:
        parts = [f"{self.actions_done}/{self.actions_total} actions"
                 + (f" ({self.not_done} not done)" if self.not_done else "")]
        if self.messages_total:
            parts.append(f"{self.messages_sent:,}/{self.messages_total:,} SMS at {self.rate():,.0f}/s")
            eta = self.eta()
            if eta is not None:
                parts.append(f"about {eta:,.0f} s left")
        return f"progress: {', '.join(parts)}; {self.clock() - self.started:,.0f} s elapsed"


@contextmanager
def progress_for(*, enabled: bool, stream: TextIO | None = None, every: float = LINE_EVERY
                 ) -> Iterator[ApplyProgress | None]:
    """An ``ApplyProgress`` shown on ``stream`` (stderr) while the block runs; None when disabled."""
    if not enabled:
        yield None
        return
    out = stream or sys.stderr
    progress = ApplyProgress()
    every = _seconds(os.environ.get(EVERY_ENV), every)
    if out.isatty():
        with _live(progress, out):
            yield progress
        return
    stop = threading.Event()

    def every_line() -> None:
        while not stop.wait(every):
            print(progress.line(), file=out, flush=True)

    printer = threading.Thread(target=every_line, name="progress", daemon=True)
    printer.start()
    try:
        yield progress
    finally:
        stop.set()
        printer.join(timeout=1)


def _seconds(text: str | None, default: float) -> float:
    try:
        value = float(text) if text else default
    except ValueError:
        return default
    return value if 0.1 <= value <= 3600 else default


@contextmanager
def _live(progress: ApplyProgress, out: TextIO) -> Iterator[None]:
    from rich.console import Console  # a tenth of a second to import: only when drawn on a terminal
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(file=out)
    columns: list[Any] = [TextColumn("{task.description:8}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[note]}"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True, refresh_per_second=4) as bar:
        actions = bar.add_task("actions", total=None, note="")
        messages = bar.add_task("SMS", total=None, note="", visible=False)
        stop = threading.Event()

        def redraw() -> None:
            while not stop.is_set():
                progress.changed.wait(0.25)
                progress.changed.clear()
                bar.update(actions, total=progress.actions_total or None, completed=progress.actions_done,
                           note=f"{progress.not_done} not done" if progress.not_done else "")
                if progress.messages_total:
                    bar.update(messages, total=progress.messages_total, completed=progress.messages_sent,
                               note=f"{progress.rate():,.0f}/s", visible=True)

        drawer = threading.Thread(target=redraw, name="progress", daemon=True)
        drawer.start()
        try:
            yield
        finally:
            stop.set()
            progress.changed.set()
            drawer.join(timeout=1)
