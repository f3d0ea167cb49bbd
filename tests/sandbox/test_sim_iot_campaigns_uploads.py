"""Package uploads to the IoT campaign manager simulator: multipart (size-limited) and streaming
(unlimited), both read incrementally and stored as size + SHA-256 only."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.iot_campaigns.app import IotCampaignsSimulator
from reconciler.sandbox.testing import SandboxControl, running_simulator
from tests.sandbox.test_sim_iot_campaigns_support import logged_in

LIMIT = 4096
MIB = 1 << 20


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    clock = SimClock()
    with running_simulator(IotCampaignsSimulator(clock=clock, seed=9, max_upload_bytes=LIMIT), clock=clock) as running:
        yield running


@pytest.fixture
def api(server: SandboxServer) -> Iterator[httpx.Client]:
    SandboxControl.of(server).reset()
    with logged_in(server.url) as client:
        yield client


def stored(api: httpx.Client) -> list[dict[str, object]]:
    return [{k: p[k] for k in ("name", "description", "size", "sha256", "upload")}
            for p in SandboxControl.over(api).state()["packages"]]


def test_multipart_upload_keeps_name_description_size_and_hash(api: httpx.Client) -> None:
    content = b"firmware " * 100
    api.post("/api/programs/", files={"file": ("gw-fw-2.4.zip", content)}, data={"description": "A"}).raise_for_status()
    assert stored(api) == [{"name": "gw-fw-2.4.zip", "description": "A", "size": len(content),
                            "sha256": hashlib.sha256(content).hexdigest(), "upload": "multipart"}]


def test_multipart_upload_over_the_limit_is_a_413(api: httpx.Client) -> None:
    reply = api.post("/api/programs/", files={"file": ("big.zip", b"x" * (2 * LIMIT))})
    assert (reply.status_code, reply.json()["code"], stored(api)) == (413, "PAYLOAD_TOO_LARGE", [])


def test_streaming_upload_has_no_size_limit(api: httpx.Client) -> None:
    content = b"y" * (3 * LIMIT)
    reply = api.post("/api/programs/", params={"name": "big.zip"}, content=content)
    assert (reply.status_code, stored(api)[0]["size"]) == (200, len(content))


def test_streaming_upload_of_50_mib_stores_its_size_and_hash(api: httpx.Client) -> None:
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for n in range(50):
            chunk = bytes([n]) * MIB
            digest.update(chunk)
            yield chunk

    reply = api.post("/api/programs/", params={"name": "huge.bin", "description": "50 MiB"}, content=chunks(),
                     timeout=60)
    reply.raise_for_status()
    assert stored(api) == [{"name": "huge.bin", "description": "50 MiB", "size": 50 * MIB,
                            "sha256": digest.hexdigest(), "upload": "streaming"}]


def test_streaming_upload_without_a_name_is_a_400(api: httpx.Client) -> None:
    assert api.post("/api/programs/", content=b"data").status_code == 400


def test_multipart_upload_without_a_file_part_is_a_400(api: httpx.Client) -> None:
    reply = api.post("/api/programs/", files={"other": ("x.zip", b"x")})
    assert reply.status_code == 400 and "file" in reply.json()["message"]


def test_upload_description_over_128_characters_is_a_400(api: httpx.Client) -> None:
    reply = api.post("/api/programs/", files={"file": ("x.zip", b"x")}, data={"description": "d" * 129})
    assert (reply.status_code, stored(api)) == (400, [])


def test_package_info_names_the_uploader(api: httpx.Client) -> None:
    package = api.post("/api/programs/", files={"file": ("x.zip", b"x")}).json()["uuid"]
    info = api.get(f"/api/programs/{package}/file-info").json()
    assert (info["id"], info["name"], info["createdBy"]) == (package, "x.zip", "admin")
