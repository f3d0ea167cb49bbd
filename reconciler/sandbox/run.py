"""The whole sandbox: every registered simulator (``reconciler.sandbox.registry``) on its loopback port, one
simulated clock for all.

Ports (a contract): ``port_base + 1`` YateOTA, ``+2`` IoT campaigns, ``+3`` Ogangi, ``+4`` SMS gateway
(HTTPS with a certificate made at start); a registered plug-in simulator at its own offset. Each server
runs in its own thread; the caller decides how long they live (``reconcile sandbox`` until a signal,
``reconcile demo`` for one run, tests per module).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.descriptor import SimulatorDescriptor
from reconciler.sandbox.faults import FaultInjector, FaultSettings
from reconciler.sandbox.registry import simulators

# The servers (uvicorn, starlette) and TLS (cryptography) are imported when a sandbox starts: every
# ``reconcile`` command imports this module, and only ``sandbox`` and ``demo`` run one.
if TYPE_CHECKING:
    from reconciler.sandbox.harness import SandboxServer, Simulator, TlsFiles

DEFAULT_PORT_BASE = 8700


@dataclass(frozen=True)
class SandboxOptions:
    host: str = "127.0.0.1"
    port_base: int = DEFAULT_PORT_BASE  # 0: every simulator on a free port (tests)
    faults: FaultSettings = field(default_factory=FaultSettings)
    state_file: Path | None = None
    seed: int | None = None
    gateway_count: int = 10_000
    approval_required: bool = False
    #: notification destinations of the IoT campaign manager: id -> URL its callbacks are POSTed to (a
    #: campaign's ``callbacks`` name these ids; e.g. the daemon's ``/webhooks/iot/<token>``)
    destinations: dict[str, str] = field(default_factory=dict)
    yateota: dict[str, Any] = field(default_factory=dict)  # extra simulator options (benchmarks)
    iot: dict[str, Any] = field(default_factory=dict)
    ogangi: dict[str, Any] = field(default_factory=dict)
    sms_gateway: dict[str, Any] = field(default_factory=dict)
    #: the backend types whose simulators run; empty: all registered ones
    only: tuple[str, ...] = ()


@dataclass
class RunningSandbox:
    clock: SimClock
    servers: dict[str, SandboxServer]
    tls: TlsFiles

    def url(self, name: str) -> str:
        return self.servers[name].url

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def chosen(options: SandboxOptions) -> tuple[SimulatorDescriptor, ...]:
    """The registered simulators ``options`` asks for (all, or those of ``options.only``), by port offset."""
    found = simulators()
    unknown = sorted(set(options.only) - {d.type for d in found})
    if unknown:
        raise ValueError(f"no simulator of {', '.join(unknown)}; known: {', '.join(d.type for d in found)}")
    return tuple(d for d in found if not options.only or d.type in options.only)


def build_simulators(options: SandboxOptions, clock: SimClock) -> dict[str, Simulator]:
    """The simulators with the contract's fixtures and credentials (imported here, not at start-up)."""
    return {d.type: d.build(options, clock) for d in chosen(options)}


def _state_file(options: SandboxOptions, name: str) -> Path | None:
    if options.state_file is None:
        return None
    return options.state_file.with_name(f"{options.state_file.stem}.{name}{options.state_file.suffix or '.json'}")


@contextmanager
def running_sandbox(options: SandboxOptions, *, tls_dir: Path | None = None) -> Iterator[RunningSandbox]:
    """Start every chosen simulator; stop them (and save state when asked) when the block ends."""
    from reconciler.sandbox.harness import SandboxApp, SandboxServer
    from reconciler.sandbox.tls import generate_tls_files

    clock = SimClock()
    with tempfile.TemporaryDirectory(prefix="reconciler-sandbox-") as tmp:
        tls = generate_tls_files(tls_dir or Path(tmp))
        servers: dict[str, SandboxServer] = {}
        try:
            for descriptor in chosen(options):
                name = descriptor.type
                app = SandboxApp(descriptor.build(options, clock), clock=clock, faults=FaultInjector(options.faults),
                                 state_file=_state_file(options, name))
                port = options.port_base + descriptor.port_offset if options.port_base else 0
                servers[name] = SandboxServer(app, host=options.host, port=port,
                                              tls=tls if descriptor.tls else None).start_in_thread()
            yield RunningSandbox(clock, servers, tls)
        finally:
            for server in servers.values():
                server.stop()
