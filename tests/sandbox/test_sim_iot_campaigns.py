"""The IoT campaign manager simulator's contract: every seed endpoint, sent the seed's example body,
answers the seed's documented shape; plus auth, validation and paging rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.iot_campaigns.app import IotCampaignsSimulator
from reconciler.sandbox.iot_campaigns.model import ALL_PERMISSIONS
from reconciler.sandbox.testing import SandboxControl, running_simulator
from tests.sandbox.test_sim_iot_campaigns_support import assert_shape, logged_in

VIEWER_PERMISSIONS = frozenset({"View Campaign", "View Package"})


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    clock = SimClock()
    users = {"admin": ("admin", ALL_PERMISSIONS), "viewer": ("viewer-pw", VIEWER_PERMISSIONS)}
    sim = IotCampaignsSimulator(clock=clock, seed=7, approval_required=True, users=users)
    with running_simulator(sim, clock=clock) as running:
        yield running


@pytest.fixture
def api(server: SandboxServer) -> Iterator[httpx.Client]:
    SandboxControl.of(server).reset()
    with logged_in(server.url) as client:
        yield client


@dataclass
class World:
    """A package, a campaign using it (APPROVAL_NEEDED) with gateways gw-00001 and gw-00002."""

    package: str
    campaign: str
    gateway: str = "gw-00001"

    def fill(self, text: str) -> str:
        return text.format(c=self.campaign, g=self.gateway, p=self.package)


def upload(api: httpx.Client, name: str = "fw-1.zip", content: bytes = b"PK\x03\x04firmware") -> str:
    reply = api.post("/api/programs/", files={"file": (name, content)}, data={"description": "A"})
    reply.raise_for_status()
    return str(reply.json()["uuid"])


@pytest.fixture
def world(api: httpx.Client) -> World:
    package = upload(api)
    campaign = api.post("/api/campaigns", json={"name": "fw-rollout", "packages": [package]}).json()["uuid"]
    api.post(f"/api/campaigns/{campaign}/devices", json={"gatewayIds": ["gw-00001", "gw-00002"]}).raise_for_status()
    return World(package, campaign)


# --- the seed's documented reply shapes ------------------------------------------------------------

EMPTY: dict[str, Any] = {}
UUID = {"uuid": "string"}
CAMPAIGN = {"status": "string", "name": "string", "creationTime": "string", "packages": {"packages": ["string"]},
            "id": "string", "description": "string"}
PAGE_INFO = {"totalPages": "string", "totalElements": "string", "page": 0, "pageSize": 0}
PACKAGE = {"description": "string", "id": "string", "createdBy": "string", "createdOn": "string", "name": "string"}
PROGRESS = {"packagesProgress": [{"progress": "string", "total": "string", "id": "string"}]}
SETTINGS = {"settings": {"additionalProp1": "string", "additionalProp2": "string", "additionalProp3": "string"}}

Setup = Callable[[httpx.Client, World], None]


def _put(path: str, body: dict[str, Any] | None = None) -> Setup:
    def run(api: httpx.Client, world: World) -> None:
        api.put(world.fill(path), json=body or {"campaignId": world.campaign}).raise_for_status()

    return run


APPROVE = _put("/api/campaigns/{c}/approve")
START = _put("/api/campaigns/{c}/start")
SET_DL = _put("/api/campaigns/{c}/distribution-list", {"distributionListId": "berlin",
                                                        "reevaluationIntervalSeconds": "3600"})


def _upload_spare(api: httpx.Client, world: World) -> None:
    world.package = upload(api, "spare.zip")


def _run_to_execution(api: httpx.Client, world: World) -> None:
    APPROVE(api, world)
    START(api, world)
    SandboxControl.over(api).advance(6 * 60 + 30)  # mid-EXECUTING with 60 s steps


@dataclass(frozen=True)
class SeedCall:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None
    shape: Any
    setup: tuple[Setup, ...] = field(default=())


SEED_CALLS = [
    SeedCall("create-campaign", "POST", "/api/campaigns",
             {"name": "string", "description": "string", "packages": ["{p}"], "campaignSettings": SETTINGS}, UUID),
    SeedCall("edit-campaign", "PUT", "/api/campaigns/{c}",
             {"updateSpec": {"name": "string", "description": "string", "packages": ["{p}"],
                             "campaignSettings": SETTINGS}, "campaignId": "{c}"}, UUID),
    SeedCall("delete-campaign", "DELETE", "/api/campaigns/{c}", None, EMPTY),
    SeedCall("get-campaign", "GET", "/api/campaigns/{c}", None, CAMPAIGN),
    SeedCall("start-campaign", "PUT", "/api/campaigns/{c}/start", {"campaignId": "{c}"}, EMPTY, (APPROVE,)),
    SeedCall("stop-campaign", "PUT", "/api/campaigns/{c}/stop", {"campaignId": "{c}"}, EMPTY, (APPROVE, START)),
    SeedCall("approve-campaign", "PUT", "/api/campaigns/{c}/approve", {"campaignId": "{c}"}, EMPTY),
    *(SeedCall(f"callback-{kind}", "PUT", f"/api/campaigns/{{c}}/callbacks/{kind}",
               {"notificationDestinationId": "string", "campaignId": "{c}"}, EMPTY)
      for kind in ("completed", "wake-up", "execution-progress", "download-progress")),
    SeedCall("callback-state-change", "PUT", "/api/campaigns/{c}/callbacks/state-change",
             {"notificationDestinationId": "string", "trackedStates": ["string"], "campaignId": "{c}"}, EMPTY),
    SeedCall("notify-gateway", "PUT", "/api/campaigns/{c}/devices/{g}/notify",
             {"gatewayId": "{g}", "campaignId": "{c}"}, EMPTY),
    SeedCall("assign-gateway-packages", "PUT", "/api/campaigns/{c}/devices/{g}/packages",
             {"gatewayId": "{g}", "packages": ["{p}"], "campaignId": "{c}"}, EMPTY),
    SeedCall("get-gateway-packages", "GET", "/api/campaigns/{c}/devices/{g}/packages", None,
             {"packages": ["string"]}),
    SeedCall("get-gateways", "GET", "/api/campaigns/{c}/devices", None,
             {"pageResponse": PAGE_INFO, "gateways": [{"gatewayId": "string", "state": "string", "closed": True}]}),
    SeedCall("list-campaigns", "GET", "/api/campaigns?name=fw-rollout&status=APPROVAL_NEEDED", None,
             {"pageInfo": PAGE_INFO, "campaigns": [CAMPAIGN]}),
    SeedCall("add-gateways", "POST", "/api/campaigns/{c}/devices",
             {"gatewayIds": ["gw-00003"], "campaignId": "{c}"}, EMPTY),
    SeedCall("remove-gateways", "PUT", "/api/campaigns/{c}/devices",
             {"gatewayIds": ["gw-00002"], "campaignId": "{c}"}, EMPTY),
    SeedCall("set-distribution-list", "PUT", "/api/campaigns/{c}/distribution-list",
             {"distributionListId": "string", "reevaluationIntervalSeconds": "3600", "campaignId": "{c}"}, EMPTY),
    SeedCall("get-distribution-list", "GET", "/api/campaigns/{c}/distribution-list", None,
             {"distributionListId": "string", "reevaluationIntervalSeconds": "string", "campaignId": "string"},
             (SET_DL,)),
    *(SeedCall(f"schedule-{window}", "PUT", f"/api/campaigns/{{c}}/devices/{{g}}/scheduled-{window}",
               {"begin": "1893456000000", "end": "1893459600000"}, EMPTY)
      for window in ("download", "activation", "execution")),
    SeedCall("close-gateway", "PUT", "/api/campaigns/{c}/devices/{g}/close",
             {"gatewayId": "{g}", "campaignId": "{c}"}, EMPTY),
    SeedCall("get-gateway-state", "GET", "/api/campaigns/{c}/devices/{g}/state", None, {"state": "string"}),
    SeedCall("get-execution-progress", "GET", "/api/campaigns/{c}/devices/{g}/progress/execution", None,
             {"progress": ["string"]}, (_run_to_execution,)),
    SeedCall("get-download-progress", "GET", "/api/campaigns/{c}/devices/{g}/progress/download", None, PROGRESS),
    SeedCall("get-active-campaigns", "GET", "/api/devices/{g}/active-campaigns", None, {"campaignId": ["string"]},
             (APPROVE, START)),
    SeedCall("get-overall-status", "GET", "/api/campaigns/{c}/status", None, {
        "status": "string", "name": "string", "campaignId": "string",
        "numberOfGatewaysInActivationCompleteState": "string", "numberOfGatewaysInExecutionCompleteState": "string",
        "creationTime": "string", "modificationTime": "string", "totalNumberOfGateways": "string",
        "totalNumberOfPackages": "string", "numberOfGatewaysInDownloadCompleteState": "string",
        "description": "string"}),
    SeedCall("get-status-per-gateway", "GET", "/api/campaigns/{c}/devices/{g}/status", None, {
        "campaignId": "string", "campaignState": {"state": "string"}, "timestamp": "string",
        "downloadProgress": PROGRESS, "executionProgress": ["string"], "gatewayId": "string"},
        (_run_to_execution,)),
    SeedCall("count-by-status", "GET", "/api/campaign-status/campaigns", None, {
        "aprovedNotStartedCount": "string", "startedCount": "string", "stoppedCount": "string",
        "waitingApprovalCount": "string", "noApprovalNeededReadyToStartCount": "string"}),
    SeedCall("get-package-info", "GET", "/api/programs/{p}/file-info", None, PACKAGE),
    SeedCall("list-packages", "GET", "/api/programs?name=fw-1.zip", None, {"pageInfo": PAGE_INFO, "programs": [PACKAGE]}),
    SeedCall("delete-package", "DELETE", "/api/programs/{p}", None, EMPTY, (_upload_spare,)),
]


def _fill(value: Any, world: World) -> Any:
    if isinstance(value, str):
        return world.fill(value)
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    return value


@pytest.mark.parametrize("call", SEED_CALLS, ids=lambda c: c.name)
def test_seed_endpoint_answers_the_documented_shape(api: httpx.Client, world: World, call: SeedCall) -> None:
    for step in call.setup:
        step(api, world)
    body = None if call.body is None else _fill(call.body, world)
    reply = api.request(call.method, world.fill(call.path), json=body)
    assert reply.status_code == 200, reply.text
    assert_shape(reply.json(), call.shape)


def test_seed_upload_multipart_answers_a_uuid(api: httpx.Client) -> None:
    reply = api.post("/api/programs/", files={"file": ("fw.zip", b"zip bytes")}, data={"description": "A"})
    assert_shape(reply.json(), UUID)


def test_seed_upload_streaming_answers_a_uuid(api: httpx.Client) -> None:
    reply = api.post("/api/programs/", params={"name": "fw.zip", "description": "A"}, content=b"zip bytes",
                     headers={"Content-Type": "application/zip"})
    assert_shape(reply.json(), UUID)


def test_paths_the_seed_writes_without_a_leading_slash_are_served(api: httpx.Client, world: World) -> None:
    execution = api.get(world.fill("/api/campaigns/{c}/devices/{g}/progress/execution"))
    schedule = api.put(world.fill("/api/campaigns/{c}/devices/{g}/scheduled-execution"),
                       json={"begin": "1", "end": "2"})
    assert (execution.status_code, schedule.status_code) == (200, 200)


def test_upload_without_trailing_slash_is_accepted(api: httpx.Client) -> None:
    reply = api.post("/api/programs", files={"file": ("fw.zip", b"zip bytes")})
    assert reply.status_code == 200


# --- auth --------------------------------------------------------------------------------------------


def test_token_reply_carries_bearer_type_and_lifetime(server: SandboxServer) -> None:
    reply = httpx.post(f"{server.url}/api/tokens", auth=("admin", "admin")).json()
    assert (reply["tokenType"], reply["expiresIn"], bool(reply["accessToken"])) == ("Bearer", 3600, True)


def test_wrong_password_gets_401(server: SandboxServer) -> None:
    reply = httpx.post(f"{server.url}/api/tokens", auth=("admin", "nope"))
    assert (reply.status_code, reply.json()["code"]) == (401, "UNAUTHORIZED")


def test_request_without_token_gets_401(server: SandboxServer) -> None:
    assert httpx.get(f"{server.url}/api/campaigns").status_code == 401


def test_expired_token_gets_401(api: httpx.Client) -> None:
    SandboxControl.over(api).advance(3601)
    assert api.get("/api/campaigns").status_code == 401


def test_missing_permission_gets_403(server: SandboxServer) -> None:
    with logged_in(server.url, user="viewer", password="viewer-pw") as viewer:
        reply = viewer.post("/api/campaigns", json={"name": "x"})
    assert (reply.status_code, reply.json()["code"]) == (403, "FORBIDDEN")
    assert "Create Campaign" in reply.json()["message"]


def test_view_permission_suffices_for_reads(server: SandboxServer) -> None:
    with logged_in(server.url, user="viewer", password="viewer-pw") as viewer:
        assert viewer.get("/api/campaigns").status_code == 200


# --- validation --------------------------------------------------------------------------------------


def test_campaign_without_name_is_a_400(api: httpx.Client) -> None:
    reply = api.post("/api/campaigns", json={"description": "no name"})
    assert (reply.status_code, reply.json()["code"]) == (400, "BAD_REQUEST")


def test_description_over_128_characters_is_a_400(api: httpx.Client) -> None:
    reply = api.post("/api/campaigns", json={"name": "x", "description": "d" * 129})
    assert reply.status_code == 400 and "128" in reply.json()["message"]


def test_description_of_128_characters_is_accepted(api: httpx.Client) -> None:
    assert api.post("/api/campaigns", json={"name": "x", "description": "d" * 128}).status_code == 200


def test_unknown_package_in_a_campaign_is_a_400(api: httpx.Client) -> None:
    reply = api.post("/api/campaigns", json={"name": "x", "packages": ["no-such-package"]})
    assert reply.status_code == 400 and "no-such-package" in reply.json()["message"]


def test_adding_an_unknown_gateway_is_a_400_naming_it(api: httpx.Client, world: World) -> None:
    reply = api.post(world.fill("/api/campaigns/{c}/devices"), json={"gatewayIds": ["gw-00001", "gw-99999"]})
    assert reply.status_code == 400 and "gw-99999" in reply.json()["message"]


def test_schedule_with_begin_not_before_end_is_a_400(api: httpx.Client, world: World) -> None:
    reply = api.put(world.fill("/api/campaigns/{c}/devices/{g}/scheduled-download"),
                    json={"begin": "2000", "end": "2000"})
    assert reply.status_code == 400


def test_schedule_accepts_numbers_as_well_as_strings(api: httpx.Client, world: World) -> None:
    reply = api.put(world.fill("/api/campaigns/{c}/devices/{g}/scheduled-download"),
                    json={"begin": 1893456000000, "end": 1893459600000})
    assert reply.status_code == 200


def test_campaign_id_in_body_must_match_the_path(api: httpx.Client, world: World) -> None:
    reply = api.put(world.fill("/api/campaigns/{c}/approve"), json={"campaignId": "another"})
    assert reply.status_code == 400


def test_unknown_campaign_is_a_404(api: httpx.Client) -> None:
    reply = api.get("/api/campaigns/00000000-0000-4000-8000-000000000000")
    assert (reply.status_code, reply.json()["code"]) == (404, "NOT_FOUND")


def test_gateway_not_in_the_campaign_is_a_404(api: httpx.Client, world: World) -> None:
    assert api.get(world.fill("/api/campaigns/{c}/devices/gw-00009/state")).status_code == 404


def test_deleting_a_package_a_campaign_uses_is_a_409(api: httpx.Client, world: World) -> None:
    reply = api.delete(world.fill("/api/programs/{p}"))
    assert reply.status_code == 409 and world.campaign in reply.json()["message"]


def test_deleting_a_package_used_only_as_a_gateway_override_is_a_409(api: httpx.Client, world: World) -> None:
    spare = upload(api, "spare.zip")
    api.put(world.fill("/api/campaigns/{c}/devices/{g}/packages"), json={"packages": [spare]}).raise_for_status()
    assert api.delete(f"/api/programs/{spare}").status_code == 409


# --- lists -------------------------------------------------------------------------------------------


def _create_campaigns(api: httpx.Client, count: int) -> None:
    for n in range(count):
        api.post("/api/campaigns", json={"name": f"c-{n:03d}"}).raise_for_status()


def test_page_size_is_capped_at_100(api: httpx.Client) -> None:
    _create_campaigns(api, 120)
    reply = api.get("/api/campaigns", params={"page.size": 500}).json()
    assert (len(reply["campaigns"]), reply["pageInfo"]["pageSize"], reply["pageInfo"]["totalPages"]) == (100, 100, "2")


def test_second_page_holds_the_rest(api: httpx.Client) -> None:
    _create_campaigns(api, 25)
    reply = api.get("/api/campaigns", params={"page.number": 1, "page.size": 10}).json()
    assert [c["name"] for c in reply["campaigns"]] == [f"c-{n:03d}" for n in range(10, 20)]


def test_page_and_size_are_accepted_as_short_parameter_names(api: httpx.Client) -> None:
    _create_campaigns(api, 5)
    reply = api.get("/api/campaigns", params={"page": 1, "size": 2}).json()
    assert [c["name"] for c in reply["campaigns"]] == ["c-002", "c-003"]


def test_list_campaigns_filters_by_status(api: httpx.Client, world: World) -> None:
    _create_campaigns(api, 2)
    APPROVE(api, world)
    reply = api.get("/api/campaigns", params={"status": "APPROVED"}).json()
    assert [c["id"] for c in reply["campaigns"]] == [world.campaign]


def test_list_campaigns_sorts_descending_by_name(api: httpx.Client) -> None:
    _create_campaigns(api, 3)
    reply = api.get("/api/campaigns", params={"page.sort": "name,desc"}).json()
    assert [c["name"] for c in reply["campaigns"]] == ["c-002", "c-001", "c-000"]


def test_unknown_status_filter_is_a_400(api: httpx.Client) -> None:
    assert api.get("/api/campaigns", params={"status": "RUNNING"}).status_code == 400


def test_gateway_list_pages_under_page_response(api: httpx.Client, world: World) -> None:
    api.post(world.fill("/api/campaigns/{c}/devices"), json={"gatewayIds": [f"gw-{n:05d}" for n in range(3, 8)]})
    reply = api.get(world.fill("/api/campaigns/{c}/devices"), params={"page.number": 2, "page.size": 3}).json()
    assert reply["pageResponse"] == {"totalPages": "3", "totalElements": "7", "page": 2, "pageSize": 3}
    assert [g["gatewayId"] for g in reply["gateways"]] == ["gw-00007"]


def test_list_packages_filters_by_name(api: httpx.Client) -> None:
    upload(api, "a.zip")
    upload(api, "b.zip")
    reply = api.get("/api/programs", params={"name": "b.zip"}).json()
    assert [p["name"] for p in reply["programs"]] == ["b.zip"]
