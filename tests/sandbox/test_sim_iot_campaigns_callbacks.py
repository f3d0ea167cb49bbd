"""Registered callbacks of the IoT campaign manager simulator: JSON POSTs to notification
destinations as gateways change state, finish, download, or are notified."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.iot_campaigns.app import IotCampaignsSimulator
from reconciler.sandbox.iot_campaigns.callbacks import CallbackDispatcher
from reconciler.sandbox.testing import SandboxControl, running_simulator
from tests.sandbox.test_sim_iot_campaigns_support import CallbackReceiver, logged_in

STEP = 60
UNREACHABLE = "http://127.0.0.1:9/nobody-listens"


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver().running() as running:
        yield running


@pytest.fixture(scope="module")
def server(receiver: CallbackReceiver) -> Iterator[SandboxServer]:
    clock = SimClock()
    sim = IotCampaignsSimulator(clock=clock, seed=5, destinations={"ops": receiver.url, "dead": UNREACHABLE},
                                callback_timeout_s=1.0)
    with running_simulator(sim, clock=clock) as running:
        yield running


@pytest.fixture
def api(server: SandboxServer, receiver: CallbackReceiver) -> Iterator[httpx.Client]:
    SandboxControl.of(server).reset()
    receiver.bodies.clear()
    with logged_in(server.url) as client:
        yield client


def started_campaign(api: httpx.Client, callbacks: dict[str, dict[str, Any]], *, start: bool = True) -> str:
    campaign = str(api.post("/api/campaigns", json={"name": "hooked"}).json()["uuid"])
    api.post(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": ["gw-00001"]}).raise_for_status()
    for kind, body in callbacks.items():
        api.put(f"/api/campaigns/{campaign}/callbacks/{kind}", json=body).raise_for_status()
    if start:
        api.put(f"/api/campaigns/{campaign}/start").raise_for_status()
    return campaign


def wait_until(check: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_state_change_callback_posts_every_transition(api: httpx.Client, receiver: CallbackReceiver) -> None:
    campaign = started_campaign(api, {"state-change": {"notificationDestinationId": "ops"}})
    SandboxControl.over(api).advance(10 * STEP)
    bodies = receiver.wait_for(8)
    assert [b["state"] for b in bodies] == ["INVENTORY_UP_TO_DATE", "WAITING_FOR_DOWNLOAD", "DOWNLOADING",
                                            "DOWNLOAD_COMPLETE", "EXECUTING", "EXECUTION_COMPLETE", "ACTIVATING",
                                            "ACTIVATION_COMPLETE"]
    assert {(b["campaignId"], b["gatewayId"], b["event"]) for b in bodies} == {(campaign, "gw-00001", "state-change")}


def test_callback_timestamp_is_the_transition_time_in_epoch_ms(api: httpx.Client,
                                                               receiver: CallbackReceiver) -> None:
    started_campaign(api, {"state-change": {"notificationDestinationId": "ops"}})
    started_ms = int(SandboxControl.over(api).now() * 1000)
    SandboxControl.over(api).advance(STEP)
    first = receiver.wait_for(1)[0]
    assert abs(int(first["timestamp"]) - (started_ms + STEP * 1000)) < 1000


def test_tracked_states_limit_the_state_change_posts(api: httpx.Client, receiver: CallbackReceiver) -> None:
    started_campaign(api, {"state-change": {"notificationDestinationId": "ops",
                                            "trackedStates": ["DOWNLOADING", "ACTIVATION_COMPLETE"]}})
    SandboxControl.over(api).advance(10 * STEP)
    bodies = receiver.wait_for(2)
    assert [b["state"] for b in bodies] == ["DOWNLOADING", "ACTIVATION_COMPLETE"]


def test_completed_callback_fires_once_when_the_gateway_finishes(api: httpx.Client,
                                                                  receiver: CallbackReceiver) -> None:
    started_campaign(api, {"completed": {"notificationDestinationId": "ops"}})
    SandboxControl.over(api).advance(20 * STEP)
    bodies = receiver.wait_for(1)
    assert [(b["event"], b["state"]) for b in bodies] == [("completed", "ACTIVATION_COMPLETE")]


def test_closing_a_gateway_fires_the_completed_callback(api: httpx.Client, receiver: CallbackReceiver) -> None:
    campaign = started_campaign(api, {"completed": {"notificationDestinationId": "ops"}})
    api.put(f"/api/campaigns/{campaign}/devices/gw-00001/close").raise_for_status()
    assert [(b["event"], b["state"]) for b in receiver.wait_for(1)] == [("completed", "INSTANTIATED")]


def test_download_progress_callback_fires_on_download_states(api: httpx.Client,
                                                              receiver: CallbackReceiver) -> None:
    started_campaign(api, {"download-progress": {"notificationDestinationId": "ops"}})
    SandboxControl.over(api).advance(10 * STEP)
    assert [b["state"] for b in receiver.wait_for(2)] == ["DOWNLOADING", "DOWNLOAD_COMPLETE"]


def test_execution_progress_callback_fires_on_execution_states(api: httpx.Client,
                                                                receiver: CallbackReceiver) -> None:
    started_campaign(api, {"execution-progress": {"notificationDestinationId": "ops"}})
    SandboxControl.over(api).advance(10 * STEP)
    assert [b["state"] for b in receiver.wait_for(2)] == ["EXECUTING", "EXECUTION_COMPLETE"]


def test_wake_up_callback_fires_on_notify(api: httpx.Client, receiver: CallbackReceiver) -> None:
    campaign = started_campaign(api, {"wake-up": {"notificationDestinationId": "ops"}})
    api.put(f"/api/campaigns/{campaign}/devices/gw-00001/notify").raise_for_status()
    assert [(b["event"], b["gatewayId"]) for b in receiver.wait_for(1)] == [("wake-up", "gw-00001")]


def test_callback_registered_late_does_not_replay_earlier_transitions(api: httpx.Client,
                                                                       receiver: CallbackReceiver) -> None:
    campaign = started_campaign(api, {})
    SandboxControl.over(api).advance(3 * STEP + 1)
    api.put(f"/api/campaigns/{campaign}/callbacks/state-change",
            json={"notificationDestinationId": "ops"}).raise_for_status()
    SandboxControl.over(api).advance(STEP)
    assert [b["state"] for b in receiver.wait_for(1)] == ["DOWNLOAD_COMPLETE"]


def test_unknown_destination_is_recorded_and_nothing_is_posted(api: httpx.Client) -> None:
    campaign = started_campaign(api, {"state-change": {"notificationDestinationId": "nobody"}})
    SandboxControl.over(api).advance(10 * STEP)
    state = SandboxControl.over(api).state()
    assert state["campaigns"][0]["callbacks"] == {"state-change": {"destination": "nobody", "trackedStates": []}}
    assert state["campaigns"][0]["id"] == campaign
    assert state["callbackDeliveries"] == {"sent": 0, "failed": 0, "pending": 0, "log": []}


def test_failed_delivery_is_counted_not_raised(api: httpx.Client) -> None:
    started_campaign(api, {"completed": {"notificationDestinationId": "dead"}})
    SandboxControl.over(api).advance(10 * STEP)
    wait_until(lambda: SandboxControl.over(api).state()["callbackDeliveries"]["failed"] >= 1)
    deliveries = SandboxControl.over(api).state()["callbackDeliveries"]
    assert (deliveries["sent"], deliveries["failed"], deliveries["log"][0]["url"]) == (0, 1, UNREACHABLE)


def test_successful_deliveries_are_counted_in_the_snapshot(api: httpx.Client, receiver: CallbackReceiver) -> None:
    started_campaign(api, {"completed": {"notificationDestinationId": "ops"}})
    SandboxControl.over(api).advance(10 * STEP)
    receiver.wait_for(1)
    wait_until(lambda: SandboxControl.over(api).state()["callbackDeliveries"]["sent"] >= 1)
    assert SandboxControl.over(api).state()["callbackDeliveries"]["log"][0]["status"] == 204


async def test_a_delivery_in_flight_at_a_reset_is_not_counted_after_it() -> None:
    """A reset between a callback's POST and its reply: the reply is not counted in the reset state (a test
    whose receiver saw a callback must not find it in the next test's state)."""
    answer = asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await answer.wait()
        writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(held, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    dispatcher = CallbackDispatcher(timeout_s=5)
    dispatcher.enqueue(f"http://127.0.0.1:{port}/hook", {"event": "state-change"})
    dispatcher.flush()
    for _ in range(200):
        await asyncio.sleep(0.01)
        if not dispatcher.snapshot()["pending"]:
            break
    dispatcher.reset()
    answer.set()
    await asyncio.sleep(0.2)
    server.close()
    assert dispatcher.snapshot() == {"sent": 0, "failed": 0, "pending": 0, "log": []}
