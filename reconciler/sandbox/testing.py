"""Helpers for tests and benchmarks, shipped with the sandbox so that no test re-wraps them: start a
simulator in-process on a free loopback port (``running_simulator``), and drive any running simulator
through its ``/_sandbox/`` control API (``SandboxControl``: faults, clock, state, request counts, reset;
``SandboxControls``: the four of a ``running_sandbox`` at once), the HTTPS SMS gateway simulator included."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, Unpack

import httpx

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.faults import FaultSettings
from reconciler.sandbox.harness import CONTROL_PREFIX, SandboxApp, SandboxServer, Simulator, TlsFiles

#: a control call waits this long by default (a state dump of a 100,000-gateway fleet takes seconds)
CONTROL_TIMEOUT_S = 60.0
#: the fault knobs ``clear_faults`` sets back to zero (error status, timeout length and seed are kept)
NO_FAULTS = FaultSettings(latency_ms=0.0, error_rate=0.0, timeout_rate=0.0, drop_rate=0.0, malformed_rate=0.0)


@contextmanager
def running_simulator(
    simulator: Simulator, *, clock: SimClock, tls: TlsFiles | None = None
) -> Iterator[SandboxServer]:
    """Serve ``simulator`` on ``127.0.0.1:<free port>`` for the duration of the ``with`` block."""
    server = SandboxServer(SandboxApp(simulator, clock=clock), tls=tls).start_in_thread()
    try:
        yield server
    finally:
        server.stop()


class FaultKnobs(TypedDict, total=False):
    """The settings ``POST /_sandbox/faults`` takes (``reconciler.sandbox.faults.FaultSettings``); rates
    are 0..1, and a setting left out keeps its current value."""

    latency_ms: float
    error_rate: float
    error_status: int
    retry_after_s: float
    timeout_rate: float
    timeout_s: float
    drop_rate: float
    malformed_rate: float
    seed: int | None


@dataclass(frozen=True)
class SandboxStats:
    """``GET /_sandbox/stats``: API requests served (control calls are not counted), in all and by
    ``METHOD /route-template`` (e.g. ``GET /api/campaigns/{campaign_id}``)."""

    total: int
    requests: Mapping[str, int]

    def of(self, route: str) -> int:
        """Requests served on ``route`` (0 when none were)."""
        return int(self.requests.get(route, 0))


class SandboxControlError(RuntimeError):
    """A control call the simulator refused (a bad fault setting, the clock moved backwards) or could not
    answer; ``status`` is the HTTP status, ``message`` the simulator's own words."""

    def __init__(self, call: str, status: int, message: str) -> None:
        super().__init__(f"{call}: HTTP {status}: {message}")
        self.status = status
        self.message = message


class _Served(Protocol):
    """What ``SandboxControl.of`` needs of a server: ``SandboxServer`` (``RunningSandbox.servers[name]``)."""

    @property
    def url(self) -> str: ...

    @property
    def tls(self) -> TlsFiles | None: ...


