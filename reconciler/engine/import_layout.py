"""How the resources that exporters found become files: final names (``import_names``), references
resolved, one file per resource (``import_files``) and the inventory entries to record.

Names that a backend matches by (``exact``) are claimed first, so no made-up name can take one; a resource
whose name is refused is skipped, and so is every resource that refers to a skipped one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from reconciler.backends.exported import ExportedResource, ExportRef, ExportResult
from reconciler.engine.import_files import (
    PlannedFile,
    attachment_path,
    document_path,
    render_document,
    schema_reference,
)
from reconciler.engine.import_names import NameBook, declared_names
from reconciler.escape import escape
from reconciler.model import DesiredState
from reconciler.state.store import InventoryEntry, StoreView


@dataclass
class Exported:
    """What the exporters returned, per backend name (sorted), and what the backends without one said."""

    results: dict[str, ExportResult] = field(default_factory=dict)
    silent: dict[str, str] = field(default_factory=dict)  # backend -> why it has nothing to import
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """The files to write, the adoptions to record once they are written, what was skipped and why, and one
    line per backend."""

    files: tuple[PlannedFile, ...]
    adoptions: tuple[InventoryEntry, ...]
    skipped: tuple[str, ...]
    backends: tuple[str, ...]


Key = tuple[str, str]  # (backend, ExportedResource.ref)
MANAGED = ("this tool manages it (the state store's inventory has it) and it was removed from git: --prune stops "
           "or deletes it; declare it again to keep it")


def lay_out(found: Exported, desired: DesiredState, *, out: Path, root: Path,
            inventory: StoreView = StoreView(available=False)) -> Layout:
    """Names, files and inventory entries for what the exporters found. An object the ``inventory`` already
    holds is managed by this tool and was removed from git on purpose: it is not imported again."""
    book = NameBook(declared_names(desired))
    entries = [(backend, r) for backend, result in found.results.items() for r in result.resources]
    names, refused = _exact_names(entries, book)
    skipped = [f"{backend}: {line}" for backend, result in found.results.items() for line in result.skipped]
    kept: list[tuple[str, ExportedResource]] = []
    for backend, resource in entries:  # in order: what a resource refers to is decided before it
        why = refused.get((backend, resource.ref)) or _refusal(backend, resource, names, inventory)
        if why:
            names.pop((backend, resource.ref), None)  # what refers to it is refused in turn
            skipped.append(f"{backend}: {resource.kind.value} {resource.name_from!r}: {why}")
            continue
        if not resource.exact:
            names[(backend, resource.ref)] = book.claim_derived(resource.kind, resource.name_from, resource.fallback)
        kept.append((backend, resource))
    files: list[PlannedFile] = []
    adoptions: list[InventoryEntry] = []
    for backend, resource in kept:
        name = names[(backend, resource.ref)]
        files += _files_of(resource, name, _resolved(resource.spec, backend, names), out=out, root=root)
        adoptions += [InventoryEntry(backend, a.kind, a.name or name, a.remote_id) for a in resource.adoptions]
    return Layout(tuple(files), tuple(adoptions), tuple(skipped), _backend_lines(found, kept, skipped))


def _exact_names(entries: Sequence[tuple[str, ExportedResource]], book: NameBook) -> tuple[dict[Key, str],
                                                                                          dict[Key, str]]:
    """Claim every name a backend matches by, before any made-up one: the names granted, and why the others
    were refused."""
    names: dict[Key, str] = {}
    refused: dict[Key, str] = {}
    for backend, resource in entries:
        if resource.exact:
            why = book.claim_exact(resource.kind, resource.name_from)
            if why:
                refused[(backend, resource.ref)] = why
            else:
                names[(backend, resource.ref)] = resource.name_from
    return names, refused


def _refusal(backend: str, resource: ExportedResource, names: Mapping[Key, str], inventory: StoreView) -> str:
    """Why ``resource`` is not imported ('' when it is): the inventory holds it, or it refers to a resource
    that is not imported."""
    if resource.adoptions and all(inventory.owns(backend, a.kind, a.remote_id) for a in resource.adoptions):
        return MANAGED
    if not _encodable(resource.spec):
        return "it holds text that is not valid Unicode (a lone surrogate), which no YAML file can hold"
    if any((backend, ref) not in names for ref in _refs(resource.spec)):
        return "not imported, since what it refers to is not"
    return ""


def _files_of(resource: ExportedResource, name: str, spec: dict[str, Any], *, out: Path,
              root: Path) -> list[PlannedFile]:
    path = document_path(resource.kind, name)
    files = []
    attachment = resource.attachment
    if attachment is not None:
        attached = attachment_path(resource.kind, name, placeholder=attachment.placeholder, suffix=attachment.suffix)
        spec[attachment.field] = PurePosixPath(os.path.relpath(attached, path.parent)).as_posix()
        files.append(PlannedFile(attached, attachment.content, summary=f"the file of {resource.kind.value}/{name}"
                                 + (" (a placeholder)" if attachment.placeholder else ""),
                                 placeholder=attachment.placeholder))
    schema = schema_reference(resource.kind, out / path, root)
    content = render_document(resource.kind, name, spec, resource.comments, schema)
    return [PlannedFile(path, content, f"{resource.kind.value}/{name}", resource.summary), *files]


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, ExportRef):
        yield value.ref
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _refs(item)


def _encodable(value: Any) -> bool:
    """Whether every string in ``value`` can be written as UTF-8 (JSON lets a backend send a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, Mapping):
        return all(_encodable(key) and _encodable(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return all(_encodable(item) for item in value)
    return True


def _resolved(value: Any, backend: str, names: Mapping[tuple[str, str], str]) -> Any:
    """``value`` with every ``ExportRef`` replaced by the final name of what it refers to."""
    if isinstance(value, ExportRef):
        return names[(backend, value.ref)]
    if isinstance(value, Mapping):
        return {key: _resolved(item, backend, names) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_resolved(item, backend, names) for item in value]
    return value


def _backend_lines(found: Exported, kept: Sequence[tuple[str, ExportedResource]],
                   skipped: Sequence[str]) -> tuple[str, ...]:
    """Per backend: how many resources of each kind it gives, and how many of its objects were skipped."""
    lines = []
    for backend in sorted({*found.results, *found.silent}):
        if backend in found.silent:
            lines.append(f"{backend}: {found.silent[backend]}")
            continue
        counts: dict[str, int] = {}
        for owner, resource in kept:
            if owner == backend:
                counts[resource.kind.value] = counts.get(resource.kind.value, 0) + 1
        what = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "nothing that is not declared"
        left = sum(1 for line in skipped if line.startswith(f"{backend}: "))
        lines.append(f"{backend}: {what}" + (f"; {left} skipped" if left else ""))
    return tuple(lines)
