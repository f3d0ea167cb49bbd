"""Opening the state store for a command: a reader (dry run, status) never creates a store (its read phase
is one snapshot, ``Store.reading``); a writer (apply, ``--plan``, watch, demo) creates or migrates it and
holds the writer lease for its whole run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from reconciler.model import DesiredState
from reconciler.state.lease import DEFAULT_TTL_SECONDS, LeaseHolder, WriterLease
from reconciler.state.store import Store, open_store

#: the longest request of a backend with default limits (2 x 10 s + 5 s): how long after an expired lease
#: the previous writer's requests may still be in flight
DEFAULT_REQUEST_BOUND = 25.0


def request_bound(desired: DesiredState | None) -> float:
    """The longest one request to any declared backend can take (``BackendHttp.request_bound``)."""
    if desired is None or not desired.backends:
        return DEFAULT_REQUEST_BOUND
    return max(2 * spec.limits.timeout_seconds + 5.0 for spec in desired.backends.values())


def open_writer(url: str, *, base_dir: Path, command: str, lock_timeout: float = 0.0,
                ttl: float = DEFAULT_TTL_SECONDS, bound: float = DEFAULT_REQUEST_BOUND,
                on_wait: Callable[[LeaseHolder], None] | None = None,
                stop: threading.Event | None = None) -> Store:
    """The store with this process's writer lease (``LeaseHeldError`` names the holder when it is busy)."""
    store = open_store(url, base_dir=base_dir, writer=True)
    assert store is not None
    lease = WriterLease(store.db, command=command, ttl=ttl)
    try:
        lease.acquire(timeout=lock_timeout, request_bound=bound, on_wait=on_wait, stop=stop)
    except BaseException:
        store.close()
        raise
    store.lease = lease
    return store
