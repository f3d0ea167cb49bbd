"""The small protocol every backend adapter implements.

A backend is one adapter module exposing a ``BackendAdapter``: its ``traits`` (data the planner reads),
a ``Reader`` (observe everything the planner needs, with the fewest requests the API allows) and a
``Writer`` (perform one action). A dry run only ever constructs Readers, so it cannot write.
Adding a fifth backend means one adapter module, one simulator module and one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from reconciler.actions import Action, Verb
from reconciler.model import BackendSpec, BackendType, DesiredState
from reconciler.observed import BackendObservation
from reconciler.secrets import Redactor


@dataclass(frozen=True)
class BackendTraits:
    """What the planner needs to know about a backend type, as data.

    - ``verbs``: the writes this backend supports.
    - ``replace_fields``: declared fields whose change cannot be applied in place once the campaign is
      started (the planner plans a replace, gated by ``--allow-replace``).
    - ``editable_states``: campaign states in which an in-place edit is accepted.
    - ``approval_states``: states that need an approve before start.
    - ``write_only``: what cannot be read back (remembered in the state store).
    - ``batch_limits``: the largest batch per request, by verb value.
    - ``creates_campaigns``: false where campaigns are created elsewhere and adopted by id.
    - ``sms_queryable``: the backend can be asked what became of a message sent with our key.
    """

    type: BackendType
    verbs: frozenset[Verb] = frozenset()
    replace_fields: frozenset[str] = frozenset()
    editable_states: frozenset[str] = frozenset()
    approval_states: frozenset[str] = frozenset()
    write_only: frozenset[str] = frozenset()
    batch_limits: Mapping[str, int] = field(default_factory=dict)
    creates_campaigns: bool = True
    sms_queryable: bool = False


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
    """The module-level entry point of one adapter (see ``reconciler.backends.registry``)."""

    traits: BackendTraits

    def reader(self, spec: BackendSpec, ctx: ConnectContext) -> Reader: ...

    def writer(self, spec: BackendSpec, ctx: ConnectContext) -> Writer: ...


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
