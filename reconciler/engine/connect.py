"""Opening what a pass works with: the state store, one adapter per declared Backend (secrets resolved here,
failures as diagnostics: a secret that cannot be resolved is a problem of that backend, reported with its
name) and the SMS senders, built on first use. ``OpenPass`` closes them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.backends.protocol import BackendTraits, ConnectContext, Reader, SmsSender, Writer
from reconciler.backends.registry import adapter_for
from reconciler.backends.sessions import BackendSessions
from reconciler.diagnostics import Diagnostic
from reconciler.engine.store_access import open_writer, request_bound
from reconciler.errors import ReconcilerError
from reconciler.model import BackendSpec, DesiredState, Kind, ResourceKey
from reconciler.state.store import Store, open_store


@dataclass
class Connections:
    """Readers (always) and writers (only when applying) by backend name."""

    traits: dict[str, BackendTraits] = field(default_factory=dict)
    readers: dict[str, Reader] = field(default_factory=dict)
    writers: dict[str, Writer] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    async def aclose(self) -> None:
        clients: list[Reader | Writer] = [*self.readers.values(), *self.writers.values()]
        for client in clients:
            await client.aclose()


def connect(desired: DesiredState, ctx: ConnectContext, *, with_writers: bool) -> Connections:
    """Build a Reader (and a Writer when ``with_writers``) for every declared backend."""
    conns = Connections()
    for name in sorted(desired.backends):
        spec = desired.backends[name]
        adapter = adapter_for(spec.type)
        conns.traits[name] = adapter.traits
        try:
            conns.readers[name] = adapter.reader(spec, ctx)
            if with_writers:
                conns.writers[name] = adapter.writer(spec, ctx)
        except ReconcilerError as exc:
            where = spec.source
            conns.diagnostics.append(Diagnostic(
                message=f"backend {name}: {ctx.redactor.scrub(str(exc))}",
                file=where.file if where else "", line=where.line if where else 0, col=where.col if where else 0,
                resource=str(ResourceKey(Kind.BACKEND, name))))
    return conns


def open_pass_store(state_url: str | None, *, dry_run: bool, base_dir: Path,
                    desired: DesiredState | None = None) -> Store | None:
    """The store of one pass, or None: without a URL there is none, and a dry run never creates a store that
    does not exist yet; an apply holds the writer lease (refused at once when another writer has it: the
    CLI and the daemon open the store themselves, with ``--lock-timeout``, and pass it in)."""
    if state_url is None:
        return None
    if dry_run:
        return open_store(state_url, base_dir=base_dir, writer=False)
    return open_writer(state_url, base_dir=base_dir, command="reconcile apply", bound=request_bound(desired))


def sms_sender_for(spec: BackendSpec, ctx: ConnectContext, *, queryable_only: bool = False) -> SmsSender | None:
    """A new SMS sender for the backend ``spec`` declares; None for a backend that sends no SMS, and with
    ``queryable_only`` for one that cannot be asked what became of a message (its secret is then not even
    resolved)."""
    adapter = adapter_for(spec.type)
    make = getattr(adapter, "sms_sender", None)
    if make is None or (queryable_only and not adapter.traits.sms_queryable):
        return None
    sender: SmsSender = make(spec, ctx)
    return sender


class SmsSenders:
    """The SMS senders of one pass, built on first use and closed with the pass: a pass that neither sends
    nor asks about sent messages resolves no sender's secret."""

    def __init__(self, desired: DesiredState, ctx: ConnectContext) -> None:
        self._desired = desired
        self._ctx = ctx
        self._built: dict[str, SmsSender] = {}

    @property
    def built(self) -> Mapping[str, SmsSender]:
        """The senders built so far, by backend name."""
        return self._built

    def get(self, backend: str) -> SmsSender | None:
        """The sender of ``backend`` (None for a backend that sends no SMS)."""
        return self._sender(backend, queryable_only=False)

    def queryable(self, backend: str) -> SmsSender | None:
        """The sender of ``backend`` if it can be asked what became of a sent message (a pass reads delivery
        states every time, so one that cannot be asked is never built for it)."""
        return self._sender(backend, queryable_only=True)

    def _sender(self, backend: str, *, queryable_only: bool) -> SmsSender | None:
        if backend not in self._built:
            sender = sms_sender_for(self._desired.backends[backend], self._ctx, queryable_only=queryable_only)
            if sender is None:
                return None
            self._built[backend] = sender
        return self._built[backend]

    async def aclose(self) -> None:
        for sender in self._built.values():
            await sender.aclose()
        self._built.clear()


@dataclass
class OpenPass:
    """What one pass opened: its backends' connections, its SMS senders and its store (closed with the pass
    only when the pass opened it: the daemon's store outlives its passes)."""

    conns: Connections
    senders: SmsSenders
    store: Store | None = None
    owns_store: bool = False
    #: the clients its readers, writers and senders share (``ConnectContext.sessions``), closed last
    sessions: BackendSessions | None = None

    async def aclose(self) -> None:
        """Close the senders' and backends' connections, then the store."""
        try:
            await self.senders.aclose()
            await self.conns.aclose()
            if self.sessions is not None:
                await self.sessions.aclose()
        finally:
            if self.store is not None and self.owns_store:
                self.store.close()
