"""The iot_campaigns simulator: the sandbox's stand-in for the real service.

``SIMULATOR`` is its sandbox registry entry (``reconciler.sandbox.registry``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.sandbox.descriptor import SimulatorDescriptor

if TYPE_CHECKING:  # the simulator itself is imported only when a sandbox starts
    from reconciler.sandbox.clock import SimClock
    from reconciler.sandbox.harness import Simulator
    from reconciler.sandbox.run import SandboxOptions


def build(options: SandboxOptions, clock: SimClock) -> Simulator:
    from reconciler.sandbox.iot_campaigns.app import IotCampaignsSimulator

    destinations = {**options.iot.get("destinations", {}), **options.destinations}
    return IotCampaignsSimulator(clock=clock, seed=options.seed, gateway_count=options.gateway_count,
                                 approval_required=options.approval_required,
                                 **{**options.iot, "destinations": destinations})


SIMULATOR = SimulatorDescriptor(
    type="iot-campaigns", title="IoT campaigns", port_offset=2, build=build,
    banner="{url}/api   user admin / admin (all permissions)",
)
