"""The backend types this installation knows: one descriptor per ``Backend.spec.type``.

The four built-in packages are listed here and nowhere else. A third-party package adds a type through
the entry point group ``campaign_reconciler.backends`` (an entry point names a ``BackendDescriptor``), and
a test or an embedding program with ``register(descriptor)``. Everything type-specific is asked of the
descriptor (``descriptor_for``): the loader's checks, the daemon's webhook route, the adapter.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points

from reconciler.backends import iot_campaigns, ogangi, sms_gateway, yateota
from reconciler.backends.descriptor import BackendDescriptor
from reconciler.backends.protocol import BackendAdapter

ENTRY_POINT_GROUP = "campaign_reconciler.backends"
BUILT_IN: tuple[BackendDescriptor, ...] = (
    yateota.DESCRIPTOR, iot_campaigns.DESCRIPTOR, ogangi.DESCRIPTOR, sms_gateway.DESCRIPTOR,
)

_descriptors: dict[str, BackendDescriptor] = {d.type: d for d in BUILT_IN}
_revision = [0]  # bumped by every change, so caches derived from the registry know when to rebuild
_entry_points_loaded = [False]


class UnknownBackendType(LookupError):
    """A backend type no descriptor is registered for (the loader reports it before anything asks)."""


def register(descriptor: BackendDescriptor) -> None:
    """Add a backend type (a plug-in). Registering a type twice is a mistake, unless it is the very same
    descriptor (an entry point loaded again)."""
    _load_entry_points()
    _add(descriptor)


def unregister(backend_type: str) -> None:
    """Remove a type added with ``register`` (tests); the built-in types cannot be removed."""
    if any(d.type == backend_type for d in BUILT_IN):
        raise ValueError(f"backend type {backend_type!r} is built in")
    if _descriptors.pop(backend_type, None) is not None:
        _revision[0] += 1


@contextmanager
def registered(descriptor: BackendDescriptor) -> Iterator[BackendDescriptor]:
    """``register`` for the length of a block (tests)."""
    register(descriptor)
    try:
        yield descriptor
    finally:
        unregister(descriptor.type)


def descriptors() -> tuple[BackendDescriptor, ...]:
    """Every known type: the built-in ones first, in their documented order, then plug-ins as registered."""
    _load_entry_points()
    return tuple(_descriptors.values())


def types() -> tuple[str, ...]:
    return tuple(d.type for d in descriptors())


def revision() -> int:
    """Changes whenever the set of types does (a cache key for what is derived from the registry)."""
    _load_entry_points()
    return _revision[0]


def find(backend_type: object) -> BackendDescriptor | None:
    """The descriptor of ``backend_type``, or None for anything that is not a known type."""
    _load_entry_points()
    return _descriptors.get(backend_type) if isinstance(backend_type, str) else None


def descriptor_for(backend_type: str) -> BackendDescriptor:
    found = find(backend_type)
    if found is None:
        raise UnknownBackendType(f"no backend type {backend_type!r} is registered; known: {', '.join(types())}")
    return found


def adapter_for(backend_type: str) -> BackendAdapter:
    """The adapter of ``backend_type`` (imported on first use, so a dry run loads only what it needs)."""
    return descriptor_for(backend_type).adapter()


def push_receiver(segment: str) -> BackendDescriptor | None:
    """The type whose pushes ``/webhooks/<segment>/<token>`` receives: its type name or one of its
    ``push_paths``; None when no type with a push parser answers to it."""
    for descriptor in descriptors():
        if descriptor.push is not None and (segment == descriptor.type or segment in descriptor.push_paths):
            return descriptor
    return None


def _add(descriptor: BackendDescriptor) -> None:
    current = _descriptors.get(descriptor.type)
    if current is descriptor:
        return
    if current is not None:
        raise ValueError(f"backend type {descriptor.type!r} is already registered")
    _descriptors[descriptor.type] = descriptor
    _revision[0] += 1


def _load_entry_points() -> None:
    """Register the descriptors installed packages announce (once per process). A broken plug-in must not
    take the built-in types down: it is skipped with a one-line warning (its type is then reported as
    unknown where a Backend names it)."""
    if _entry_points_loaded[0]:
        return
    _entry_points_loaded[0] = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            descriptor = point.load()
        except Exception as exc:  # noqa: BLE001 - any import error of a third-party plug-in
            warnings.warn(f"backend plug-in {point.name!r} ({point.value}) not loaded: {type(exc).__name__}: "
                          f"{str(exc)[:200]}", RuntimeWarning, stacklevel=2)
            continue
        if not isinstance(descriptor, BackendDescriptor) or descriptor.type in _descriptors:
            warnings.warn(f"backend plug-in {point.name!r} ({point.value}) not loaded: not a BackendDescriptor "
                          "or a type already registered", RuntimeWarning, stacklevel=2)
            continue
        _add(descriptor)
