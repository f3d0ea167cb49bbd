"""Byte-level IoT campaign manager replies the sandbox never produces (other token keys, numbers as
numbers, list items without packages, lists without totals, a base URL with a path), through
``httpx.MockTransport``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.backends.iot_campaigns.adapter import IotCampaignsReader, connect
from reconciler.backends.iot_campaigns.client import IotCampaignsClient
from reconciler.errors import AuthError, MalformedReplyError
from reconciler.model import DesiredState, IotCampaignSpec
from tests.backends.test_adapter_iot_campaigns_support import (
    PASSWORD,
    USER,
    backend_spec,
    connect_context,
    no_sleep,
)

class FakeBackend:
    """Answers by ``METHOD path`` (a list of replies is used up one per request); records requests."""

    def __init__(self, routes: dict[str, Any], *, token_reply: dict[str, Any] | None = None) -> None:
        self.routes = {"POST /api/tokens": token_reply or {"accessToken": "t-1"}, **routes}
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        reply = self.routes.get(f"{request.method} {request.url.path}")
        if isinstance(reply, list):
            reply = reply.pop(0)
        if reply is None:
            return httpx.Response(404, json={"code": "NOT_FOUND", "message": request.url.path})
        if isinstance(reply, httpx.Response):
            return reply
        return httpx.Response(200, json=reply)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.seen]


def client_for(fake: FakeBackend, tmp_path: Path, url: str = "http://iot.test", **options: object) -> IotCampaignsClient:
    spec = backend_spec(url, options=options or None, max_retries=1)
    return connect(spec, connect_context(tmp_path), transport=httpx.MockTransport(fake), sleep=no_sleep)


@pytest.mark.parametrize("reply", [{"access_token": "t-9"}, {"token": "t-9"}, {"accessToken": "t-9", "x": 1}])
async def test_token_is_read_from_any_usual_key(tmp_path: Path, reply: dict[str, Any]) -> None:
    fake = FakeBackend({"GET /api/campaign-status/campaigns": {}}, token_reply=reply)
    client = client_for(fake, tmp_path)
    await client.count_campaigns_by_status()
    await client.aclose()
    assert fake.seen[-1].headers["Authorization"] == "Bearer t-9"


async def test_login_sends_basic_credentials(tmp_path: Path) -> None:
    fake = FakeBackend({})
    client = client_for(fake, tmp_path)
    await client.login()
    await client.aclose()
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert fake.seen[0].headers["Authorization"] == f"Basic {expected}"


async def test_login_reply_without_a_token_is_malformed(tmp_path: Path) -> None:
    client = client_for(FakeBackend({}, token_reply={"expiresIn": 60}), tmp_path)
    with pytest.raises(MalformedReplyError):
        await client.ensure_token()
    await client.aclose()


async def test_token_reply_without_a_token_during_a_call_is_retried_as_not_processed(tmp_path: Path) -> None:
    fake = FakeBackend({"GET /api/campaign-status/campaigns": {}}, token_reply={"expiresIn": 60})
    client = client_for(fake, tmp_path)
    with pytest.raises(MalformedReplyError) as raised:
        await client.count_campaigns_by_status()
    await client.aclose()
    assert (raised.value.operation, fake.paths()) == ("login", ["POST /api/tokens", "POST /api/tokens"])


async def test_token_url_keeps_the_base_path(tmp_path: Path) -> None:
    fake = FakeBackend({"POST /iotc/api/tokens": {"accessToken": "t-1"},
                        "GET /iotc/api/devices/gw-00001/active-campaigns": {"campaignId": []}})
    client = client_for(fake, tmp_path, url="http://iot.test/iotc")
    await client.get_active_campaigns("gw-00001")
    await client.aclose()
    assert fake.paths() == ["POST /iotc/api/tokens", "GET /iotc/api/devices/gw-00001/active-campaigns"]


async def test_token_path_option_may_be_an_absolute_url(tmp_path: Path) -> None:
    fake = FakeBackend({"POST /auth/login": {"accessToken": "t-1"},
                        "GET /api/devices/gw-1/active-campaigns": {"campaignId": ["c"]}})
    client = client_for(fake, tmp_path, tokenPath="http://sso.test/auth/login")
    assert await client.get_active_campaigns("gw-1") == ("c",)
    await client.aclose()
    assert str(fake.seen[0].url) == "http://sso.test/auth/login"


async def test_a_401_renews_the_token_once_and_resends(tmp_path: Path) -> None:
    fake = FakeBackend({"GET /api/campaigns/c/devices/g/state": [
        httpx.Response(401, json={"code": "UNAUTHORIZED", "message": "token expired"}), {"state": "DOWNLOADING"}]})
    client = client_for(fake, tmp_path)
    assert await client.get_gateway_state("c", "g") == "DOWNLOADING"
    await client.aclose()
    assert fake.paths() == ["POST /api/tokens", "GET /api/campaigns/c/devices/g/state", "POST /api/tokens",
                            "GET /api/campaigns/c/devices/g/state"]


async def test_a_second_401_after_renewing_is_an_auth_error(tmp_path: Path) -> None:
    refused = httpx.Response(401, json={"code": "UNAUTHORIZED", "message": "no"})
    fake = FakeBackend({"GET /api/campaigns/c/devices/g/state": [refused, refused, {"state": "X"}]})
    client = client_for(fake, tmp_path)
    with pytest.raises(AuthError):
        await client.get_gateway_state("c", "g")
    await client.aclose()
    assert fake.paths().count("POST /api/tokens") == 2


async def test_page_totals_as_json_numbers_are_accepted(tmp_path: Path) -> None:
    fake = FakeBackend({"GET /api/programs": {
        "pageInfo": {"totalPages": 1, "totalElements": 1, "page": "0", "pageSize": "100"},
        "programs": [{"id": "p1", "name": "fw", "description": "", "createdBy": "a", "createdOn": 1}]}})
    client = client_for(fake, tmp_path)
    page = await client.list_packages()
    await client.aclose()
    assert (page.total_pages, page.total_elements, page.items[0].created_on) == (1, 1, "1")


async def test_list_packages_as_the_seed_shows_it_is_a_page_of_one(tmp_path: Path) -> None:
    fake = FakeBackend({"GET /api/programs": {"description": "", "id": "p1", "createdBy": "a", "createdOn": "x",
                                              "name": "fw"}})
    client = client_for(fake, tmp_path)
    packages = await client.all_packages()
    await client.aclose()
    assert [p.id for p in packages] == ["p1"]


async def test_lists_without_totals_are_read_until_a_short_page(tmp_path: Path) -> None:
    pages = {0: ["g1", "g2"], 1: ["g3", "g4"], 2: ["g5"]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/tokens":
            return httpx.Response(200, json={"accessToken": "t"})
        number = int(request.url.params["page.number"])
        return httpx.Response(200, json={"gateways": [{"gatewayId": g, "state": "X", "closed": "false"}
                                                      for g in pages[number]]})

    client = connect(backend_spec("http://iot.test", options={"pageSize": 2}), connect_context(tmp_path),
                     transport=httpx.MockTransport(handler))
    gateways = await client.all_gateways("c")
    await client.aclose()
    assert [g.gateway_id for g in gateways] == ["g1", "g2", "g3", "g4", "g5"]


async def test_campaign_listed_without_packages_is_read_with_get_campaign(tmp_path: Path) -> None:
    item = {"id": "c1", "name": "rollout", "status": "STARTED", "description": "", "creationTime": "1"}
    fake = FakeBackend({
        "GET /api/programs": {"pageInfo": {"totalPages": "1"}, "programs": []},
        "GET /api/campaigns": {"pageInfo": {"totalPages": "1"}, "campaigns": [item]},
        "GET /api/campaigns/c1": {**item, "packages": {"packages": ["p1"]}},
        "GET /api/campaigns/c1/devices": {"pageResponse": {"totalPages": "1"}, "gateways": []},
    })
    reader = IotCampaignsReader(backend="b1", client=client_for(fake, tmp_path))
    observation = await reader.observe(DesiredState(campaigns={"rollout": IotCampaignSpec("rollout", "b1")}))
    await reader.aclose()
    assert observation.iot_campaigns[0].packages == ("p1",)
    assert "GET /api/campaigns/c1" in fake.paths()


async def test_counts_accept_the_correct_spelling_too(tmp_path: Path) -> None:
    fake = FakeBackend({"GET /api/campaign-status/campaigns": {"approvedNotStartedCount": 4, "startedCount": "2"}})
    client = client_for(fake, tmp_path)
    counts = await client.count_campaigns_by_status()
    await client.aclose()
    assert (counts.approved_not_started, counts.started, counts.stopped) == (4, 2, 0)


async def test_reply_that_is_not_json_is_malformed(tmp_path: Path) -> None:
    fake = FakeBackend({"GET /api/campaigns/c1": httpx.Response(200, text="<html>maintenance</html>")})
    client = client_for(fake, tmp_path)
    with pytest.raises(MalformedReplyError):
        await client.get_campaign("c1")
    await client.aclose()


async def test_campaign_item_of_the_wrong_type_is_malformed(tmp_path: Path) -> None:
    fake = FakeBackend({"GET /api/campaigns": {"pageInfo": {}, "campaigns": ["not-an-object"]}})
    client = client_for(fake, tmp_path)
    with pytest.raises(MalformedReplyError):
        await client.list_campaigns()
    await client.aclose()


async def test_request_bodies_follow_the_seed(tmp_path: Path) -> None:
    fake = FakeBackend({"PUT /api/campaigns/c1": {"uuid": "c1"}})
    client = client_for(fake, tmp_path)
    await client.edit_campaign("c1", name="n", description="d", packages=["p"], settings={"k": "v"})
    await client.aclose()
    assert json.loads(fake.seen[-1].content) == {
        "updateSpec": {"name": "n", "description": "d", "packages": ["p"], "campaignSettings": {"settings": {"k": "v"}}},
        "campaignId": "c1"}
