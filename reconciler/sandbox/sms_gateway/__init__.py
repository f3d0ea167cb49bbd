"""The sms_gateway simulator: the sandbox's stand-in for the real service.

``SIMULATOR`` is its sandbox registry entry (``reconciler.sandbox.registry``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.sandbox.descriptor import SimulatorDescriptor

if TYPE_CHECKING:  # the simulator itself is imported only when a sandbox starts
    from reconciler.sandbox.clock import SimClock
    from reconciler.sandbox.harness import Simulator
    from reconciler.sandbox.run import SandboxOptions


def build(options: SandboxOptions, clock: SimClock) -> Simulator:
    from reconciler.sandbox.sms_gateway.app import SmsGatewaySimulator

    return SmsGatewaySimulator(clock=clock, seed=options.seed, **options.sms_gateway)


SIMULATOR = SimulatorDescriptor(
    type="sms-gateway", title="SMS gateway", port_offset=4, build=build, tls=True,
    banner="{url}/api   admin / admin (Digest or Basic; self-signed, CA: {ca})",
)
