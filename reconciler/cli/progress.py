"""A progress bar on a terminal while actions run; nothing at all when output is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.engine.execute import Outcome, OutcomeStatus, ProgressSink


@contextmanager
def progress_for(*, enabled: bool) -> Iterator[ProgressSink | None]:
    """Yields a sink for outcomes (or None when there is no terminal to draw on)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console  # a tenth of a second to import: only when a bar is drawn
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("applying"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("apply", total=None, failed="")
        failed = 0

        def sink(outcome: Outcome) -> None:
            nonlocal failed
            if outcome.status is not OutcomeStatus.SUCCEEDED:
                failed += 1
            bar.update(task, advance=1, failed=f"{failed} not done" if failed else "")

        yield sink
