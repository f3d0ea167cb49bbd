"""Secret references and redaction.

Secrets are never written in YAML: a field holds ``{env: NAME}`` or ``{file: PATH}`` and is resolved
at connect time. A resolved value is wrapped in ``SecretValue`` (its repr is ``'***'``) and registered
with the run's ``Redactor``, which scrubs every log event, error text and rendered plan.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import SecretError

REDACTED = "***"


@dataclass(frozen=True)
class SecretRef:
    """Where a secret comes from: exactly one of ``env`` (a variable name) or ``file`` (a path)."""

    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        """A safe, human-readable name of the reference (never the value)."""
        return f"env:{self.env}" if self.env is not None else f"file:{self.file}"


class SecretValue:
    """A resolved secret. ``str()`` and ``repr()`` never show it; ``reveal()`` does, on purpose."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass
class Redactor:
    """Knows the secret values of this run and replaces them in any text."""

    values: set[str] = field(default_factory=set)

    def register(self, secret: SecretValue) -> SecretValue:
        if len(secret.reveal()) >= 3:  # shorter values would redact ordinary text
            self.values.add(secret.reveal())
        return secret

    def scrub(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        return text


def resolve_secret(
    ref: SecretRef,
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
) -> SecretValue:
    """Resolve ``ref`` to its value; ``file`` paths are relative to ``base_dir``.

    Raises ``SecretError`` naming the reference (never the value) when it cannot be resolved.
    """
    env = os.environ if environ is None else environ
    if ref.env is not None:
        if ref.env not in env:
            raise SecretError(f"secret {ref.describe()}: environment variable {ref.env} is not set")
        value = env[ref.env]
    elif ref.file is not None:
        path = (base_dir / ref.file).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"secret {ref.describe()}: cannot read {path}: {exc.__class__.__name__}") from exc
    else:
        raise SecretError("secret reference names neither env nor file")
    secret = SecretValue(value)
    if redactor is not None:
        redactor.register(secret)
    return secret
