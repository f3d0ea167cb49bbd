"""The IoT campaign manager simulator's rules over time: campaign status transitions (approval on and
off), edits refused while started, and the simulated agent moving gateways on the clock through
their states, honouring schedule windows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.iot_campaigns.app import IotCampaignsSimulator
from reconciler.sandbox.testing import SandboxControl, running_simulator
from tests.sandbox.test_sim_iot_campaigns_support import logged_in

STEP = 60


@contextmanager
def serving(**options: Any) -> Iterator[SandboxServer]:
    clock = SimClock()
    with running_simulator(IotCampaignsSimulator(clock=clock, seed=3, **options), clock=clock) as server:
        yield server


@pytest.fixture(scope="module")
def plain() -> Iterator[SandboxServer]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def approving() -> Iterator[SandboxServer]:
    with serving(approval_required=True) as server:
        yield server


def _session(server: SandboxServer) -> Iterator[httpx.Client]:
    SandboxControl.of(server).reset()
    with logged_in(server.url) as client:
        yield client


@pytest.fixture
def api(plain: SandboxServer) -> Iterator[httpx.Client]:
    yield from _session(plain)


@pytest.fixture
def approval_api(approving: SandboxServer) -> Iterator[httpx.Client]:
    yield from _session(approving)


def create(api: httpx.Client, name: str = "rollout", gateways: tuple[str, ...] = ("gw-00001",)) -> str:
    package = api.post("/api/programs/", files={"file": ("fw.zip", b"x" * 1000)}).json()["uuid"]
    campaign = str(api.post("/api/campaigns", json={"name": name, "packages": [package]}).json()["uuid"])
    if gateways:
        api.post(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": list(gateways)}).raise_for_status()
    return campaign


def status(api: httpx.Client, campaign: str) -> str:
    return str(api.get(f"/api/campaigns/{campaign}").json()["status"])


def put(api: httpx.Client, campaign: str, verb: str) -> int:
    return api.put(f"/api/campaigns/{campaign}/{verb}", json={"campaignId": campaign}).status_code


def state(api: httpx.Client, campaign: str, gateway: str = "gw-00001") -> str:
    return str(api.get(f"/api/campaigns/{campaign}/devices/{gateway}/state").json()["state"])


def now_ms(api: httpx.Client) -> int:
    return int(SandboxControl.over(api).now() * 1000)


# --- campaign status -----------------------------------------------------------------------------


def test_without_approval_a_new_campaign_is_created_and_starts_directly(api: httpx.Client) -> None:
    campaign = create(api)
    assert status(api, campaign) == "CREATED"
    assert (put(api, campaign, "start"), status(api, campaign)) == (200, "STARTED")


def test_with_approval_a_new_campaign_needs_approval(approval_api: httpx.Client) -> None:
    assert status(approval_api, create(approval_api)) == "APPROVAL_NEEDED"


def test_with_approval_start_before_approve_is_a_409(approval_api: httpx.Client) -> None:
    campaign = create(approval_api)
    assert (put(approval_api, campaign, "start"), status(approval_api, campaign)) == (409, "APPROVAL_NEEDED")


def test_approved_campaign_starts(approval_api: httpx.Client) -> None:
    campaign = create(approval_api)
    assert (put(approval_api, campaign, "approve"), status(approval_api, campaign)) == (200, "APPROVED")
    assert (put(approval_api, campaign, "start"), status(approval_api, campaign)) == (200, "STARTED")


def test_stopped_campaign_restarts_without_a_new_approval(approval_api: httpx.Client) -> None:
    campaign = create(approval_api)
    for verb in ("approve", "start", "stop"):
        put(approval_api, campaign, verb)
    assert (put(approval_api, campaign, "start"), status(approval_api, campaign)) == (200, "STARTED")


@pytest.mark.parametrize(("prepare", "verb"), [
    ((), "stop"),
    ((), "approve"),
    (("start",), "start"),
    (("start", "stop"), "stop"),
])
def test_invalid_transition_is_a_409(api: httpx.Client, prepare: tuple[str, ...], verb: str) -> None:
    campaign = create(api)
    for step in prepare:
        put(api, campaign, step)
    reply = api.put(f"/api/campaigns/{campaign}/{verb}")
    assert (reply.status_code, reply.json()["code"]) == (409, "CONFLICT")


def test_edit_while_started_is_a_409(api: httpx.Client) -> None:
    campaign = create(api)
    put(api, campaign, "start")
    reply = api.put(f"/api/campaigns/{campaign}", json={"updateSpec": {"description": "new"}})
    assert reply.status_code == 409


def test_delete_while_started_is_a_409(api: httpx.Client) -> None:
    campaign = create(api)
    put(api, campaign, "start")
    assert api.delete(f"/api/campaigns/{campaign}").status_code == 409


def test_edit_while_stopped_changes_only_the_given_fields(api: httpx.Client) -> None:
    campaign = create(api)
    put(api, campaign, "start")
    put(api, campaign, "stop")
    api.put(f"/api/campaigns/{campaign}", json={"updateSpec": {"description": "v2"}}).raise_for_status()
    got = api.get(f"/api/campaigns/{campaign}").json()
    assert (got["name"], got["description"]) == ("rollout", "v2")


def test_deleted_campaign_is_gone(api: httpx.Client) -> None:
    campaign = create(api)
    api.delete(f"/api/campaigns/{campaign}").raise_for_status()
    assert api.get(f"/api/campaigns/{campaign}").status_code == 404


def test_counts_by_status_reflect_the_campaigns(approval_api: httpx.Client) -> None:
    first, second, _ = create(approval_api, "a"), create(approval_api, "b"), create(approval_api, "c")
    put(approval_api, first, "approve")
    put(approval_api, second, "approve")
    put(approval_api, second, "start")
    counts = approval_api.get("/api/campaign-status/campaigns").json()
    assert counts == {"aprovedNotStartedCount": "1", "startedCount": "1", "stoppedCount": "0",
                      "waitingApprovalCount": "1", "noApprovalNeededReadyToStartCount": "0"}


# --- the simulated agent -------------------------------------------------------------------------


def test_gateway_moves_through_every_state_one_step_at_a_time(api: httpx.Client) -> None:
    campaign = create(api)
    put(api, campaign, "start")
    seen = [state(api, campaign)]
    for _ in range(9):
        SandboxControl.over(api).advance(STEP)
        seen.append(state(api, campaign))
    assert seen == ["INSTANTIATED", "INVENTORY_UP_TO_DATE", "WAITING_FOR_DOWNLOAD", "DOWNLOADING",
                    "DOWNLOAD_COMPLETE", "EXECUTING", "EXECUTION_COMPLETE", "ACTIVATING", "ACTIVATION_COMPLETE",
                    "ACTIVATION_COMPLETE"]


def test_gateways_of_a_campaign_that_never_started_stay_instantiated(api: httpx.Client) -> None:
    campaign = create(api)
    SandboxControl.over(api).advance(50 * STEP)
    assert state(api, campaign) == "INSTANTIATED"


def test_activated_gateway_is_closed_and_no_longer_active(api: httpx.Client) -> None:
    campaign = create(api)
    put(api, campaign, "start")
    assert api.get("/api/devices/gw-00001/active-campaigns").json() == {"campaignId": [campaign]}
    SandboxControl.over(api).advance(10 * STEP)
    gateways = api.get(f"/api/campaigns/{campaign}/devices").json()["gateways"]
    assert gateways == [{"gatewayId": "gw-00001", "state": "ACTIVATION_COMPLETE", "closed": True}]
    assert api.get("/api/devices/gw-00001/active-campaigns").json() == {"campaignId": []}


def test_gateway_waits_for_a_download_window_that_is_not_yet_open(api: httpx.Client) -> None:
    campaign = create(api)
    begin = now_ms(api) + 30 * 60_000
    api.put(f"/api/campaigns/{campaign}/devices/gw-00001/scheduled-download",
            json={"begin": str(begin), "end": str(begin + 3_600_000)}).raise_for_status()
    put(api, campaign, "start")
    SandboxControl.over(api).advance(3 * STEP)
    waiting = state(api, campaign)
    SandboxControl.over(api).advance(30 * 60 - 3 * STEP - 30)
    still_waiting = state(api, campaign)
    SandboxControl.over(api).advance(STEP)
    assert (waiting, still_waiting, state(api, campaign)) == ("SCHEDULED_DOWNLOAD", "SCHEDULED_DOWNLOAD", "DOWNLOADING")


def test_download_window_that_closed_before_the_gateway_got_there_blocks_it(api: httpx.Client) -> None:
    campaign = create(api)
    begin = now_ms(api) - 3_600_000
    api.put(f"/api/campaigns/{campaign}/devices/gw-00001/scheduled-download",
            json={"begin": str(begin), "end": str(begin + 60_000)}).raise_for_status()
    put(api, campaign, "start")
    SandboxControl.over(api).advance(50 * STEP)
    assert state(api, campaign) == "WAITING_FOR_DOWNLOAD"


def test_new_window_releases_a_blocked_gateway(api: httpx.Client) -> None:
    campaign = create(api)
    path = f"/api/campaigns/{campaign}/devices/gw-00001/scheduled-download"
    api.put(path, json={"begin": "1000", "end": "2000"}).raise_for_status()
    put(api, campaign, "start")
    SandboxControl.over(api).advance(5 * STEP)
    blocked = state(api, campaign)
    begin = now_ms(api) + 30_000
    api.put(path, json={"begin": str(begin), "end": str(begin + 3_600_000)}).raise_for_status()
    SandboxControl.over(api).advance(STEP)
    assert (blocked, state(api, campaign)) == ("WAITING_FOR_DOWNLOAD", "DOWNLOADING")


def test_execution_window_holds_a_downloaded_gateway(api: httpx.Client) -> None:
    campaign = create(api)
    begin = now_ms(api) + 3_600_000
    api.put(f"/api/campaigns/{campaign}/devices/gw-00001/scheduled-execution",
            json={"begin": str(begin), "end": str(begin + 3_600_000)}).raise_for_status()
    put(api, campaign, "start")
    SandboxControl.over(api).advance(20 * STEP)
    assert state(api, campaign) == "DOWNLOAD_COMPLETE"


def test_stopped_campaign_freezes_its_gateways_and_a_restart_resumes(api: httpx.Client) -> None:
    campaign = create(api)
    put(api, campaign, "start")
    SandboxControl.over(api).advance(2 * STEP + 1)
    put(api, campaign, "stop")
    SandboxControl.over(api).advance(50 * STEP)
    frozen = state(api, campaign)
    put(api, campaign, "start")
    SandboxControl.over(api).advance(STEP)
    assert (frozen, state(api, campaign)) == ("WAITING_FOR_DOWNLOAD", "DOWNLOADING")


def test_failure_rate_one_fails_every_download(plain: SandboxServer) -> None:
    with serving(failure_rate=1.0) as server, logged_in(server.url) as api:
        campaign = create(api)
        put(api, campaign, "start")
        SandboxControl.over(api).advance(10 * STEP)
        gateway = api.get(f"/api/campaigns/{campaign}/devices").json()["gateways"][0]
        assert (gateway["state"], gateway["closed"]) == ("DOWNLOAD_FAILED", False)


def test_download_progress_follows_the_state(api: httpx.Client) -> None:
    campaign = create(api)
    path = f"/api/campaigns/{campaign}/devices/gw-00001/progress/download"
    put(api, campaign, "start")
    before = api.get(path).json()["packagesProgress"][0]
    SandboxControl.over(api).advance(4 * STEP)
    after = api.get(path).json()["packagesProgress"][0]
    assert ((before["progress"], before["total"]), (after["progress"], after["total"])) == (("0", "1000"),
                                                                                           ("1000", "1000"))


def test_execution_progress_is_empty_before_and_complete_after_execution(api: httpx.Client) -> None:
    campaign = create(api)
    path = f"/api/campaigns/{campaign}/devices/gw-00001/progress/execution"
    put(api, campaign, "start")
    before = api.get(path).json()["progress"]
    SandboxControl.over(api).advance(6 * STEP)
    assert (before, api.get(path).json()["progress"]) == ([], ["100"])


def test_overall_status_counts_gateways_that_reached_each_milestone(api: httpx.Client) -> None:
    campaign = create(api, gateways=("gw-00001", "gw-00002"))
    put(api, campaign, "start")
    SandboxControl.over(api).advance(5 * STEP)
    api.post(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": ["gw-00003"]}).raise_for_status()
    report = api.get(f"/api/campaigns/{campaign}/status").json()
    assert (report["totalNumberOfGateways"], report["numberOfGatewaysInDownloadCompleteState"],
            report["numberOfGatewaysInExecutionCompleteState"]) == ("3", "2", "0")


def test_closed_gateway_keeps_its_state_and_cannot_be_removed(api: httpx.Client) -> None:
    campaign = create(api)
    put(api, campaign, "start")
    SandboxControl.over(api).advance(STEP)
    api.put(f"/api/campaigns/{campaign}/devices/gw-00001/close").raise_for_status()
    SandboxControl.over(api).advance(10 * STEP)
    removal = api.put(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": ["gw-00001"]})
    assert (state(api, campaign), removal.status_code) == ("INVENTORY_UP_TO_DATE", 409)


def test_removing_a_gateway_that_is_not_in_the_campaign_is_a_no_op(api: httpx.Client) -> None:
    campaign = create(api)
    reply = api.put(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": ["gw-00005"]})
    gateways = api.get(f"/api/campaigns/{campaign}/devices").json()["gateways"]
    assert (reply.status_code, [g["gatewayId"] for g in gateways]) == (200, ["gw-00001"])


def test_removed_gateway_leaves_the_campaign(api: httpx.Client) -> None:
    campaign = create(api, gateways=("gw-00001", "gw-00002"))
    api.put(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": ["gw-00001"]}).raise_for_status()
    gateways = api.get(f"/api/campaigns/{campaign}/devices").json()["gateways"]
    assert [g["gatewayId"] for g in gateways] == ["gw-00002"]


def test_gateway_packages_are_the_campaigns_until_overridden(api: httpx.Client) -> None:
    campaign = create(api)
    path = f"/api/campaigns/{campaign}/devices/gw-00001/packages"
    campaign_packages = api.get(f"/api/campaigns/{campaign}").json()["packages"]["packages"]
    before = api.get(path).json()["packages"]
    override = api.post("/api/programs/", files={"file": ("de.zip", b"de")}).json()["uuid"]
    api.put(path, json={"packages": [override]}).raise_for_status()
    assert (before, api.get(path).json()["packages"]) == (campaign_packages, [override])


def test_notify_records_the_notification_and_the_gateway_polls_at_once(api: httpx.Client) -> None:
    campaign = create(api)
    put(api, campaign, "start")
    api.put(f"/api/campaigns/{campaign}/devices/gw-00001/notify").raise_for_status()
    notifications = SandboxControl.over(api).state()["notifications"]
    assert state(api, campaign) == "INVENTORY_UP_TO_DATE"
    assert [(n["campaignId"], n["gatewayId"]) for n in notifications] == [(campaign, "gw-00001")]


def test_campaign_ids_repeat_with_the_same_seed() -> None:
    ids = []
    for _ in range(2):
        with serving() as server, logged_in(server.url) as api:
            ids.append(api.post("/api/campaigns", json={"name": "x"}).json()["uuid"])
    assert ids[0] == ids[1]
