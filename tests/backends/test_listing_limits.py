"""Paged listings are bounded, against a real loopback server that pages without end or claims millions
of pages: IoT listings fetch at most ``limits.concurrency`` pages at a time (never a task per claimed
page), a listing over ``limits.maxListPages`` / ``maxListItems`` (or claiming to be) is a
``ReplyLimitError`` naming the backend and the listing, and the same holds for YateOTA participants."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.iot_campaigns.adapter import connect
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.yateota.adapter import YateOtaClient
from reconciler.errors import ReplyLimitError
from reconciler.model import BackendLimits, BackendSpec
from reconciler.secrets import Redactor
from tests.backends.support import JsonHandler, RawServer, iot_spec, json_replies, serving, yateota_spec


def iot_listing(total_pages: int | None, page_size: int = 100) -> JsonHandler:
    """Login, and every list page full (``page_size`` programs or campaigns); ``totalPages`` as given."""
    def handler(method: str, path: str, query: dict[str, list[str]], body: bytes) -> Any:
        if path == "/api/tokens":
            return {"accessToken": "token-for-the-listing-tests"}
        number = int(query.get("page.number", ["0"])[0])
        key = "programs" if path == "/api/programs" else "campaigns"
        items = [{"id": f"{key}-{number}-{i}", "name": f"n-{number}-{i}", "status": "CREATED", "packages": []}
                 for i in range(page_size)]
        info: dict[str, Any] = {"page": number, "pageSize": page_size}
        if total_pages is not None:
            info["totalPages"] = total_pages
        return {key: items, "pageInfo": info}
    return handler


def listing_spec(url: str, options: dict[str, Any] | None = None, **limits: Any) -> BackendSpec:
    return iot_spec(url, name="iot-b", user="ops", password_env="B_SECRET", options=options,
                    limits=BackendLimits(max_retries=0, **limits))


def context(tmp_path: Path) -> ConnectContext:
    return ConnectContext(root=tmp_path, environ={"B_SECRET": "listing-secret-1"}, redactor=Redactor())


def listings(server: RawServer, path: str) -> int:
    return sum(1 for request in server.requests if request.path == path)


async def test_a_listing_that_claims_three_million_pages_is_refused_after_its_first_page(tmp_path: Path) -> None:
    server = await serving(json_replies(iot_listing(total_pages=3_000_000)))
    client = connect(listing_spec(server.url), context(tmp_path))
    try:
        with pytest.raises(ReplyLimitError) as caught:
            await asyncio.wait_for(client.all_packages(), timeout=10)
    finally:
        await client.aclose()
    assert str(caught.value) == ("iot-b list-packages: the listing says it has 3000000 pages, over "
                                 "limits.maxListPages (10000)")
    assert listings(server, "/api/programs") == 1


async def test_a_claim_of_more_items_than_allowed_is_refused_up_front(tmp_path: Path) -> None:
    server = await serving(json_replies(iot_listing(total_pages=2_000)))  # 2,000 pages of 100: 200,000 items
    client = connect(listing_spec(server.url), context(tmp_path))
    try:
        with pytest.raises(ReplyLimitError, match=r"2000 pages of 100 items, over limits.maxListItems \(100000\)"):
            await client.all_campaigns()
    finally:
        await client.aclose()
    assert listings(server, "/api/campaigns") == 1


async def test_pages_are_fetched_a_window_of_concurrency_at_a_time_in_order(tmp_path: Path) -> None:
    server = await serving(json_replies(iot_listing(total_pages=300, page_size=2), delay=0.002))
    client = connect(listing_spec(server.url, concurrency=4), context(tmp_path))
    try:
        packages = await client.all_packages()
    finally:
        await client.aclose()
    assert [p.id for p in packages] == [f"programs-{n}-{i}" for n in range(300) for i in range(2)]
    assert server.most_in_flight <= 4
    assert server.most_tasks < 30  # never a task per page: gathering all 299 at once made ~600


async def test_a_listing_that_never_ends_stops_at_max_list_items(tmp_path: Path) -> None:
    server = await serving(json_replies(iot_listing(total_pages=None)))
    client = connect(listing_spec(server.url, max_list_items=1_000), context(tmp_path))
    try:
        with pytest.raises(ReplyLimitError, match="iot-b list-campaigns: the listing has more than 1000 items"):
            await asyncio.wait_for(client.all_campaigns(), timeout=10)
    finally:
        await client.aclose()
    assert listings(server, "/api/campaigns") == 11


async def test_a_listing_that_never_ends_stops_at_max_list_pages(tmp_path: Path) -> None:
    server = await serving(json_replies(iot_listing(total_pages=None, page_size=1)))
    client = connect(listing_spec(server.url, {"pageSize": 1}, max_list_pages=50), context(tmp_path))
    try:
        with pytest.raises(ReplyLimitError, match="more than 50 pages"):
            await asyncio.wait_for(client.all_packages(), timeout=10)
    finally:
        await client.aclose()


def yate_participants(method: str, path: str, query: dict[str, list[str]], body: bytes) -> Any:
    """Every page of participants full, whatever the offset: a listing without end."""
    params = json.loads(body)["params"]
    offset, limit = int(params.get("offset", 0)), int(params["limit"])
    return {"code": 0, "participants": [{"participant_id": offset + i, "campaign_id": 142, "state": "failed",
                                         "msisdn": "4917000", "attempts": 1} for i in range(limit)]}


async def test_yateota_participants_without_end_stop_at_max_list_items(tmp_path: Path) -> None:
    server = await serving(json_replies(yate_participants))
    spec = yateota_spec(server.url, name="yate-b", secret_env="B_SECRET",
                        limits=BackendLimits(max_retries=0, max_list_items=2_000))
    client = YateOtaClient.connect(spec, context(tmp_path))
    try:
        with pytest.raises(ReplyLimitError) as caught:
            await asyncio.wait_for(client.all_participants(142, state="failed"), timeout=10)
    finally:
        await client.aclose()
    assert str(caught.value) == "yate-b query_participants: the listing has more than 2000 items (limits.maxListItems)"
    assert len(server.requests) == 5  # 500 a page
