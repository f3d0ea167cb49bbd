"""The contract every adapter keeps under faults, proved once for all of them: each (adapter, operation)
against its sandbox simulator over loopback, under each fault the sandbox injects.

- 503 or 429 (answered before the backend acts): retried, honouring ``Retry-After``; a request that keeps
  getting them fails as a ``TemporaryBackendError`` after ``maxRetries`` retries, having had no effect;
- a dropped connection, a timeout or a garbled reply (after the backend acted): a read, or a write that is
  safe to repeat, is retried and then fails as temporary (garbled: ``MalformedReplyError``); a write that
  is not safe to repeat is sent once and fails as ``UnknownOutcomeError`` (it did take effect);
- every error names the backend and the operation, retries are logged, and neither the error nor the logs
  show the secret (nor, for the IoT manager, its tokens).

Adapter-specific behaviour (auth schemes, paging, reply formats, recovery by ``user_id``) stays in each
adapter's own test file.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from reconciler.backends.iot_campaigns.adapter import connect as connect_iot
from reconciler.backends.ogangi.adapter import connect_client as connect_ogangi
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.sms_gateway.adapter import OutgoingSms, SmsGatewayClient
from reconciler.backends.yateota.adapter import YateOtaClient
from reconciler.errors import BackendError, MalformedReplyError, TemporaryBackendError, UnknownOutcomeError
from reconciler.model import BackendLimits, BackendSpec, TlsSettings
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer, TlsFiles
from reconciler.sandbox.iot_campaigns.app import IotCampaignsSimulator
from reconciler.sandbox.iot_campaigns.model import ALL_PERMISSIONS
from reconciler.sandbox.ogangi.app import OgangiSimulator
from reconciler.sandbox.sms_gateway.app import SmsGatewaySimulator
from reconciler.sandbox.testing import FaultKnobs, SandboxControl, running_simulator
from reconciler.sandbox.tls import generate_tls_files
from reconciler.sandbox.yateota.app import YateOtaSimulator
from reconciler.secrets import Redactor
from tests.backends.support import gateway_spec, iot_spec, ogangi_spec, yateota_spec

MAX_RETRIES = 2
TIMEOUT_S = 0.25  # the client's timeout in the timeout rows; the sandbox holds those replies for 1 s
RETRY_AFTER_S = 1.0  # what the simulators send with 503 and 429 (the client's sleeps are recorded, not slept)
Sleep = Callable[[float], Awaitable[None]]


class Sleeps:
    """Records backoff delays instead of sleeping, so retries take no time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


# --- the adapters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adapter:
    """One adapter under the contract: its simulator, a spec and secret for it, and how to connect."""

    name: str  # the backend type
    backend: str  # the name of the Backend pointing at the simulator
    serve: Callable[[TlsFiles], AbstractContextManager[SandboxServer]]
    spec: Callable[[str, str, TlsFiles, BackendLimits], BackendSpec]  # name, url, tls, limits
    secret_env: str
    secret: str
    connect: Callable[[BackendSpec, ConnectContext, Sleep], Any]
    prime: Callable[[Any], Awaitable[object]] | None = None  # what a client does once before (login, challenge)
    other_secrets: Callable[[dict[str, Any]], list[str]] = lambda state: []  # from the simulator's state


def _simulator(make: Callable[[SimClock], Any], *, https: bool = False
               ) -> Callable[[TlsFiles], AbstractContextManager[SandboxServer]]:
    def serve(tls: TlsFiles) -> AbstractContextManager[SandboxServer]:
        clock = SimClock()
        return running_simulator(make(clock), clock=clock, tls=tls if https else None)
    return serve


IOT_USER, IOT_PASSWORD = "ops", "correct-horse-battery-staple"

