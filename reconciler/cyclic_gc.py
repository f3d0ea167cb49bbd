"""Pausing CPython's cyclic garbage collector around a phase that builds many long-lived objects and
makes no reference cycles (loading the declarations, planning)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """While the phase runs, the collector would only traverse its new objects again and again as they are
    made: about a third of a large repository's parse time, and at 100,000 gateways half of a plan's CPU
    (2.19 s with the collector, 1.14 s without; its 10k -> 100k step 14.7x instead of 10.8x, same captured
    input, same run). Reference counting still frees everything as usual, and a cycle made anyway is
    collected once the collector is back. Nests: only the outermost pause turns it on again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
