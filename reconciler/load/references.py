"""Checks across documents: unique names, references that resolve, fields that fit the backend, conflicts.

References: Package -> Backend; Campaign -> Backend, Packages; GatewayAssignment -> Campaign,
Packages; Schedule -> Campaign, GatewayAssignment. An unresolved reference names what does exist.
Once an SMS campaign's backend type is known, every recipient's message must fit that backend's
``MessageBound`` (reported at the text, the inline recipient or the recipient file's line).
A resource whose target is unknown skips the checks that depend on the target, so one typo gives one
diagnostic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler.backends import registry
from reconciler.backends.descriptor import BackendDescriptor
from reconciler.backends.protocol import MessageBound
from reconciler.backends.sms_text import render_text
from reconciler.diagnostics import Diagnostic
from reconciler.load.declared import Declared, Report
from reconciler.load.notifications import check_notification_references
from reconciler.load.recipients import oversized_messages
from reconciler.load.rules import MAX_LIST_PROBLEMS, Facts
from reconciler.load.schema_check import did_you_mean, dotted, names_list
from reconciler.load.type_fit import (
    assignment_fields, check_backend_fit, check_campaign_fit, check_fields_fit, schedule_fields, types_text,
)
from reconciler.load.positions import Path_
from reconciler.model import Kind

PLURAL = {Kind.BACKEND: "Backends", Kind.PACKAGE: "Packages", Kind.CAMPAIGN: "Campaigns",
          Kind.GATEWAY_ASSIGNMENT: "GatewayAssignments", Kind.SCHEDULE: "Schedules",
          Kind.NOTIFICATION: "Notifications"}


class Names:
    """Declared resources by kind and name; a repeated name is reported at the repeat."""

    def __init__(self, items: Iterable[Declared], report: Report, *, unreadable_files: bool = False) -> None:
        self.by_kind: dict[Kind, dict[str, Declared]] = {kind: {} for kind in Kind}
        self.report = report
        self.unreadable_files = unreadable_files
        for item in items:
            if item.name is None:
                continue
            first = self.by_kind[item.kind].get(item.name)
            if first is None:
                self.by_kind[item.kind][item.name] = item
            else:
                report.error(item, ("metadata", "name"), f"duplicate {item.kind.value} name `{item.name}` (first "
                             f"declared at {report.where(first, ('metadata', 'name'))}); names are unique per kind")

    def resolve(self, item: Declared, path: Path_, kind: Kind) -> Declared | None:
        """The resource ``item`` names at ``path``, or None (reported when the name is unknown)."""
        name = item.get(*path)
        if not isinstance(name, str):
            return None
        found = self.by_kind[kind].get(name)
        if found is None:
            known = list(self.by_kind[kind])
            message = (f"{dotted(path)}: no {kind.value} named `{name}`{did_you_mean(name, known)}; "
                       f"{PLURAL[kind]} declared: {names_list(known)}")
            if self.unreadable_files:
                message += " (some files could not be read; it may be declared there)"
            self.report.error(item, path, message)
        return found


def backend_type(backend: Declared | None) -> BackendDescriptor | None:
    """The descriptor of a Backend's type, when it names a registered one."""
    return registry.find(backend.spec.get("type")) if backend is not None else None


def campaign_backend(campaign: Declared | None, names: Names) -> tuple[str | None, BackendDescriptor | None]:
    """The backend name a campaign names and that backend's type, when both are known (no reporting)."""
    if campaign is None:
        return None, None
    name = campaign.spec.get("backend")
    if not isinstance(name, str):
        return None, None
    return name, backend_type(names.by_kind[Kind.BACKEND].get(name))


def check_references(items: list[Declared], names: Names, facts: Facts, report: Report) -> None:
    for item in items:
        if not item.checkable:
            continue
        if item.kind is Kind.BACKEND:
            kind = backend_type(item)
            if kind is not None:
                check_backend_fit(item, kind, report)
        elif item.kind is Kind.PACKAGE:
            _check_package(item, names, report)
        elif item.kind is Kind.CAMPAIGN:
            _check_campaign(item, names, facts, report)
        elif item.kind is Kind.GATEWAY_ASSIGNMENT:
            _check_assignment(item, names, report)
        elif item.kind is Kind.SCHEDULE:
            _check_schedule(item, names, report)
        elif item.kind is Kind.NOTIFICATION:
            check_notification_references(item, names, report)
    _check_assignment_overlaps(items, names, facts, report)
    _check_schedule_overlaps(items, names, report)


def _check_package(item: Declared, names: Names, report: Report) -> None:
    backend = names.resolve(item, ("spec", "backend"), Kind.BACKEND)
    kind = backend_type(backend)
    if kind is not None and not kind.packages:
        takers = frozenset(d.type for d in registry.descriptors() if d.packages)
        report.error(item, ("spec", "backend"), f"spec.backend: packages apply to {types_text(takers)} backends; "
                     f"backend `{item.spec['backend']}` is of type {kind.type}")


