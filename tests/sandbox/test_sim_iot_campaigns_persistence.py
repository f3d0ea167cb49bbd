"""The IoT campaign manager simulator's snapshot, restore and reset, and its cost at the scale of the
standard fleet (20 campaigns x 10,000 gateways)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.iot_campaigns.app import IotCampaignsSimulator
from reconciler.sandbox.testing import SandboxControl, running_simulator
from tests.sandbox.test_sim_iot_campaigns_support import logged_in

STEP = 60


def _build(api: httpx.Client) -> str:
    package = api.post("/api/programs/", files={"file": ("fw.zip", b"fw")}, data={"description": "A"}).json()["uuid"]
    campaign = str(api.post("/api/campaigns", json={"name": "kept", "packages": [package],
                                                    "campaignSettings": {"settings": {"reboot": "graceful"}}}
                            ).json()["uuid"])
    api.post(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": ["gw-00001", "gw-00002"]}).raise_for_status()
    api.put(f"/api/campaigns/{campaign}/devices/gw-00002/scheduled-download",
            json={"begin": "1893456000000", "end": "1893459600000"}).raise_for_status()
    api.put(f"/api/campaigns/{campaign}/distribution-list",
            json={"distributionListId": "berlin", "reevaluationIntervalSeconds": "600"}).raise_for_status()
    api.put(f"/api/campaigns/{campaign}/callbacks/completed",
            json={"notificationDestinationId": "ops"}).raise_for_status()
    api.put(f"/api/campaigns/{campaign}/start").raise_for_status()
    SandboxControl.over(api).advance(3 * STEP + 1)
    return campaign


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {key: state[key] for key in ("campaigns", "packages", "notifications", "issuedIds", "seed")}


def test_restored_simulator_reproduces_the_snapshot_and_goes_on_from_it() -> None:
    clock = SimClock()
    with running_simulator(IotCampaignsSimulator(clock=clock, seed=1), clock=clock) as server, \
            logged_in(server.url) as api:
        campaign = _build(api)
        saved = SandboxControl.over(api).state()
    restored = IotCampaignsSimulator(clock=clock, seed=99)
    restored.restore(saved)
    with running_simulator(restored, clock=clock) as server, logged_in(server.url) as api:
        same = _comparable(SandboxControl.over(api).state()) == _comparable(saved)
        SandboxControl.over(api).advance(STEP)
        moved = api.get(f"/api/campaigns/{campaign}/devices/gw-00001/state").json()["state"]
        new_id = api.post("/api/campaigns", json={"name": "next"}).json()["uuid"]
    assert (same, moved, new_id == campaign) == (True, "DOWNLOAD_COMPLETE", False)


def test_restored_simulator_accepts_the_tokens_it_had_issued() -> None:
    clock = SimClock()
    with running_simulator(IotCampaignsSimulator(clock=clock, seed=1), clock=clock) as server, \
            logged_in(server.url) as api:
        saved = SandboxControl.over(api).state()
        token = api.headers["Authorization"]
    restored = IotCampaignsSimulator(clock=clock)
    restored.restore(saved)
    with running_simulator(restored, clock=clock) as server:
        assert httpx.get(f"{server.url}/api/campaigns", headers={"Authorization": token}).status_code == 200


def test_reset_forgets_campaigns_packages_and_tokens_but_not_the_enrolled_gateways() -> None:
    clock = SimClock()
    with running_simulator(IotCampaignsSimulator(clock=clock, seed=1), clock=clock) as server:
        with logged_in(server.url) as api:
            _build(api)
            SandboxControl.of(server).reset()
            stale_token = api.get("/api/campaigns").status_code
            state = SandboxControl.over(api).state()
        with logged_in(server.url) as api:
            campaign = api.post("/api/campaigns", json={"name": "again"}).json()["uuid"]
            added = api.post(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": ["gw-10000"]}).status_code
    assert (stale_token, state["campaigns"], state["packages"], added) == (401, [], [], 200)


def test_reads_stay_fast_with_20_campaigns_of_10000_gateways() -> None:
    clock = SimClock()
    fleet = [f"gw-{n:05d}" for n in range(1, 10_001)]
    with running_simulator(IotCampaignsSimulator(clock=clock, seed=1), clock=clock) as server, \
            logged_in(server.url) as api:
        campaigns = []
        for n in range(20):
            campaign = api.post("/api/campaigns", json={"name": f"fleet-{n}"}).json()["uuid"]
            api.post(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": fleet}, timeout=30).raise_for_status()
            api.put(f"/api/campaigns/{campaign}/start").raise_for_status()
            campaigns.append(campaign)
        SandboxControl.over(api).advance(5 * STEP)
        started = time.perf_counter()
        states = {api.get(f"/api/campaigns/{campaigns[n % 20]}/devices/gw-{n + 1:05d}/state").json()["state"]
                  for n in range(100)}
        page = api.get(f"/api/campaigns/{campaigns[-1]}/devices", params={"page.number": 99, "page.size": 100})
        elapsed = time.perf_counter() - started
    assert states == {"EXECUTING"}
    assert [g["gatewayId"] for g in page.json()["gateways"]][-1] == "gw-10000"
    assert elapsed < 2.0, f"101 reads took {elapsed:.2f} s"
