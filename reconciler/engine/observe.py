"""Observation: every backend read in parallel before planning, never lazily during it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from reconciler.backends.protocol import Reader
from reconciler.model import DesiredState
from reconciler.observed import BackendObservation, ObservedState
from reconciler.secrets import Redactor


async def observe_all(readers: Mapping[str, Reader], desired: DesiredState, *, redactor: Redactor) -> ObservedState:
    """Ask every reader at once; a reader that fails marks its backend unreadable instead of raising."""
    names = sorted(readers)
    results = await asyncio.gather(*(readers[n].observe(desired) for n in names), return_exceptions=True)
    backends: dict[str, BackendObservation] = {}
    for name, result in zip(names, results):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            backends[name] = BackendObservation(backend=name, readable=False,
                                                error=redactor.scrub(f"{result.__class__.__name__}: {result}"))
        else:
            backends[name] = result
    return ObservedState(backends=backends)
