"""Secret references and redaction.

Secrets are never written in YAML: a field holds ``{env: NAME}`` or ``{file: PATH}`` and is resolved
at connect time. A resolved value is wrapped in ``SecretValue`` (its repr is ``'***'``) and registered
with the run's ``Redactor``, which scrubs every log event, error text and rendered plan.

A secret is scrubbed in every form it takes on the wire or in an echo of it (``secret_forms``): as is,
JSON- and HTML-escaped, percent-encoded (``quote``, ``quote_plus``, every byte, upper and lower case
hex), Base64 (standard and URL-safe, with and without padding) of the secret alone and of
``user:secret`` for a login registered with its user name, and the stretch of Base64 that the secret
becomes wherever it sits inside other Base64 (so ``Basic`` credentials of any user name). Text that a
backend sent back (``Redactor.scrub_reply``: error bodies, which some servers fill with the request's
headers) is also scrubbed by name: the value of any header or field whose name says it holds a credential
(``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``X-Authentication``, ``Mobile-API-Secret``, a
configured auth header, and any name with ``auth``, ``token``, ``secret``, ``pass``, ``credential``,
``session``, ``cookie``, ``signature``, ``private`` in it or ending in ``key``: as ``Name: value`` in free
text only hyphenated header names such as ``X-Api-Key`` count, since ``BAD_SIGNATURE: ...`` is an error
code), whether it appears as ``Name: value``, ``"name": "value"``, ``name=value`` or ``<name>value</name>``.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

from reconciler.errors import SecretError

REDACTED = "***"
MIN_SECRET = 3  # shorter values would redact ordinary text
MIN_BASE64_STRETCH = 8  # a Base64 stretch shorter than this (a secret under 6 bytes) would too
SENSITIVE_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-authentication",
                             "mobile-api-secret"})
SENSITIVE_PARTS = ("auth", "token", "secret", "pass", "credential", "session", "cookie", "signature", "private")
_NAME = r"[A-Za-z][A-Za-z0-9_.-]*"
#: ``Name: value`` (a header line, or headers run together on one line): the value ends at a line end or
#: where the next ``Name:`` starts
_HEADER_STYLE = re.compile(rf"(?<![A-Za-z0-9_.-])({_NAME})([ \t]*:[ \t]*)((?:(?![ \t]+{_NAME}:[ \t])[^\r\n])*)")
#: ``"name": "value"`` (JSON, Python reprs; also ``'name' => 'value'`` and a value in a list)
_QUOTED_STYLE = re.compile(rf"""(["'])({_NAME})\1(\s*(?:[:=]|=>)\s*\[?\s*)(["'])((?:\\.|(?!\4)[^\\])*)\4""")
#: ``name=value`` (query strings, forms, cookies)
_ASSIGN_STYLE = re.compile(rf"(?<![A-Za-z0-9_.-])({_NAME})(=)([^&\s\"'<>;,]*)")
#: ``<name>value</name>``
_XML_STYLE = re.compile(rf"<({_NAME})(\s[^<>]*)?>([^<]*)</\1\s*>")


def sensitive_name(name: str, extra: Iterable[str] = (), *, header: bool = False) -> bool:
    """Whether a header or field called ``name`` holds a credential (``extra``: more such names). With
    ``header`` (``Name: value`` in free text, where a word before a colon is often an error code such as
    ``BAD_SIGNATURE:``), only the listed names and hyphenated header names (``X-Auth-Token``) count."""
    lowered = name.lower()
    if lowered in SENSITIVE_NAMES or lowered in extra:
        return True
    if header and ("-" not in lowered or "_" in lowered):
        return False
    lowered = lowered.replace("_", "-")
    return lowered.endswith("key") or any(part in lowered for part in SENSITIVE_PARTS)


def _base64_forms(data: bytes) -> set[str]:
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(data).decode("ascii")
        forms |= {text, text.rstrip("=")}
    return forms


def _base64_stretches(data: bytes) -> set[str]:
    """The Base64 characters that depend on ``data`` alone, for each of the three offsets at which it can
    sit inside longer Base64 input (standard and URL-safe alphabets)."""
    forms = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        first = 1 if offset else 0  # the first group mixes in what came before
        last = (offset + len(data)) // 3  # groups after this one mix in what comes after
        stretch = encoded[4 * first:4 * last]
        if len(stretch) >= MIN_BASE64_STRETCH:
            forms |= {stretch, stretch.replace("+", "-").replace("/", "_")}
    return forms


def _percent_forms(value: str) -> set[str]:
    raw = value.encode("utf-8")
    forms = {quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/"),
             "".join(f"%{byte:02X}" for byte in raw)}
    return forms | {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in forms}


def secret_forms(value: str, *, user: str | None = None) -> set[str]:
    """Every form of ``value`` to scrub (see the module); with ``user``, also its login's Base64."""
    forms: set[str] = set()
    if len(value) >= MIN_SECRET:
        raw = value.encode("utf-8")
        forms |= {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], html.escape(value),
                  html.escape(value, quote=False)}
        forms |= _percent_forms(value) | _base64_forms(raw) | _base64_stretches(raw)
    if user is not None and value:
        forms |= _base64_forms(f"{user}:{value}".encode())
    return {form for form in forms if len(form) >= MIN_SECRET}


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
    """Knows the secret values of this run and replaces them, in every form, in any text."""

    values: set[str] = field(default_factory=set)
    #: (user, secret) of logins sent as HTTP Basic credentials
    logins: set[tuple[str, str]] = field(default_factory=set)
    #: header names that carry a secret beyond ``SENSITIVE_NAMES`` (lower case), e.g. a configured auth header
    header_names: set[str] = field(default_factory=set)
    _forms: list[str] = field(default_factory=list, init=False, repr=False)
    _known: tuple[frozenset[str], frozenset[tuple[str, str]]] | None = field(default=None, init=False, repr=False)

    def register(self, secret: SecretValue, *, user: str | None = None) -> SecretValue:
        """Scrub ``secret`` from now on; with ``user``, also the Basic credentials ``user:secret``."""
        if len(secret.reveal()) >= MIN_SECRET:
            self.values.add(secret.reveal())
        if user is not None and secret.reveal():
            self.logins.add((user, secret.reveal()))
        return secret

    def register_header(self, name: str) -> None:
        """A request header of ours that carries a secret: its value is scrubbed from replies by name."""
        self.header_names.add(name.lower())

    def scrub(self, text: str) -> str:
        """``text`` with every form of every secret replaced by ``***``."""
        for form in self._all_forms():
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def scrub_reply(self, text: str) -> str:
        """Text a backend sent (an error body): credential-named values scrubbed, then every secret."""
        extra = self.header_names

        def hide(name: int, group: int, *, header: bool = False) -> Callable[[re.Match[str]], str]:
            def replace(match: re.Match[str]) -> str:
                if not match.group(group) or not sensitive_name(match.group(name), extra, header=header):
                    return match.group(0)
                start, end = match.span(group)
                whole = match.group(0)
                return whole[:start - match.start()] + REDACTED + whole[end - match.start():]
            return replace

        if ":" in text or "=" in text:
            text = _HEADER_STYLE.sub(hide(1, 3, header=True), text) if ":" in text else text
            text = _QUOTED_STYLE.sub(hide(2, 5), text)
            text = _ASSIGN_STYLE.sub(hide(1, 3), text) if "=" in text else text
        if "</" in text:
            text = _XML_STYLE.sub(lambda m: _hide_xml(m, extra), text)
        return self.scrub(text)

    def _all_forms(self) -> list[str]:
        known = (frozenset(self.values), frozenset(self.logins))
        if known != self._known:
            forms: set[str] = set()
            for value in self.values:
                forms |= secret_forms(value)
            for user, value in self.logins:
                forms |= secret_forms(value, user=user)
            self._forms = sorted(forms, key=len, reverse=True)  # longest first: a form inside another goes last
            self._known = known
        return self._forms


def _hide_xml(match: re.Match[str], extra: Iterable[str]) -> str:
    if not match.group(3) or not sensitive_name(match.group(1), extra):
        return match.group(0)
    return f"<{match.group(1)}{match.group(2) or ''}>{REDACTED}</{match.group(1)}>"


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
