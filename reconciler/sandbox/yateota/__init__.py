"""The yateota simulator: the sandbox's stand-in for the real service.

``SIMULATOR`` is its sandbox registry entry (``reconciler.sandbox.registry``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.sandbox.descriptor import SimulatorDescriptor

if TYPE_CHECKING:  # the simulator itself is imported only when a sandbox starts
    from reconciler.sandbox.clock import SimClock
    from reconciler.sandbox.harness import Simulator
    from reconciler.sandbox.run import SandboxOptions


def build(options: SandboxOptions, clock: SimClock) -> Simulator:
    from reconciler.sandbox.yateota.app import YateOtaSimulator

    return YateOtaSimulator(clock=clock, seed=options.seed, **options.yateota)


SIMULATOR = SimulatorDescriptor(
    type="yateota", title="YateOTA", port_offset=1, build=build,
    banner="{url}/api.php     secret: sandbox-secret (header X-Authentication)",
)
