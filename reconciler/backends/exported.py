"""What ``reconcile import`` gets from a backend's exporter: its objects as declarations, as plain data.

An exporter (``protocol.Exporter``) knows its backend: which objects are not declared yet, how each maps to
our YAML, and which names must stay as they are. The importer (``reconciler.engine.importer``) knows
nothing of any backend: it chooses the final names (a reference between exported resources is an
``ExportRef`` until then), lays out and writes the files, validates them and records the adoptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import Kind


@dataclass(frozen=True)
class ExportRef:
    """A reference, inside an exported spec, to another resource of the same export (``ExportedResource.ref``):
    the importer replaces it with that resource's final name, which only it can choose."""

    ref: str


@dataclass(frozen=True)
class ExportedAttachment:
    """A file a resource names in ``spec[field]`` (a package's file): its bytes when the backend can give
    them, otherwise a placeholder text saying why (``placeholder`` true). The importer chooses the path and
    writes it into ``spec[field]`` (put ``None`` there to choose where the field stands). The bytes are held
    in memory: fine for placeholders; a backend that can download large files needs a stream here first."""

    field: str
    content: bytes
    placeholder: bool
    suffix: str = ""  # e.g. ".bin"; letters and digits only, else dropped


@dataclass(frozen=True)
class Adoption:
    """An inventory entry the importer records once the files are written (``kind``: "campaign" or
    "package"); ``name`` None means the resource's final name."""

    kind: str
    remote_id: str
    name: str | None = None


@dataclass(frozen=True)
class ExportedResource:
    """One object of a backend as a declaration. ``name_from`` is the backend's name for it; with ``exact``
    the declared name must be that name unchanged (the backend object is matched by name), otherwise the
    importer makes a valid, unique name from it (``fallback`` when nothing usable is left). ``spec`` holds
    plain YAML data and ``ExportRef``; ``comments`` are written above the document; ``summary`` is what the
    command prints about it."""

    ref: str
    kind: Kind
    name_from: str
    spec: Mapping[str, Any]
    exact: bool = False
    fallback: str = ""
    comments: tuple[str, ...] = ()
    summary: str = ""
    attachment: ExportedAttachment | None = None
    adoptions: tuple[Adoption, ...] = ()


@dataclass(frozen=True)
class ExportResult:
    """What one backend has that is not declared: ``resources`` in dependency order (a resource follows
    those it refers to), and ``skipped``: one line per object that could not be imported, saying why."""

    resources: tuple[ExportedResource, ...] = ()
    skipped: tuple[str, ...] = ()
