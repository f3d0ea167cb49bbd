"""Every method of the IoT campaign manager client round-trips against the sandbox over loopback."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.backends.iot_campaigns.adapter import connect
from reconciler.backends.iot_campaigns.client import IotCampaignsClient
from reconciler.backends.iot_campaigns.replies import DistributionListInfo, PackageProgress
from reconciler.errors import NotFoundError
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.testing import SandboxControl
from tests.backends.test_adapter_iot_campaigns_support import backend_spec, connect_context, iot_sandbox

STEP = 60


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with iot_sandbox(approval_required=True) as running:
        yield running


@pytest.fixture
async def client(server: SandboxServer, tmp_path: Path) -> AsyncIterator[IotCampaignsClient]:
    SandboxControl.of(server).reset()
    client = connect(backend_spec(server.url, options={"pageSize": 2}), connect_context(tmp_path))
    await client.ensure_token()
    yield client
    await client.aclose()


@dataclass(frozen=True)
class World:
    package: str
    campaign: str


def firmware(tmp_path: Path, name: str = "fw.zip", content: bytes = b"PK firmware 2.4") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.fixture
async def world(client: IotCampaignsClient, tmp_path: Path) -> World:
    package = await client.upload_package_multipart(firmware(tmp_path), name="fw-2.4", description="fw")
    campaign = await client.create_campaign(name="rollout", description="d", packages=[package],
                                            settings={"reboot": "graceful"})
    await client.add_gateways(campaign, ["gw-00001", "gw-00002"])
    return World(package, campaign)


def campaign_state(server: SandboxServer) -> dict[str, object]:
    return dict(SandboxControl.of(server).state()["campaigns"][0])


async def run(client: IotCampaignsClient, world: World) -> None:
    await client.approve_campaign(world.campaign)
    await client.start_campaign(world.campaign)


# --- auth and campaigns ----------------------------------------------------------------------------


async def test_login_obtains_a_token_the_api_accepts(server: SandboxServer, tmp_path: Path) -> None:
    SandboxControl.of(server).reset()
    client = connect(backend_spec(server.url), connect_context(tmp_path))
    await client.login()
    await client.list_campaigns()
    await client.aclose()
    assert SandboxControl.of(server).stats().requests == {"POST /api/tokens": 1, "GET /api/campaigns": 1}


async def test_create_campaign_then_get_campaign(client: IotCampaignsClient, world: World) -> None:
    got = await client.get_campaign(world.campaign)
    assert (got.id, got.name, got.description, got.packages, got.status) == (
        world.campaign, "rollout", "d", (world.package,), "APPROVAL_NEEDED")


async def test_create_campaign_sends_settings(client: IotCampaignsClient, world: World,
                                              server: SandboxServer) -> None:
    assert campaign_state(server)["settings"] == {"reboot": "graceful"}


async def test_edit_campaign_replaces_the_fields(client: IotCampaignsClient, world: World) -> None:
    edited = await client.edit_campaign(world.campaign, name="rollout-2", description="v2", packages=[],
                                        settings={})
    got = await client.get_campaign(world.campaign)
    assert (edited, got.name, got.description, got.packages) == (world.campaign, "rollout-2", "v2", ())


async def test_delete_campaign_removes_it(client: IotCampaignsClient, world: World) -> None:
    await client.delete_campaign(world.campaign)
    with pytest.raises(NotFoundError):
        await client.get_campaign(world.campaign)


async def test_list_campaigns_reads_one_page_with_string_totals(client: IotCampaignsClient, world: World) -> None:
    for name in ("b", "c"):
        await client.create_campaign(name=name)
    page = await client.list_campaigns(page=1)
    assert (page.number, page.total_pages, page.total_elements, [s.campaign.name for s in page.items]) == (
        1, 2, 3, ["c"])


async def test_list_campaigns_applies_filters(client: IotCampaignsClient, world: World) -> None:
    await client.create_campaign(name="other")
    page = await client.list_campaigns(filters={"name": "other"})
    assert [s.campaign.name for s in page.items] == ["other"]


async def test_all_campaigns_walks_every_page(client: IotCampaignsClient, server: SandboxServer) -> None:
    for n in range(5):
        await client.create_campaign(name=f"c{n}")
    names = [s.campaign.name for s in await client.all_campaigns()]
    assert (names, SandboxControl.of(server).requests("GET /api/campaigns")) == (["c0", "c1", "c2", "c3", "c4"], 3)


async def test_approve_start_and_stop_move_the_campaign(client: IotCampaignsClient, world: World) -> None:
    seen = []
    for call in (client.approve_campaign, client.start_campaign, client.stop_campaign):
        await call(world.campaign)
        seen.append((await client.get_campaign(world.campaign)).status)
    assert seen == ["APPROVED", "STARTED", "STOPPED"]


async def test_campaign_status_report_counts_gateways(client: IotCampaignsClient, world: World,
                                                      server: SandboxServer) -> None:
    await run(client, world)
    SandboxControl.of(server).advance(5 * STEP)
    report = await client.get_campaign_status(world.campaign)
    assert (report.status, report.total_gateways, report.total_packages, report.download_complete,
            report.activation_complete) == ("STARTED", 2, 1, 2, 0)


async def test_count_campaigns_by_status(client: IotCampaignsClient, world: World) -> None:
    await client.create_campaign(name="waiting")
    await client.approve_campaign(world.campaign)
    counts = await client.count_campaigns_by_status()
    assert (counts.approved_not_started, counts.waiting_approval, counts.started) == (1, 1, 0)


# --- callbacks and distribution list ---------------------------------------------------------------


async def test_the_five_callbacks_are_registered(client: IotCampaignsClient, world: World,
                                                 server: SandboxServer) -> None:
    await client.register_completed_callback(world.campaign, "d1")
    await client.register_wake_up_callback(world.campaign, "d2")
    await client.register_state_change_callback(world.campaign, "d3", ["ACTIVATION_COMPLETE"])
    await client.register_execution_progress_callback(world.campaign, "d4")
    await client.register_download_progress_callback(world.campaign, "d5")
    assert campaign_state(server)["callbacks"] == {
        "completed": {"destination": "d1", "trackedStates": []},
        "wake-up": {"destination": "d2", "trackedStates": []},
        "state-change": {"destination": "d3", "trackedStates": ["ACTIVATION_COMPLETE"]},
        "execution-progress": {"destination": "d4", "trackedStates": []},
        "download-progress": {"destination": "d5", "trackedStates": []},
    }


async def test_distribution_list_round_trips(client: IotCampaignsClient, world: World) -> None:
    before = await client.get_distribution_list(world.campaign)
    await client.set_distribution_list(world.campaign, "berlin", 3600)
    after = await client.get_distribution_list(world.campaign)
    assert (before, after) == (DistributionListInfo(None, None), DistributionListInfo("berlin", 3600))


# --- gateways ---------------------------------------------------------------------------------------


async def test_list_gateways_reads_a_page(client: IotCampaignsClient, world: World) -> None:
    page = await client.list_gateways(world.campaign)
    assert [(g.gateway_id, g.state, g.closed) for g in page.items] == [
        ("gw-00001", "INSTANTIATED", False), ("gw-00002", "INSTANTIATED", False)]


async def test_add_and_remove_gateways(client: IotCampaignsClient, world: World) -> None:
    await client.add_gateways(world.campaign, ["gw-00003", "gw-00004", "gw-00005"])
    await client.remove_gateways(world.campaign, ["gw-00001", "gw-00004"])
    gateways = [g.gateway_id for g in await client.all_gateways(world.campaign)]
    assert gateways == ["gw-00002", "gw-00003", "gw-00005"]


async def test_notify_gateway_is_recorded(client: IotCampaignsClient, world: World,
                                          server: SandboxServer) -> None:
    await client.notify_gateway(world.campaign, "gw-00002")
    assert [n["gatewayId"] for n in SandboxControl.of(server).state()["notifications"]] == ["gw-00002"]


async def test_close_gateway_closes_it(client: IotCampaignsClient, world: World) -> None:
    await client.close_gateway(world.campaign, "gw-00001")
    page = await client.list_gateways(world.campaign)
    assert [g.closed for g in page.items] == [True, False]


async def test_gateway_packages_round_trip(client: IotCampaignsClient, world: World, tmp_path: Path) -> None:
    override = await client.upload_package_multipart(firmware(tmp_path, "de.zip"), name="fw-de")
    await client.assign_gateway_packages(world.campaign, "gw-00001", [override])
    assert (await client.get_gateway_packages(world.campaign, "gw-00001"),
            await client.get_gateway_packages(world.campaign, "gw-00002")) == ((override,), (world.package,))


async def test_the_three_schedules_are_stored(client: IotCampaignsClient, world: World,
                                              server: SandboxServer) -> None:
    await client.schedule_download(world.campaign, "gw-00001", 1_893_456_000_000, 1_893_459_600_000)
    await client.schedule_execution(world.campaign, "gw-00001", 1_893_459_600_000, 1_893_463_200_000)
    await client.schedule_activation(world.campaign, "gw-00001", 1_893_463_200_000, 1_893_466_800_000)
    gateway = campaign_state(server)["gateways"][0]  # type: ignore[index]
    assert gateway["schedules"] == {
        "download": {"begin": "1893456000000", "end": "1893459600000"},
        "execution": {"begin": "1893459600000", "end": "1893463200000"},
        "activation": {"begin": "1893463200000", "end": "1893466800000"},
    }


async def test_gateway_state_follows_the_agent(client: IotCampaignsClient, world: World,
                                                server: SandboxServer) -> None:
    await run(client, world)
    SandboxControl.of(server).advance(3 * STEP + 1)
    assert await client.get_gateway_state(world.campaign, "gw-00001") == "DOWNLOADING"


async def test_download_and_execution_progress(client: IotCampaignsClient, world: World,
                                               server: SandboxServer) -> None:
    await run(client, world)
    SandboxControl.of(server).advance(6 * STEP + 1)
    download = await client.get_download_progress(world.campaign, "gw-00001")
    execution = await client.get_execution_progress(world.campaign, "gw-00001")
    size = len(b"PK firmware 2.4")
    assert (download, execution) == ((PackageProgress(world.package, size, size),), ("100",))


async def test_gateway_status_report(client: IotCampaignsClient, world: World, server: SandboxServer) -> None:
    await run(client, world)
    SandboxControl.of(server).advance(5 * STEP + 30)
    report = await client.get_gateway_status(world.campaign, "gw-00002")
    assert (report.campaign_id, report.gateway_id, report.state, report.execution, len(report.download)) == (
        world.campaign, "gw-00002", "EXECUTING", ("49",), 1)


async def test_active_campaigns_of_a_gateway(client: IotCampaignsClient, world: World) -> None:
    before = await client.get_active_campaigns("gw-00001")
    await run(client, world)
    assert (before, await client.get_active_campaigns("gw-00001")) == ((), (world.campaign,))


# --- packages ----------------------------------------------------------------------------------------


async def test_package_info(client: IotCampaignsClient, world: World) -> None:
    info = await client.get_package_info(world.package)
    assert (info.id, info.name, info.description) == (world.package, "fw-2.4", "fw")


async def test_list_packages_filters_by_name(client: IotCampaignsClient, world: World, tmp_path: Path) -> None:
    await client.upload_package_multipart(firmware(tmp_path, "b.zip"), name="other")
    page = await client.list_packages(name="other")
    assert [p.name for p in page.items] == ["other"]


async def test_all_packages_walks_every_page(client: IotCampaignsClient, tmp_path: Path) -> None:
    for n in range(3):
        await client.upload_package_multipart(firmware(tmp_path, f"{n}.zip"), name=f"p{n}")
    assert [p.name for p in await client.all_packages()] == ["p0", "p1", "p2"]


async def test_delete_package(client: IotCampaignsClient, tmp_path: Path) -> None:
    package = await client.upload_package_multipart(firmware(tmp_path), name="gone")
    await client.delete_package(package)
    with pytest.raises(NotFoundError):
        await client.get_package_info(package)


async def test_multipart_upload_sends_name_description_and_content(client: IotCampaignsClient, tmp_path: Path,
                                                                   server: SandboxServer) -> None:
    content = b"multipart " * 1000
    await client.upload_package_multipart(firmware(tmp_path, content=content), name="fw-x", description="X")
    stored = SandboxControl.of(server).state()["packages"][0]
    assert (stored["name"], stored["description"], stored["size"], stored["sha256"], stored["upload"]) == (
        "fw-x", "X", len(content), hashlib.sha256(content).hexdigest(), "multipart")


async def test_streaming_upload_of_50_mib_from_disk(client: IotCampaignsClient, tmp_path: Path,
                                                    server: SandboxServer) -> None:
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for n in range(50):
            chunk = bytes([n]) * (1 << 20)
            digest.update(chunk)
            file.write(chunk)
    tracemalloc.start()
    try:
        await client.upload_package_streaming(path, name="big", description="50 MiB")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    stored = SandboxControl.of(server).state()["packages"][0]
    assert (stored["name"], stored["size"], stored["sha256"], stored["upload"]) == (
        "big", 50 << 20, digest.hexdigest(), "streaming")
    assert peak < 16 << 20, f"peak traced memory {peak >> 20} MiB"
