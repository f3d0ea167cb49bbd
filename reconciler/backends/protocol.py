"""The small protocol every backend adapter implements.

A backend is one adapter module exposing a ``BackendAdapter``: its ``traits`` (data the planner reads),
a ``Reader`` (observe everything the planner needs, with the fewest requests the API allows) and a
``Writer`` (perform one action). A dry run only ever constructs Readers, so it cannot write.
Adding a fifth backend means one package (``reconciler/backends/<name>/``: adapter, and a
``BackendDescriptor`` in its ``__init__``), one simulator package and one registry line
(``reconciler.backends.registry``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from reconciler.actions import Action
from reconciler.backends.exported import ExportResult
from reconciler.model import BackendSpec, DesiredState
from reconciler.backends.sessions import BackendSessions
from reconciler.observed import BackendObservation
from reconciler.secrets import Redactor
from reconciler.traits import BackendTraits as BackendTraits  # where adapters have always found it


# --- the size of one SMS ------------------------------------------------------------------------

#: GSM 03.38 default alphabet (one septet each) and its extension table (two septets: escape + char).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


def sms_segments(text: str, encoding: str | None = None) -> int:
    """How many SMS segments ``text`` takes: GSM 7-bit (160 septets alone, 153 per part; extension
    characters take two) when ``encoding`` is ``gsm-7bit`` or, without one, when every character is in
    the GSM alphabet; otherwise UCS-2 (70 UTF-16 code units alone, 67 per part)."""
    if encoding != "unicode" and (encoding == "gsm-7bit" or all(c in GSM_BASIC or c in GSM_EXTENSION for c in text)):
        units, single, per_part = len(text) + sum(1 for c in text if c in GSM_EXTENSION), 160, 153
    else:
        units, single, per_part = len(text) + sum(1 for c in text if c > "\uffff"), 70, 67
    return 1 if units <= single else -(-units // per_part)


@dataclass(frozen=True)
class MessageBound:
    """The largest message an SMS backend is given for one recipient, as rendered (``#param#`` filled):
    characters, UTF-8 bytes and SMS segments. ``template_sent``: the backend receives the text with its
    placeholders and fills them itself (the SMS gateway), so the text as written must fit too."""

    max_chars: int
    max_bytes: int
    max_segments: int
    template_sent: bool = False

    def problem(self, text: str, encoding: str | None = None) -> str | None:
        """Why ``text`` does not fit (a phrase such as ``is 2,000 UTF-8 bytes long; at most 1,500 fit``),
        or None when it fits. Cheap for texts that fit: segments are counted only when they could matter."""
        chars = len(text)
        if chars > self.max_chars:
            return f"is {chars:,} characters long; at most {self.max_chars:,} fit"
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            return f"holds U+{ord(text[exc.start]):04X}, a lone surrogate, which cannot be encoded as UTF-8"
        if size > self.max_bytes:
            return f"is {size:,} UTF-8 bytes long; at most {self.max_bytes:,} fit"
        if -(-min(size, 2 * chars) // 67) > self.max_segments:  # UTF-16 units and septets are at most this
            segments = sms_segments(text, encoding)
            if segments > self.max_segments:
                return f"takes {segments:,} SMS segments; at most {self.max_segments:,} fit"
        return None

    def fits_every(self, chars: int, size: int) -> bool:
        """Whether every text of at most ``chars`` characters and ``size`` UTF-8 bytes fits (a quick
        check that spares looking at each message when none can be too long)."""
        return (chars <= self.max_chars and size <= self.max_bytes
                and -(-min(size, 2 * chars) // 67) <= self.max_segments)

    def __str__(self) -> str:
        return f"{self.max_chars:,} characters, {self.max_bytes:,} UTF-8 bytes and {self.max_segments:,} SMS segments"


RequestObserver = Callable[[str, str, str], None]  # (backend, method, status or error) per request sent


@dataclass(frozen=True)
class ConnectContext:
    """What an adapter needs to connect: the repository root (for ``{file:}`` secrets and package
    files), the environment (for ``{env:}`` secrets), the run's redactor, and who to tell about each
    request sent (metrics); adapters pass ``on_request`` on to ``BackendHttp``."""

    root: Path
    environ: Mapping[str, str]
    redactor: Redactor
    on_request: RequestObserver | None = None
    #: called before a request that may change a backend, with the longest it can take: the writer
    #: lease's guard (``WriterLease.ensure_time``), so a writer that lost its lease sends nothing
    before_write: Callable[[float], None] | None = None
    #: the pass's clients, one per backend shared by its reader, writer and sender (None: one per role)
    sessions: BackendSessions | None = None


@runtime_checkable
class Reader(Protocol):
    """Reads one backend. Never writes."""

    async def observe(self, desired: DesiredState) -> BackendObservation:
        """Everything the planner needs about this backend for ``desired`` (only what it declares)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Writer(Protocol):
    """Performs one action against one backend and returns what it produced (e.g. a new id)."""

    async def apply(self, action: Action) -> Mapping[str, Any]:
        """Perform ``action`` (all ``Produced`` references already substituted). Raises a
        ``BackendError`` subclass on failure."""
        ...

    async def aclose(self) -> None: ...


class BackendAdapter(Protocol):
    """The module-level entry point of one adapter (see ``reconciler.backends.registry``). Optional:
    ``exporter(spec, ctx) -> Exporter`` for ``reconcile import`` (see ``exporter_for``)."""

    traits: BackendTraits

    def reader(self, spec: BackendSpec, ctx: ConnectContext) -> Reader: ...

    def writer(self, spec: BackendSpec, ctx: ConnectContext) -> Writer: ...


# --- import (``reconcile import``): what exists in a backend, as declarations -------------------


@runtime_checkable
class Exporter(Protocol):
    """Turns what a backend has and ``desired`` does not declare into declarations. ``observation`` is what
    the backend's Reader saw; the exporter may ask for more (a campaign's gateways). Never writes."""

    async def export(self, desired: DesiredState, observation: BackendObservation) -> ExportResult: ...

    async def aclose(self) -> None: ...


def exporter_for(adapter: BackendAdapter, spec: BackendSpec, ctx: ConnectContext) -> Exporter | None:
    """The adapter's exporter (its optional ``exporter(spec, ctx)`` method); None, the default, means the
    backend has nothing to import (its API lists no campaigns or packages)."""
    make = getattr(adapter, "exporter", None)
    if make is None:
        return None
    exporter: Exporter = make(spec, ctx)
    return exporter


class SmsBackendAdapter(BackendAdapter, Protocol):
    """An adapter of a backend that sends SMS also builds the sender the send-ledger engine uses."""

    def sms_sender(self, spec: BackendSpec, ctx: ConnectContext) -> "SmsSender": ...


# --- SMS sending (used by the send-ledger engine, never by the planner) -------------------------


class SmsFate(StrEnum):
    """What a backend says (or the transport proves) became of one message."""

    ACCEPTED = "accepted"  # taken by the backend (queued, or sent where the backend cannot tell)
    SENT = "sent"  # left the backend; delivery not reported (yet)
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"  # refused or failed for good
    UNKNOWN = "unknown"  # the request may have taken effect; no reply
    NOT_SENT = "not-sent"  # provably never reached the backend (may be sent again)


@dataclass(frozen=True)
class OutgoingSms:
    """One message: ``key`` is the ledger row id (the idempotency key), ``params`` fill ``#param#``."""

    key: int
    number: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmsReceipt:
    """The fate of one message after a send or a query; ``remote_id`` is the backend's id or task."""

    key: int
    fate: SmsFate
    remote_id: str = ""
    reason: str = ""


@runtime_checkable
class SmsSender(Protocol):
    """Sends SMS for the engine. ``max_batch`` messages per request; ``in_flight`` requests at once
    (each in-flight message of a backend that cannot be queried becomes ``unknown`` after a crash, so
    such backends keep it at 1); ``can_query`` says whether ``query`` can resolve a key."""

    max_batch: int
    in_flight: int
    can_query: bool

    async def send(self, text: str, batch: Sequence[OutgoingSms], *, sender: str | None, carrier: str | None,
                   ports: tuple[int, ...], encoding: str | None, reports: bool) -> list[SmsReceipt]: ...

    async def query(self, keys: Sequence[int]) -> list[SmsReceipt]:
        """Fates of ``keys`` the backend knows; a key it does not know is absent from the result."""
        ...

    async def stop_tasks(self, task_ids: Sequence[str]) -> None: ...

    async def aclose(self) -> None: ...
