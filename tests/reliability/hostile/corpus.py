"""The whole hostile corpus: the valid base plus every broken case made from it."""

from __future__ import annotations

from tests.reliability.hostile import mutations, raw
from tests.reliability.hostile.base import HostileCase, Urls, base_files


def build_corpus(urls: Urls, ca_pem: bytes) -> tuple[dict[str, bytes], list[HostileCase]]:
    """The base repository's files and the cases; case names are unique."""
    cases = [*mutations.all_cases(urls), *raw.all_cases(urls)]
    names = [case.name for case in cases]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"duplicate case names: {duplicated}")
    return base_files(urls, ca_pem), cases
