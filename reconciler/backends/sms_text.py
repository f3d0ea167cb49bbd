"""Filling ``#param#`` placeholders, the same way for every SMS backend that needs it done client-side."""

from __future__ import annotations

PLACEHOLDER = "#param#"


def render_text(template: str, params: tuple[str, ...]) -> str:
    """Replace the n-th ``#param#`` with the n-th parameter (a missing one becomes empty)."""
    parts = template.split(PLACEHOLDER)
    out = [parts[0]]
    for index, part in enumerate(parts[1:]):
        out.append(params[index] if index < len(params) else "")
        out.append(part)
    return "".join(out)
