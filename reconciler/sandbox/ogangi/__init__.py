"""The ogangi simulator: the sandbox's stand-in for the real service.

``SIMULATOR`` is its sandbox registry entry (``reconciler.sandbox.registry``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.sandbox.descriptor import SimulatorDescriptor

if TYPE_CHECKING:  # the simulator itself is imported only when a sandbox starts
    from reconciler.sandbox.clock import SimClock
    from reconciler.sandbox.harness import Simulator
    from reconciler.sandbox.run import SandboxOptions


def build(options: SandboxOptions, clock: SimClock) -> Simulator:
    from reconciler.sandbox.ogangi.app import OgangiSimulator

    return OgangiSimulator(clock=clock, seed=options.seed, **options.ogangi)


SIMULATOR = SimulatorDescriptor(
    type="ogangi", title="Ogangi", port_offset=3, build=build,
    banner="{url}/rest/api     instance 7, public key sandbox-public, private key sandbox-private",
)
