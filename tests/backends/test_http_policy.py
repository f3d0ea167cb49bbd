"""The shared HTTP policy: which failures are retried, how often, and what they become."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from reconciler.backends.http import BackendHttp, RequestRateLimiter, RetryPolicy, parse_retry_after
from reconciler.errors import (
    AuthError,
    BackendUnavailableError,
    ConflictError,
    MalformedReplyError,
    NotFoundError,
    PermanentBackendError,
    TemporaryBackendError,
    UnknownOutcomeError,
)
from reconciler.model import BackendLimits
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.testing import SandboxControl, running_simulator
from reconciler.secrets import Redactor, SecretValue
from tests.sandbox.echo import CountingSimulator


class Sleeps:
    """Records backoff delays instead of sleeping, so retry tests take no time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sim() -> CountingSimulator:
    return CountingSimulator()


@pytest.fixture
def server(sim: CountingSimulator) -> Iterator[SandboxServer]:
    with running_simulator(sim, clock=SimClock()) as running:
        yield running


def policy(url: str, sleeps: Sleeps, **limits: object) -> BackendHttp:
    return BackendHttp(backend="b1", base_url=url, limits=BackendLimits(**limits), sleep=sleeps)  # type: ignore[arg-type]


async def test_503_is_retried_up_to_max_retries_then_raised(server: SandboxServer) -> None:
    SandboxControl.of(server).faults(error_rate=1)
    sleeps = Sleeps()
    http = policy(server.url, sleeps, max_retries=3)
    with pytest.raises(TemporaryBackendError) as caught:
        await http.call("GET", "/api/things/1", operation="get", idempotent=True, parse=lambda r: r.json())
    await http.aclose()
    assert caught.value.status == 503
    assert SandboxControl.of(server).total() == 4
    assert sleeps.delays == [1.0, 1.0, 1.0]  # Retry-After from the sandbox wins over backoff


async def test_503_on_a_non_idempotent_request_is_retried_because_it_was_not_processed(
    server: SandboxServer, sim: CountingSimulator
) -> None:
    SandboxControl.of(server).faults(error_rate=0.5, seed=3)
    http = policy(server.url, Sleeps(), max_retries=10)
    reply = await http.call("POST", "/api/things/1", operation="create", idempotent=False, parse=lambda r: r.json())
    await http.aclose()
    assert reply["effects"] == 1
    assert sim.effects == 1
    assert SandboxControl.of(server).total() > 1


async def test_dropped_connection_on_a_non_idempotent_request_is_an_unknown_outcome_not_retried(
    server: SandboxServer, sim: CountingSimulator
) -> None:
    SandboxControl.of(server).faults(drop_rate=1)
    http = policy(server.url, Sleeps(), max_retries=5)
    with pytest.raises(UnknownOutcomeError):
        await http.call("POST", "/api/things/1", operation="create", idempotent=False, parse=lambda r: r.json())
    await http.aclose()
    assert SandboxControl.of(server).total() == 1
    assert sim.effects == 1


async def test_dropped_connection_on_an_idempotent_request_is_retried(server: SandboxServer) -> None:
    SandboxControl.of(server).faults(drop_rate=0.5, seed=7)
    http = policy(server.url, Sleeps(), max_retries=10)
    reply = await http.call("GET", "/api/things/9", operation="get", idempotent=True, parse=lambda r: r.json())
    await http.aclose()
    assert reply["id"] == "9"


async def test_malformed_reply_on_a_read_is_retried_then_raised(server: SandboxServer) -> None:
    SandboxControl.of(server).faults(malformed_rate=1)
    http = policy(server.url, Sleeps(), max_retries=2)
    with pytest.raises(MalformedReplyError):
        await http.call("GET", "/api/things/1", operation="get", idempotent=True, parse=lambda r: r.json())
    await http.aclose()
    assert SandboxControl.of(server).total() == 3


async def test_read_timeout_on_a_non_idempotent_request_is_an_unknown_outcome(server: SandboxServer) -> None:
    SandboxControl.of(server).faults(timeout_rate=1, timeout_s=2)
    http = policy(server.url, Sleeps(), timeout_seconds=0.2)
    with pytest.raises(UnknownOutcomeError) as caught:
        await http.call("POST", "/api/things/1", operation="create", idempotent=False, parse=lambda r: r.json())
    await http.aclose()
    assert isinstance(caught.value.__cause__, TemporaryBackendError)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_unavailable_and_retried_even_when_not_idempotent() -> None:
    sleeps = Sleeps()
    http = policy(f"http://127.0.0.1:{free_port()}", sleeps, max_retries=2)
    with pytest.raises(BackendUnavailableError) as caught:
        await http.call("POST", "/x", operation="create", idempotent=False, parse=lambda r: r)
    await http.aclose()
    assert len(sleeps.delays) == 2
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, PermanentBackendError), (401, AuthError), (403, AuthError), (404, NotFoundError), (409, ConflictError)],
)
async def test_client_errors_are_permanent_and_not_retried(status: int, error: type[Exception]) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"code": "X", "message": "refused here"})

    http = BackendHttp(backend="b1", base_url="http://b1", limits=BackendLimits(),
                       transport=httpx.MockTransport(handler), sleep=Sleeps())
    with pytest.raises(error) as caught:
        await http.call("GET", "/y", operation="get", idempotent=True, parse=lambda r: r)
    await http.aclose()
    assert len(calls) == 1
    assert "refused here" in str(caught.value)


async def test_secrets_are_scrubbed_from_backend_error_messages() -> None:
    redactor = Redactor()
    redactor.register(SecretValue("hunter2-secret"))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": "bad token hunter2-secret"})

    http = BackendHttp(backend="b1", base_url="http://b1", limits=BackendLimits(), redactor=redactor,
                       transport=httpx.MockTransport(handler))
    with pytest.raises(PermanentBackendError) as caught:
        await http.call("GET", "/y", operation="get", idempotent=True, parse=lambda r: r)
    await http.aclose()
    assert "hunter2-secret" not in str(caught.value)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None


def test_backoff_grows_exponentially_and_is_capped() -> None:
    import random

    retry = RetryPolicy(base_delay=0.2, max_delay=1.0)
    rng = random.Random(1)
    delays = [retry.delay(attempt, None, rng) for attempt in range(6)]
    assert 0.1 <= delays[0] <= 0.2
    assert 0.4 <= delays[2] <= 0.8
    assert all(d <= 1.0 for d in delays)


async def test_rate_limiter_spaces_request_starts() -> None:
    now = [100.0]
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)

    limiter = RequestRateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await limiter.acquire()
    assert waits == [0.25, 0.5]
