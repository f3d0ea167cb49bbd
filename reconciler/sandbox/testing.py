"""Helpers for tests and benchmarks: start a simulator in-process on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxApp, SandboxServer, Simulator, TlsFiles


@contextmanager
def running_simulator(
    simulator: Simulator, *, clock: SimClock, tls: TlsFiles | None = None
) -> Iterator[SandboxServer]:
    """Serve ``simulator`` on ``127.0.0.1:<free port>`` for the duration of the ``with`` block."""
    server = SandboxServer(SandboxApp(simulator, clock=clock), tls=tls).start_in_thread()
    try:
        yield server
    finally:
        server.stop()