ADAPTERS = {adapter.name: adapter for adapter in (
    Adapter(
        name="yateota", backend="yate-1",
        serve=_simulator(lambda clock: YateOtaSimulator(clock=clock, seed=21, secret="yate-Se3cret")),
        spec=lambda name, url, tls, limits: yateota_spec(url, name=name, limits=limits),
        secret_env="YATE_SECRET", secret="yate-Se3cret",
        connect=lambda spec, ctx, sleep: YateOtaClient.connect(spec, ctx, sleep=sleep),
    ),
    Adapter(
        name="iot-campaigns", backend="iot-1",
        serve=_simulator(lambda clock: IotCampaignsSimulator(
            clock=clock, seed=11, users={IOT_USER: (IOT_PASSWORD, ALL_PERMISSIONS)})),
        spec=lambda name, url, tls, limits: iot_spec(url, name=name, user=IOT_USER, limits=limits),
        secret_env="IOT_PASSWORD", secret=IOT_PASSWORD,
        connect=lambda spec, ctx, sleep: connect_iot(spec, ctx, sleep=sleep),
        prime=lambda client: client.ensure_token(),
        other_secrets=lambda state: [token["token"] for token in state["tokens"]],
    ),
    Adapter(
        name="sms-gateway", backend="gw-1",
        serve=_simulator(lambda clock: SmsGatewaySimulator(clock=clock, seed=3, password="gw-Pa55-word"), https=True),
        spec=lambda name, url, tls, limits: gateway_spec(url, name=name, limits=limits,
                                                         tls=TlsSettings(ca_file=str(tls.ca_file))),
        secret_env="GW_PASSWORD", secret="gw-Pa55-word",
        connect=lambda spec, ctx, sleep: SmsGatewayClient.connect(spec, ctx, sleep=sleep),
        prime=lambda client: client.query_sms_in_queue(),  # the Digest challenge, held from here on
    ),
    Adapter(
        name="ogangi", backend="og-1",
        serve=_simulator(lambda clock: OgangiSimulator(clock=clock, seed=11, private_key="og-Pr1vate")),
        spec=lambda name, url, tls, limits: ogangi_spec(url, name=name, limits=limits),
        secret_env="OG_KEY", secret="og-Pr1vate",
        connect=lambda spec, ctx, sleep: connect_ogangi(spec, ctx, sleep=sleep),
    ),
)}


# --- the operations ------------------------------------------------------------------------------


class Kind(Enum):
    READ = "read"
    REPEATABLE_WRITE = "repeatable write"  # idempotent: sent again after a lost reply
    ONE_SHOT_WRITE = "one-shot write"  # never sent again after it may have taken effect


@dataclass(frozen=True)
class Operation:
    adapter: str
    name: str
    kind: Kind
    call: Callable[[Any], Awaitable[object]]
    effects: Callable[[dict[str, Any]], int] = lambda state: 0  # times the write took effect, from its state

    def __str__(self) -> str:
        return f"{self.adapter}-{self.name}"


def _participant_state(state: dict[str, Any], participant_id: int) -> str:
    return str(next(p["state"] for p in state["participants"] if p["participant_id"] == participant_id))


def _campaign_state(state: dict[str, Any], campaign_id: int) -> str:
    return str(next(c["state"] for c in state["campaigns"] if c["campaign_id"] == campaign_id))


OPERATIONS = (
    Operation("yateota", "query_campaigns", Kind.READ, lambda client: client.query_campaigns()),
    Operation("yateota", "action_campaign", Kind.REPEATABLE_WRITE,
              lambda client: client.action_campaign(144, "stop"),
              lambda state: int(_campaign_state(state, 144) == "stopped")),
    Operation("yateota", "action_participant", Kind.ONE_SHOT_WRITE,
              lambda client: client.action_participant(195, "retry"),
              lambda state: int(_participant_state(state, 195) == "pending_build")),
    Operation("iot-campaigns", "list-campaigns", Kind.READ, lambda client: client.list_campaigns()),
    Operation("iot-campaigns", "create-campaign", Kind.ONE_SHOT_WRITE,
              lambda client: client.create_campaign(name="contract"),
              lambda state: sum(c["name"] == "contract" for c in state["campaigns"])),
    Operation("sms-gateway", "query-sms-in-queue", Kind.READ, lambda client: client.query_sms_in_queue()),
    Operation("sms-gateway", "send-sms", Kind.ONE_SHOT_WRITE,
              lambda client: client.send_sms([OutgoingSms(f"+4917000{n:05d}", n) for n in (1, 2, 3)], text="x"),
              lambda state: sum(m["user_id"] == 1 for m in state["messages"])),
    Operation("ogangi", "getMOMessages", Kind.READ, lambda client: client.get_mo_messages(1, 10)),
    Operation("ogangi", "sendSMS", Kind.ONE_SHOT_WRITE,
              lambda client: client.send_sms("13056708084", "hello", sender="OGANGI"),
              lambda state: len(state["messages"])),
)


