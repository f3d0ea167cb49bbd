"""The sandbox harness: control endpoints, statistics, faults, clock and persistence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from typing import Any

import httpx
import pytest

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxApp, SandboxServer
from reconciler.sandbox.testing import SandboxControl, SandboxControlError, SandboxStats, running_simulator
from reconciler.sandbox.tls import generate_tls_files
from tests.sandbox.echo import CountingSimulator


@pytest.fixture
def sim() -> CountingSimulator:
    return CountingSimulator()


@pytest.fixture
def server(sim: CountingSimulator) -> Iterator[SandboxServer]:
    with running_simulator(sim, clock=SimClock()) as running:
        yield running


@pytest.fixture
def client(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as http:
        yield http


@pytest.fixture
def control(server: SandboxServer) -> SandboxControl:
    return SandboxControl.of(server)


def test_stats_count_requests_by_route_template(client: httpx.Client, control: SandboxControl) -> None:
    client.get("/api/things/1")
    client.get("/api/things/2")
    client.post("/api/things/3")
    assert control.stats() == SandboxStats(
        total=3, requests={"GET /api/things/{thing_id}": 2, "POST /api/things/{thing_id}": 1})
    assert (control.requests("GET /api/things/{thing_id}"), control.requests("DELETE /api/things/{thing_id}")) == (2, 0)


def test_control_requests_are_not_counted(control: SandboxControl) -> None:
    control.state()
    assert control.total() == 0


def test_injected_503_is_answered_before_the_effect_with_retry_after(
    client: httpx.Client, control: SandboxControl, sim: CountingSimulator
) -> None:
    control.faults(error_rate=1, retry_after_s=2)
    reply = client.post("/api/things/1")
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "2"
    assert sim.effects == 0


def test_injected_429_carries_retry_after(client: httpx.Client, control: SandboxControl) -> None:
    control.faults(error_rate=1, error_status=429)
    reply = client.get("/api/things/1")
    assert (reply.status_code, reply.headers["Retry-After"]) == (429, "1")


def test_dropped_connection_happens_after_the_effect(
    client: httpx.Client, control: SandboxControl, sim: CountingSimulator
) -> None:
    control.faults(drop_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/api/things/1")
    assert sim.effects == 1


def test_malformed_reply_is_a_truncated_body_after_the_effect(
    client: httpx.Client, control: SandboxControl, sim: CountingSimulator
) -> None:
    control.faults(malformed_rate=1)
    reply = client.post("/api/things/1")
    with pytest.raises(ValueError):
        reply.json()
    assert sim.effects == 1


def test_timeout_leaves_the_client_waiting(
    client: httpx.Client, control: SandboxControl, sim: CountingSimulator
) -> None:
    control.faults(timeout_rate=1, timeout_s=2)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/api/things/1", timeout=0.3)
    assert sim.effects == 1


def test_faults_are_repeatable_with_a_seed(client: httpx.Client, control: SandboxControl) -> None:
    def statuses() -> list[int]:
        control.faults(error_rate=0.5, seed=42)
        return [client.get("/api/things/1").status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert {200, 503} == set(first)


def test_unknown_fault_setting_is_refused(control: SandboxControl) -> None:
    misspelt: dict[str, Any] = {"eror_rate": 1}
    with pytest.raises(SandboxControlError) as refused:
        control.faults(**misspelt)
    assert refused.value.status == 400
    assert "eror_rate" in refused.value.message


def test_rate_above_one_is_refused(control: SandboxControl) -> None:
    with pytest.raises(SandboxControlError) as refused:
        control.faults(drop_rate=2)
    assert refused.value.status == 400


def test_fault_settings_are_read_back_as_set(control: SandboxControl) -> None:
    control.faults(error_rate=0.25, error_status=429)
    settings = control.fault_settings()
    assert (settings.error_rate, settings.error_status, control.clear_faults().error_rate) == (0.25, 429, 0.0)


def test_clock_advance_moves_simulated_time_and_the_simulator(
    control: SandboxControl, sim: CountingSimulator
) -> None:
    before = control.now()
    after = control.advance(3600)
    assert after - before >= 3600
    assert sim.advanced_to == after


def test_clock_refuses_to_go_backwards(control: SandboxControl) -> None:
    with pytest.raises(SandboxControlError) as refused:
        control.advance(-5)
    assert refused.value.status == 400


def test_reset_clears_state_stats_and_faults(
    client: httpx.Client, control: SandboxControl, sim: CountingSimulator
) -> None:
    client.post("/api/things/1")
    control.faults(error_rate=1)
    control.reset()
    assert sim.effects == 0
    assert control.total() == 0
    assert client.get("/api/things/1").status_code == 200


def test_state_dump_is_the_simulator_snapshot(client: httpx.Client, control: SandboxControl) -> None:
    client.post("/api/things/1")
    assert control.state() == {"effects": 1}


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    first = CountingSimulator()
    server = SandboxServer(SandboxApp(first, clock=SimClock(), state_file=state_file)).start_in_thread()
    httpx.post(f"{server.url}/api/things/1")
    SandboxControl.of(server).advance(60)
    server.stop()
    second = CountingSimulator()
    clock = SimClock()
    server = SandboxServer(SandboxApp(second, clock=clock, state_file=state_file)).start_in_thread()
    try:
        assert second.effects == 1
        assert clock.offset >= 60
    finally:
        server.stop()


def test_latency_is_the_response_time_the_simulator_keeps(client: httpx.Client, control: SandboxControl) -> None:
    control.faults(latency_ms=150)
    elapsed = [client.get("/api/things/1").elapsed.total_seconds() for _ in range(6)]
    # never sooner than asked (it may aim up to 2 ms early to offset its timer's lateness), and not
    # the latency plus the simulator's work: loose upper bound for a loaded CI machine
    assert min(elapsed) >= 0.145 and sorted(elapsed)[3] < 0.3, elapsed


def test_control_of_an_https_simulator_trusts_its_ca_and_only_its_ca(tmp_path: Path, sim: CountingSimulator) -> None:
    with running_simulator(sim, clock=SimClock(), tls=generate_tls_files(tmp_path)) as server:
        httpx.post(f"{server.url}/api/things/1", verify=False)
        trusted = SandboxControl.of(server).total()
        unverified = SandboxControl(server.url, verify=False).state()
        with pytest.raises(SandboxControlError, match="no reply: .*CERTIFICATE_VERIFY_FAILED"):
            SandboxControl(server.url).state()
    assert (server.url.startswith("https://"), trusted, unverified) == (True, 1, {"effects": 1})
