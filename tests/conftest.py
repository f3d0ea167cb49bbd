"""Shared test set-up: every test starts with structlog's default configuration (the CLI configures
logging for its process, which must not leak from one test into the next)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import structlog

if TYPE_CHECKING:
    from reconciler.state.store import Store
    from tests.daemon.daemon_process import DaemonProcess
    from tests.postgres_server import PostgresCluster


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def close_test_ledgers() -> Iterator[None]:
    """Stores opened by ``tests.ledgers.writer_ledger`` give their lease back after each test."""
    yield
    from tests.ledgers import close_all

    close_all()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the whole run (skipped without PostgreSQL, except under CI)."""
    from tests.postgres_server import postgres_cluster

    with postgres_cluster() as cluster:
        yield cluster


def _new_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    cluster = request.getfixturevalue("postgres")
    return str(cluster.new_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty state store URL, once per store kind: the store contract holds on both."""
    return _new_store(request.param, request, tmp_path)


@pytest.fixture
def writer_store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each kind, opened as its writer (the lease held) and closed at the end."""
    from reconciler.engine.store_access import open_writer

    opened = open_writer(store_url, base_dir=tmp_path, command="test")
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def long_run_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """As ``store_url`` for the long crash and fault runs: SQLite in the default suite, PostgreSQL with the
    slow ones (``make test-slow``), so the default suite stays under ten minutes on two cores."""
    return _new_store(request.param, request, tmp_path)


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Real ``reconcile watch`` processes a test starts (append them): killed at its end, whatever happened."""
    from tests.daemon.daemon_process import DaemonProcess  # noqa: F401  (the type of what is collected)

    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop()
