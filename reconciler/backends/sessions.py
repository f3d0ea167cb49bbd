"""One client per backend per pass, shared by the backend's reader, writer, SMS sender and exporter.

What bounds a backend lives in its client: ``BackendHttp`` holds the gate of ``limits.concurrency``
requests in flight, the spacing of ``limits.requestsPerSecond`` and the connection pool, and the adapter's
client around it holds the login (the IoT manager's bearer token). Built once per role, each role had its
own gate, rate and login: a pass that read, wrote and sent at once could have three times the declared
concurrency in flight, and an apply logged in to the IoT manager twice. A pass hands its roles one
``BackendSessions`` (``ConnectContext.sessions``): the first role of a backend builds its client
(``shared_client``), the others get the same one.

A shared client is closed once the pass has ended (``aclose``) and every role that took it has closed it,
so an SMS send that the daemon keeps running after its pass keeps its client until it ends. Without a
``BackendSessions`` (tests, one-off tools) every role builds and closes its own client, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from reconciler.backends.http import BackendHttp
    from reconciler.backends.protocol import ConnectContext
    from reconciler.model import BackendSpec


class SharedClient(Protocol):
    """An adapter's client: what a role talks to the backend through, around its ``BackendHttp``."""

    @property
    def http(self) -> BackendHttp: ...


C = TypeVar("C", bound=SharedClient)


class BackendSessions:
    """The clients of one pass, by backend name and how they were built; see the module's docstring."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, object], SharedClient] = {}
        self._holders: dict[BackendHttp, int] = {}
        self._ended = False

    def __repr__(self) -> str:
        return f"BackendSessions(backends={sorted({name for name, _ in self._clients})!r}, ended={self._ended})"

    def client(self, backend: str, connect: object, make: Callable[[], C]) -> C:
        """The client of ``backend`` built by ``connect`` in this pass: ``make()`` the first time."""
        key = (backend, connect)
        known = self._clients.get(key)
        if known is not None and not self._ended:
            self.adopt(known.http)
            return known  # type: ignore[return-value]  # the key's ``connect`` built it: a C
        made = make()
        if not self._ended:
            self._clients[key] = made
        return made

    def adopt(self, http: BackendHttp) -> None:
        """One more role holds ``http`` (``BackendHttp.for_backend`` calls this for the role building it)."""
        self._holders[http] = self._holders.get(http, 0) + 1

    def release(self, http: BackendHttp) -> bool:
        """A role closed ``http``: whether it is to be closed now (the pass has ended, nobody holds it)."""
        left = self._holders.get(http, 0) - 1
        self._holders[http] = left
        if left > 0 or not self._ended:
            return False
        del self._holders[http]
        return True

    async def aclose(self) -> None:
        """The pass has ended: close every client no role holds any more (the others close with their
        last role)."""
        self._ended = True
        self._clients.clear()
        idle = [http for http, holders in self._holders.items() if holders <= 0]
        for http in idle:
            del self._holders[http]
            await http.close_connections()


def shared_client(connect: Callable[[BackendSpec, ConnectContext], C], spec: BackendSpec,
                  ctx: ConnectContext) -> C:
    """``connect(spec, ctx)``, once per backend per pass when the pass shares clients (``ctx.sessions``)."""
    sessions: BackendSessions | None = ctx.sessions
    if sessions is None:
        return connect(spec, ctx)
    return sessions.client(spec.name, connect, lambda: connect(spec, ctx))