class SandboxControl:
    """A synchronous client of one simulator's ``/_sandbox/`` API.

    Synchronous because the simulators run in threads or processes of their own: a test (async or not)
    and a benchmark call it between the requests they measure. Each call opens a connection of its own
    unless ``http`` (a client the caller owns and closes, e.g. the one the test drives the API with)
    is given, so a control needs no closing. ``verify`` is the TLS verification for an HTTPS simulator:
    an ``ssl.SSLContext``, the path of a CA file, or ``False`` (the simulator's CA is not at hand, as
    for a simulator started by another process).
    """

    def __init__(
        self,
        url: str,
        *,
        verify: ssl.SSLContext | str | bool = True,
        timeout: float = CONTROL_TIMEOUT_S,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        if verify is True or isinstance(verify, str):
            verify = _tls_context(None if verify is True else verify)
        self._verify: ssl.SSLContext | bool = verify
        self._timeout = timeout
        self._http = http

    @classmethod
    def of(cls, server: _Served, *, timeout: float = CONTROL_TIMEOUT_S,
           http: httpx.Client | None = None) -> SandboxControl:
        """The control of a server started here, trusting its CA when it serves HTTPS."""
        verify: str | bool = str(server.tls.ca_file) if server.tls is not None else True
        return cls(server.url, verify=verify, timeout=timeout, http=http)

    @classmethod
    def over(cls, client: httpx.Client, *, timeout: float = CONTROL_TIMEOUT_S) -> SandboxControl:
        """The control of the simulator ``client`` (with its ``base_url``) talks to, over ``client``'s
        connections and TLS settings."""
        return cls(str(client.base_url), timeout=timeout, http=client)

    def __repr__(self) -> str:
        return f"SandboxControl({self.url!r})"

    # --- the control API ---------------------------------------------------------------------------

    def stats(self) -> SandboxStats:
        body = self._call("GET", "stats")
        return SandboxStats(total=int(body["total"]), requests=dict(body["requests"]))

    def requests(self, route: str) -> int:
        """API requests served on ``route`` (``METHOD /route-template``) since the last reset."""
        return self.stats().of(route)

    def total(self) -> int:
        """API requests served on every route since the last reset."""
        return self.stats().total

    def faults(self, **settings: Unpack[FaultKnobs]) -> FaultSettings:
        """Change some fault settings (the others are kept); returns all of them as they now are."""
        return FaultSettings(**self._call("POST", "faults", dict(settings)))

    def fault_settings(self) -> FaultSettings:
        return FaultSettings(**self._call("GET", "faults"))

    def clear_faults(self) -> FaultSettings:
        """No latency, errors, timeouts, drops or garbling any more (as after a reset, state kept)."""
        knobs = {name: getattr(NO_FAULTS, name) for name in
                 ("latency_ms", "error_rate", "timeout_rate", "drop_rate", "malformed_rate")}
        return FaultSettings(**self._call("POST", "faults", knobs))

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by ``seconds`` (lifecycles follow); returns the new time."""
        return float(self._call("POST", "clock", {"advance_s": seconds})["now"])

    def now(self) -> float:
        """The simulator's time, epoch seconds."""
        return float(self._call("GET", "clock")["now"])

    def state(self) -> dict[str, Any]:
        """Everything the simulator holds (its ``snapshot()``), moved forward to its current time."""
        return dict(self._call("GET", "state"))

    def reset(self) -> None:
        """Back to the simulator's fixtures: state, request counts and faults."""
        self._call("POST", "reset")

    # --- transport -----------------------------------------------------------------------------------

    def _call(self, method: str, name: str, body: Mapping[str, Any] | None = None) -> Any:
        url = f"{self.url}{CONTROL_PREFIX}{name}"
        try:
            if self._http is not None:
                reply = self._http.request(method, url, json=body, timeout=self._timeout)
            else:
                with httpx.Client(verify=self._verify, timeout=self._timeout) as client:
                    reply = client.request(method, url, json=body)
        except httpx.HTTPError as exc:
            raise SandboxControlError(f"{method} {url}", 0, f"no reply: {exc!r}") from exc
        if reply.is_success:
            return reply.json()
        raise SandboxControlError(f"{method} {url}", reply.status_code, _message(reply))


class _Sandbox(Protocol):
    """What ``SandboxControls.of`` needs: ``RunningSandbox`` (its servers by simulator name)."""

    @property
    def servers(self) -> Mapping[str, _Served]: ...


class SandboxControls:
    """The controls of several simulators by name (``yateota``, ``iot-campaigns``, ``ogangi``,
    ``sms-gateway``), for what concerns them all: a reset, faults cleared, requests counted."""

    def __init__(self, controls: Mapping[str, SandboxControl]) -> None:
        self._controls = dict(controls)

    @classmethod
    def of(cls, sandbox: _Sandbox) -> SandboxControls:
        """Every simulator of a sandbox started here (``running_sandbox``)."""
        return cls({name: SandboxControl.of(server) for name, server in sandbox.servers.items()})

    def __getitem__(self, name: str) -> SandboxControl:
        return self._controls[name]

    def reset(self) -> None:
        for control in self._controls.values():
            control.reset()

    def clear_faults(self) -> None:
        for control in self._controls.values():
            control.clear_faults()

    def total(self) -> int:
        """API requests all of them served since their last reset."""
        return sum(control.total() for control in self._controls.values())


@functools.lru_cache(maxsize=8)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """One verifying context per CA file (``None``: the system's roots), made once: loading a CA bundle
    costs tens of milliseconds, far more than the control call itself."""
    return ssl.create_default_context(cafile=ca_file)


def _message(reply: httpx.Response) -> str:
    """The simulator's ``{"code", "message"}`` error, or the start of whatever else it answered."""
    try:
        return str(reply.json()["message"])
    except (ValueError, KeyError, TypeError):
        return reply.text[:200]
