"""Connecting to the declared backends: one adapter per Backend, secrets resolved here, failures as
diagnostics (a secret that cannot be resolved is a problem of that backend, reported with its name)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.backends.protocol import BackendTraits, ConnectContext, Reader, Writer
from reconciler.backends.registry import adapter_for
from reconciler.diagnostics import Diagnostic
from reconciler.errors import ReconcilerError
from reconciler.model import DesiredState, Kind, ResourceKey


@dataclass
class Connections:
    """Readers (always) and writers (only when applying) by backend name."""

    traits: dict[str, BackendTraits] = field(default_factory=dict)
    readers: dict[str, Reader] = field(default_factory=dict)
    writers: dict[str, Writer] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    async def aclose(self) -> None:
        for client in [*self.readers.values(), *self.writers.values()]:
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