def _check_packages_of(item: Declared, path: Path_, backend: str, names: Names, report: Report, whose: str) -> None:
    packages = item.get(*path)
    for index, _ in enumerate(packages if isinstance(packages, list) else ()):
        package = names.resolve(item, path + (index,), Kind.PACKAGE)
        owner = package.spec.get("backend") if package is not None else None
        if isinstance(owner, str) and owner != backend:
            report.error(item, path + (index,), f"{dotted(path + (index,))}: package `{packages[index]}` belongs to "
                         f"backend `{owner}`, but {whose} runs on backend `{backend}`")


def _check_campaign(item: Declared, names: Names, facts: Facts, report: Report) -> None:
    backend = names.resolve(item, ("spec", "backend"), Kind.BACKEND)
    kind = backend_type(backend)
    if backend is None or kind is None:
        return
    name = item.spec["backend"]
    check_campaign_fit(item, kind, name, report)
    if kind.packages:
        _check_packages_of(item, ("spec", "packages"), name, names, report, "the campaign")
    if kind.message_bound is not None:
        _check_message_sizes(item, kind.message_bound, f"{kind.type} backend `{name}`", facts, report)


def _check_message_sizes(item: Declared, bound: MessageBound, backend: str, facts: Facts, report: Report) -> None:
    """Every recipient's message, as rendered, fits the backend (``MessageBound``): the text alone, each
    inline recipient's parameters, and each row of a recipient file (at its own line, streamed again only
    when the longest parameters found by the scan could make a message too long)."""
    text = item.get("spec", "text")
    if not isinstance(text, str):
        return
    encoding = item.get("spec", "encoding")
    encoding = encoding if isinstance(encoding, str) else None
    advice = "; shorten the text"
    empty = render_text(text, ())
    written = bound.problem(text, encoding) if bound.template_sent else None  # the backend gets it as written
    if written is not None:
        report.error(item, ("spec", "text"), f"spec.text: the text {written} on {backend}{advice}")
        return
    problem = bound.problem(empty, encoding)
    if problem is not None:
        report.error(item, ("spec", "text"), f"spec.text: the message {problem} on {backend} even with empty "
                     f"parameters{advice}")
        return

    def why(params: tuple[str, ...]) -> str | None:
        return bound.problem(render_text(text, params), encoding)

    inline = item.get("spec", "recipients", "inline")
    too_long: list[tuple[Path_, str]] = []
    for index, entry in enumerate(inline if isinstance(inline, list) else ()):
        params = entry.get("params") if isinstance(entry, dict) else None
        if isinstance(params, list) and item.usable("spec", "recipients", "inline", index):
            found = why(tuple(p for p in params if isinstance(p, str)))
            if found is not None:
                too_long.append((("spec", "recipients", "inline", index),
                                 f"the message for `{entry.get('number')}` {found} on {backend}{advice} or its "
                                 "parameters"))
    for path, message in too_long[:MAX_LIST_PROBLEMS]:
        report.error(item, path, f"{dotted(path)}: {message}")
    if len(too_long) > MAX_LIST_PROBLEMS:
        path = too_long[MAX_LIST_PROBLEMS][0]
        report.error(item, path, f"{dotted(path)}: ... and {len(too_long) - MAX_LIST_PROBLEMS} more messages too "
                     f"long in this list (only the first {MAX_LIST_PROBLEMS} are shown)")
    listed = facts.files.get((item, ("spec", "recipients", "file")))
    scan = facts.recipient_scans.get(listed.real) if listed is not None else None
    if listed is None or scan is None:
        return
    chars, size = len(empty), len(empty.encode("utf-8"))
    if bound.fits_every(chars + scan.params_chars, size + scan.params_bytes):
        return
    try:
        oversized = oversized_messages(listed.real, why)
    except OSError as exc:
        report.add(Diagnostic(f"cannot read recipients: {exc.strerror or exc}", listed.display, resource=item.key))
        return
    for line, col, number, found in oversized.rows:
        report.add(Diagnostic(f"campaign `{item.name}`: the message for `{number}` {found} on {backend}{advice} or "
                              "this row's parameters", listed.display, line, col, resource=item.key))
    if oversized.more:
        report.add(Diagnostic(f"campaign `{item.name}`: ... and {oversized.more} more rows whose message is too long "
                              f"(only the first {len(oversized.rows)} are shown)", listed.display,
                              *oversized.first_more, resource=item.key))


