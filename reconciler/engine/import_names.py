"""The names ``reconcile import`` gives the resources it writes: valid, unique per kind, never one that the
repository already declares.

An object that its backend matches by name (``ExportedResource.exact``) keeps that name or is not imported;
any other takes a name made from the backend's: ASCII lower case, every run of other characters one ``-``,
at most 63 characters, and ``-2``, ``-3``... when taken. Such a name is also safe as a file name: it can
hold no path separator, dot or control character.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from reconciler.model import DesiredState, Kind

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")  # the schemas' resource name
MAX_NAME = 63
INVALID_EXACT = ("its name is not a valid resource name (lowercase letters, digits and '-', at most 63 characters), "
                 "and this backend finds the object by its name: rename it in the backend{suggestion}, then import "
                 "again")


def declared_names(desired: DesiredState) -> dict[Kind, set[str]]:
    """Every name the repository declares, per kind."""
    return {Kind.BACKEND: set(desired.backends), Kind.PACKAGE: set(desired.packages),
            Kind.CAMPAIGN: set(desired.campaigns), Kind.GATEWAY_ASSIGNMENT: set(desired.assignments),
            Kind.SCHEDULE: set(desired.schedules)}


def name_from(text: str) -> str:
    """A valid resource name made from ``text`` ('' when nothing usable is left): accents dropped
    (``Mise à jour`` is ``mise-a-jour``), lower case, every run of other characters one ``-``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:MAX_NAME].rstrip("-")


class NameBook:
    """The names taken so far, per kind (the declared ones first); claims are granted in call order, so
    the same backends and declarations always give the same names."""

    def __init__(self, taken: Mapping[Kind, Iterable[str]]) -> None:
        self._taken: dict[Kind, set[str]] = {kind: set(names) for kind, names in taken.items()}

    def claim_exact(self, kind: Kind, name: str) -> str:
        """Take ``name`` unchanged; '' when granted, otherwise why it cannot be."""
        if len(name) > MAX_NAME or NAME.match(name) is None:
            suggested = name_from(name)
            return INVALID_EXACT.format(suggestion=f" (to {suggested}, say)" if suggested else "")
        taken = self._taken.setdefault(kind, set())
        if name in taken:
            return (f"{kind.value} {name} is already declared in the repository or imported from another backend "
                    "(names are unique per kind), and this backend finds the object by its name: rename one of them")
        taken.add(name)
        return ""

    def claim_derived(self, kind: Kind, text: str, fallback: str) -> str:
        """A free name made from ``text`` (from ``fallback``, then ``kind``, when nothing usable is left)."""
        base = name_from(text) or name_from(fallback) or name_from(kind.value)
        taken = self._taken.setdefault(kind, set())
        name, number = base, 1
        while name in taken:  # ends: each step tries a name not tried before, and only finitely many are taken
            number += 1
            suffix = f"-{number}"
            name = base[:MAX_NAME - len(suffix)].rstrip("-") + suffix
        taken.add(name)
        return name
