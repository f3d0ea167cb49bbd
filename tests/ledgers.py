"""Send ledgers for tests that drive the SMS engine directly: a writer store per file, holding the lease
like a real writer, closed after each test (``tests/conftest.py``); and a reader for counting."""

from __future__ import annotations

from pathlib import Path

from reconciler.engine.store_access import open_writer
from reconciler.state.ledger import SendLedger
from reconciler.state.store import Store, open_store

_open: dict[Path, Store] = {}


def writer_ledger(path: Path) -> SendLedger:
    """The ledger in the SQLite store at ``path``, with this process's writer lease (kept for the test)."""
    store = _open.get(path)
    if store is None:
        store = _open[path] = open_writer(f"sqlite:///{path}", base_dir=path.parent, command="test")
    return store.ledger


def ledger_counts(path: Path, backend: str, campaign: str) -> dict[str, int]:
    """Rows by state, read as a reader would (no lease): {} when there is no store."""
    store = open_store(f"sqlite:///{path}", base_dir=path.parent, writer=False)
    if store is None:
        return {}
    try:
        return store.ledger.counts(backend, campaign)
    finally:
        store.close()


def rows_by_state(url: str) -> dict[str, int]:
    """Send-ledger rows by backend and state in the store at ``url`` (either kind), e.g. ``{"gw/accepted": 60}``."""
    store = open_store(url, writer=False)
    if store is None:
        return {}
    try:
        with store.db.read() as tx:
            found = tx.rows("SELECT backend, state, COUNT(*) FROM send_ledger GROUP BY backend, state")
        return {f"{backend}/{state}": int(count) for backend, state, count in found}
    finally:
        store.close()


def close_all() -> None:
    while _open:
        _open.popitem()[1].close()
