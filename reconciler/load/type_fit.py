"""Which fields apply to which backend type, and the check that a resource's fields fit its backend.

The schemas accept the union of all fields (a Campaign's backend is named, not embedded, so its type
is only known across documents); each backend type's descriptor (``reconciler.backends.registry``) says
what applies to it, what is required and which run states exist. The tables here are derived from the
registered descriptors, so a plug-in type takes part without a change here. Each field's schema
description names the built-in types it applies to (a test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from reconciler.backends import registry
from reconciler.backends.descriptor import BackendDescriptor
from reconciler.load.declared import Declared, Report

Table = Mapping[str, frozenset[str]]  # field -> the backend types it applies to


def backend_auth() -> Mapping[str, tuple[str, ...]]:
    """Per backend type, its ``auth`` keys."""
    return {d.type: d.auth for d in registry.descriptors()}


def backend_options() -> Table:
    return _tables(registry.revision())["options"]


def campaign_fields() -> Table:
    return _tables(registry.revision())["campaign"]


def assignment_fields() -> Table:
    """``campaign`` applies to every type whose campaigns take assignments."""
    return _tables(registry.revision())["assignment"]


def schedule_fields() -> Table:
    return _tables(registry.revision())["schedule"]


@lru_cache(maxsize=4)
def _tables(revision: int) -> dict[str, Table]:
    found = registry.descriptors()
    takes: dict[str, Callable[[BackendDescriptor, str], bool]] = {
        "options": lambda d, name: name in d.options,
        "campaign": BackendDescriptor.takes_campaign_field,
        "assignment": lambda d, name: bool(d.assignment_fields) and (name == "campaign" or name in d.assignment_fields),
        "schedule": BackendDescriptor.takes_schedule_field,
    }
    names: dict[str, set[str]] = {
        "options": {o for d in found for o in d.options},
        "campaign": {"backend", "state"} | {f for d in found for f in d.campaign_fields},
        "assignment": {"campaign"} | {f for d in found for f in d.assignment_fields},
        "schedule": {"campaign", "active"} | {f for d in found for f in d.schedule_fields},
    }
    return {table: {name: frozenset(d.type for d in found if takes[table](d, name)) for name in sorted(names[table])}
            for table in takes}


def types_text(types: frozenset[str]) -> str:
    """``ogangi and sms-gateway``: in the registry's order."""
    ordered = [t for t in registry.types() if t in types]
    if not ordered:
        return "no"
    return ordered[0] if len(ordered) == 1 else ", ".join(ordered[:-1]) + " and " + ordered[-1]


def check_backend_fit(item: Declared, kind: BackendDescriptor, report: Report) -> None:
    """A Backend's ``auth`` keys and ``options`` must be those of its type."""
    wanted = kind.auth
    auth = item.spec.get("auth")
    if isinstance(auth, dict) and item.usable("spec", "type"):
        for key in auth:
            if key not in wanted and item.usable("spec", "auth", key):
                report.error(item, ("spec", "auth", key), f"auth key `{key}` does not apply to {kind.type} backends; "
                             f"expected: {', '.join(wanted)}", at_key=True)
        for key in wanted:
            if key not in auth and item.usable("spec", "auth"):
                report.error(item, ("spec", "auth"), f"spec.auth: missing `{key}`, required for {kind.type} backends "
                             f"(which take {', '.join(wanted)})", at_key=True)
    options = item.spec.get("options")
    if isinstance(options, dict):
        table = backend_options()
        for key in options:
            types = table.get(key)
            if types is not None and kind.type not in types and item.usable("spec", "options", key):
                report.error(item, ("spec", "options", key), f"option `{key}` applies to {types_text(types)} "
                             f"backends; this backend is of type {kind.type}", at_key=True)


def check_fields_fit(item: Declared, table: Table, kind: BackendDescriptor, backend: str, noun: str,
                     report: Report) -> None:
    """Each field of ``item.spec`` must apply to the backend type ``kind``."""
    for key in item.spec:
        types = table.get(key)
        if types is not None and kind.type not in types and item.usable("spec", key):
            report.error(item, ("spec", key), f"`{key}` applies to {types_text(types)} {noun}; backend `{backend}` "
                         f"is of type {kind.type}", at_key=True)


def check_campaign_fit(item: Declared, kind: BackendDescriptor, backend: str, report: Report) -> None:
    check_fields_fit(item, campaign_fields(), kind, backend, "campaigns", report)
    spec = item.spec
    for key in kind.campaign_required:
        if key not in spec and item.usable("spec", key):
            report.error(item, ("spec",), f"spec: missing `{key}`, required for {kind.type} campaigns (backend "
                         f"`{backend}` is of type {kind.type})", at_key=True)
    state = item.get("spec", "state")
    if isinstance(state, str) and state not in kind.campaign_states:
        report.error(item, ("spec", "state"), f"spec.state: `{state}` is not a state of {kind.type} campaigns; "
                     f"expected one of: {', '.join(kind.campaign_states)}")