def _check_assignment(item: Declared, names: Names, report: Report) -> None:
    campaign = names.resolve(item, ("spec", "campaign"), Kind.CAMPAIGN)
    backend, kind = campaign_backend(campaign, names)
    if backend is None or kind is None:
        return
    table = assignment_fields()
    if not kind.assignment_fields:
        report.error(item, ("spec", "campaign"), f"spec.campaign: assignments apply to {types_text(table['campaign'])} "
                     f"campaigns; campaign `{item.spec['campaign']}` runs on backend `{backend}` of type {kind.type}")
        return
    check_fields_fit(item, {k: v for k, v in table.items() if k != "campaign"}, kind, backend, "assignments", report)
    spec = item.spec
    if kind.assignment_needs and not any(field in spec for field in kind.assignment_needs):
        needs = " or ".join(f"`{field}`" for field in kind.assignment_needs)
        report.error(item, ("spec",), f"spec: an assignment of a campaign of type {kind.type} needs {needs}", at_key=True)
    if kind.packages and "packages" in kind.assignment_fields:
        _check_packages_of(item, ("spec", "packages"), backend, names, report, f"campaign `{spec['campaign']}`")


def _check_schedule(item: Declared, names: Names, report: Report) -> None:
    campaign = names.resolve(item, ("spec", "campaign"), Kind.CAMPAIGN)
    backend, kind = campaign_backend(campaign, names)
    if backend is not None and kind is not None:
        check_fields_fit(item, schedule_fields(), kind, backend, "schedules", report)
    if "assignment" not in item.spec:
        return
    assignment = names.resolve(item, ("spec", "assignment"), Kind.GATEWAY_ASSIGNMENT)
    owner = assignment.spec.get("campaign") if assignment is not None else None
    wanted = item.get("spec", "campaign")
    if isinstance(owner, str) and isinstance(wanted, str) and owner != wanted:
        report.error(item, ("spec", "assignment"), f"spec.assignment: assignment `{item.spec['assignment']}` belongs "
                     f"to campaign `{owner}`, not `{wanted}`")


def _check_assignment_overlaps(items: list[Declared], names: Names, facts: Facts, report: Report) -> None:
    """A gateway (or port) is assigned to a campaign at most once; with two overrides it would be ambiguous."""
    taken: dict[tuple[str, str], dict[object, Declared]] = {}  # (campaign, "gateway"|"port") -> value -> first
    for item in items:
        if item.kind is not Kind.GATEWAY_ASSIGNMENT or item.name is None or not item.checkable:
            continue
        if names.by_kind[Kind.GATEWAY_ASSIGNMENT].get(item.name) is not item:
            continue
        campaign = item.get("spec", "campaign")
        if not isinstance(campaign, str):
            continue
        claims: list[tuple[str, list[Any], Path_ | None]] = []
        gateways = item.get("spec", "gateways")
        if isinstance(gateways, list):
            claims.append(("gateway", gateways, ("spec", "gateways")))
        if item in facts.gateway_files:
            claims.append(("gateway", facts.gateway_files[item][0], None))
        ports = item.get("spec", "ports")
        if isinstance(ports, list):
            claims.append(("port", ports, ("spec", "ports")))
        for what, values, path in claims:
            owners = taken.setdefault((campaign, what), {})
            for index, value in enumerate(values):
                first = owners.setdefault(value, item)
                if first is item:
                    continue
                message = f"{what} `{value}` is already assigned to campaign `{campaign}` by GatewayAssignment `{first.name}`"
                if path is not None:
                    report.error(item, path + (index,), f"{dotted(path + (index,))}: {message}")
                else:  # from the gateway file: point at its line
                    listed = facts.files[(item, ("spec", "gatewaysFile"))]
                    line = facts.gateway_files[item][1][index]
                    report.add(Diagnostic(message, listed.display, line, 1, resource=item.key))


def _check_schedule_overlaps(items: list[Declared], names: Names, report: Report) -> None:
    """Per campaign one active period and one set of quiet hours; per campaign and assignment one of
    each window."""
    taken: dict[tuple[str, str, str], Declared] = {}
    for item in items:
        if item.kind is not Kind.SCHEDULE or item.name is None or not item.checkable:
            continue
        if names.by_kind[Kind.SCHEDULE].get(item.name) is not item:
            continue
        campaign = item.get("spec", "campaign")
        if not isinstance(campaign, str):
            continue
        assignment = item.get("spec", "assignment")
        for field in ("download", "activation", "execution", "active", "quietHours"):
            if field not in item.spec:
                continue
            scope = assignment if field in ("download", "activation", "execution") and isinstance(assignment, str) else ""
            first = taken.setdefault((campaign, scope, field), item)
            if first is not item:
                whom = f"campaign `{campaign}`" + (f" and assignment `{scope}`" if scope else "")
                report.error(item, ("spec", field), f"spec.{field}: {whom} already has `{field}` in Schedule "
                             f"`{first.name}` ({report.where(first, ('spec', field))})", at_key=True)