# --- the faults and what each must end in ----------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    error: type[BackendError] | None  # None: the call succeeds
    requests: int  # requests the call sent, retries included
    effects: int = 0  # times a write took effect


def _seed_failing_once() -> int:
    """A fault seed under which, at ``error_rate`` 0.5, the first request gets a 503 and the second does
    not (the sandbox draws one number per request, and one more for garbling when the request passed)."""
    return next(seed for seed in range(1000) if (rng := random.Random(seed)).random() < 0.5 <= rng.random())


ALL_RETRIES = 1 + MAX_RETRIES
REFUSED = Expected(TemporaryBackendError, ALL_RETRIES)  # answered before acting: retried, never took effect
LOST_REPEATABLE = Expected(TemporaryBackendError, ALL_RETRIES, effects=1)
LOST_ONE_SHOT = Expected(UnknownOutcomeError, 1, effects=1)


@dataclass(frozen=True)
class Fault:
    name: str
    settings: FaultKnobs
    expected: dict[Kind, Expected]
    timeout_s: float = 5.0  # the client's timeout
    retry_after: bool = False  # the fault answers with ``Retry-After: RETRY_AFTER_S``


FAULTS = (
    Fault("503-once", {"error_rate": 0.5, "seed": _seed_failing_once()}, retry_after=True, expected={
        Kind.READ: Expected(None, 2), Kind.REPEATABLE_WRITE: Expected(None, 2, effects=1),
        Kind.ONE_SHOT_WRITE: Expected(None, 2, effects=1)}),
    Fault("503-always", {"error_rate": 1.0}, retry_after=True, expected=dict.fromkeys(Kind, REFUSED)),
    Fault("429-always", {"error_rate": 1.0, "error_status": 429}, retry_after=True,
          expected=dict.fromkeys(Kind, REFUSED)),
    Fault("dropped", {"drop_rate": 1.0}, expected={
        Kind.READ: REFUSED, Kind.REPEATABLE_WRITE: LOST_REPEATABLE, Kind.ONE_SHOT_WRITE: LOST_ONE_SHOT}),
    Fault("timeout", {"timeout_rate": 1.0, "timeout_s": 1.0}, timeout_s=TIMEOUT_S, expected={
        Kind.READ: REFUSED, Kind.REPEATABLE_WRITE: LOST_REPEATABLE, Kind.ONE_SHOT_WRITE: LOST_ONE_SHOT}),
    Fault("garbled", {"malformed_rate": 1.0}, expected={
        Kind.READ: Expected(MalformedReplyError, ALL_RETRIES),
        Kind.REPEATABLE_WRITE: Expected(MalformedReplyError, ALL_RETRIES, effects=1),
        Kind.ONE_SHOT_WRITE: LOST_ONE_SHOT}),
)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return generate_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def servers(tls: TlsFiles) -> Iterator[dict[str, SandboxServer]]:
    with ExitStack() as running:
        yield {name: running.enter_context(adapter.serve(tls)) for name, adapter in ADAPTERS.items()}


@dataclass
class Seen:
    """What one call under a fault came to."""

    error: BackendError | None
    requests: int
    effects: int
    delays: list[float]
    logs: list[MutableMapping[str, Any]]
    secrets: list[str]

    def outcome(self) -> Expected:
        return Expected(type(self.error) if self.error else None, self.requests, self.effects)


