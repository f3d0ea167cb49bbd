"""The simulators the sandbox runs: one descriptor per backend type, the built-in four listed here only.

``reconcile sandbox``, ``reconcile demo`` and the tests start what this registry holds (``running_sandbox``);
a test or a plug-in adds its own simulator with ``register`` (``registered`` for the length of a block).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.sandbox import iot_campaigns, ogangi, sms_gateway, yateota
from reconciler.sandbox.descriptor import SimulatorDescriptor

BUILT_IN: tuple[SimulatorDescriptor, ...] = (
    yateota.SIMULATOR, iot_campaigns.SIMULATOR, ogangi.SIMULATOR, sms_gateway.SIMULATOR,
)

_simulators: dict[str, SimulatorDescriptor] = {d.type: d for d in BUILT_IN}


def register(descriptor: SimulatorDescriptor) -> None:
    """Add a simulator; its type and its port offset must be free."""
    if descriptor.type in _simulators:
        raise ValueError(f"a simulator of {descriptor.type!r} is already registered")
    taken = {d.port_offset: d.type for d in _simulators.values()}
    if descriptor.port_offset in taken or descriptor.port_offset < 1:
        raise ValueError(f"port offset {descriptor.port_offset} of {descriptor.type!r} is not free "
                         f"(taken: {dict(sorted(taken.items()))})")
    _simulators[descriptor.type] = descriptor


def unregister(backend_type: str) -> None:
    """Remove a simulator added with ``register``; the built-in ones cannot be removed."""
    if any(d.type == backend_type for d in BUILT_IN):
        raise ValueError(f"the {backend_type!r} simulator is built in")
    _simulators.pop(backend_type, None)


@contextmanager
def registered(descriptor: SimulatorDescriptor) -> Iterator[SimulatorDescriptor]:
    register(descriptor)
    try:
        yield descriptor
    finally:
        unregister(descriptor.type)


def simulators() -> tuple[SimulatorDescriptor, ...]:
    """Every simulator, by port offset (the banner's order)."""
    return tuple(sorted(_simulators.values(), key=lambda d: d.port_offset))