@pytest.fixture
async def under_fault(servers: dict[str, SandboxServer], tls: TlsFiles,
                      tmp_path: Path) -> AsyncIterator[Callable[[Operation, Fault], Awaitable[Seen]]]:
    """Runs an operation on a fresh client of its adapter, its simulator reset, under a fault."""
    clients: list[Any] = []

    async def run(operation: Operation, fault: Fault) -> Seen:
        adapter = ADAPTERS[operation.adapter]
        control = SandboxControl.of(servers[adapter.name])
        control.reset()
        limits = BackendLimits(max_retries=MAX_RETRIES, timeout_seconds=fault.timeout_s)
        ctx = ConnectContext(root=tmp_path, environ={adapter.secret_env: adapter.secret}, redactor=Redactor())
        sleeps = Sleeps()
        clients.append(client := adapter.connect(adapter.spec(adapter.backend, control.url, tls, limits), ctx, sleeps))
        if adapter.prime is not None:
            await adapter.prime(client)
        before = control.total()
        retry_after = {"retry_after_s": RETRY_AFTER_S} if fault.retry_after else {}
        control.faults(**fault.settings, **retry_after)
        error: BackendError | None = None
        with capture_logs() as logs:
            try:
                await operation.call(client)
            except BackendError as exc:
                error = exc
        control.clear_faults()
        state = control.state()
        return Seen(error, control.total() - before, operation.effects(state), sleeps.delays, logs,
                    [adapter.secret, *adapter.other_secrets(state)])

    yield run
    for client in clients:
        await client.aclose()


def cases(faults: tuple[Fault, ...]) -> list[Any]:
    """Every operation under each of ``faults``, with an id like ``ogangi-sendSMS-dropped``."""
    return [pytest.param(operation, fault, id=f"{operation}-{fault.name}") for operation in OPERATIONS
            for fault in faults]


#: a timeout fails the way a dropped reply does (both "no reply"): the slow rows are not run twice
FAULTS_BUT_TIMEOUT = tuple(fault for fault in FAULTS if fault.name != "timeout")


# --- the contract --------------------------------------------------------------------------------


@pytest.mark.parametrize(("operation", "fault"), cases(FAULTS))
async def test_the_outcome_the_requests_sent_and_the_effect_follow_the_fault(
    under_fault: Callable[[Operation, Fault], Awaitable[Seen]], operation: Operation, fault: Fault
) -> None:
    """Refused requests are retried and never took effect; a lost reply is retried only where repeating is
    safe, otherwise it is an unknown outcome of a request sent once."""
    seen = await under_fault(operation, fault)
    assert seen.outcome() == fault.expected[operation.kind], seen.error


@pytest.mark.parametrize(("operation", "fault"), cases(FAULTS_BUT_TIMEOUT))
async def test_a_failure_names_its_backend_and_operation_and_shows_no_secret(
    under_fault: Callable[[Operation, Fault], Awaitable[Seen]], operation: Operation, fault: Fault
) -> None:
    """The error says which backend and which call failed, every retry is logged, and the secret (and the
    IoT manager's tokens) appear neither in the error nor in the logs."""
    seen = await under_fault(operation, fault)
    shown = f"{seen.error} {seen.error!r} {seen.logs!r}"
    named = seen.error is None or (
        seen.error.backend == ADAPTERS[operation.adapter].backend and bool(seen.error.operation)
        and str(seen.error).startswith(f"{seen.error.backend} {seen.error.operation}: "))
    assert (named, [secret for secret in seen.secrets if secret in shown], len(seen.logs) >= seen.requests - 1) == (
        True, [], True), (seen.error, seen.logs)


@pytest.mark.parametrize("adapter", list(ADAPTERS))
@pytest.mark.parametrize("fault", [fault for fault in FAULTS if fault.retry_after], ids=lambda fault: fault.name)
async def test_retries_wait_what_retry_after_says(
    under_fault: Callable[[Operation, Fault], Awaitable[Seen]], adapter: str, fault: Fault
) -> None:
    """Between retries of a refused request the client waits the ``Retry-After`` the backend sent."""
    read = next(operation for operation in OPERATIONS if operation.adapter == adapter and operation.kind is Kind.READ)
    seen = await under_fault(read, fault)
    assert seen.delays == [RETRY_AFTER_S] * (seen.requests - 1)
