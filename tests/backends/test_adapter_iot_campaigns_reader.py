"""The IoT campaign manager Reader: what one observation contains and exactly which requests it costs."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from reconciler.backends.iot_campaigns.adapter import ADAPTER, connect
from reconciler.backends.iot_campaigns.client import IotCampaignsClient
from reconciler.model import (
    DesiredState,
    DistributionList,
    GatewayAssignmentSpec,
    IotCampaignSpec,
    SimCampaignSpec,
)
from reconciler.observed import BackendObservation, ObservedGateway
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.testing import SandboxControl
from tests.backends.test_adapter_iot_campaigns_support import backend_spec, connect_context, iot_sandbox


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with iot_sandbox() as running:
        yield running


@pytest.fixture
async def setup(server: SandboxServer, tmp_path: Path) -> AsyncIterator[IotCampaignsClient]:
    """A client to build the backend's contents with; stats are cleared before the test body's reads."""
    SandboxControl.of(server).reset()
    client = connect(backend_spec(server.url), connect_context(tmp_path))
    yield client
    await client.aclose()


async def make_campaign(client: IotCampaignsClient, name: str, gateways: tuple[str, ...] = ("gw-00001",),
                        packages: tuple[str, ...] = ()) -> str:
    campaign = await client.create_campaign(name=name, packages=packages)
    if gateways:
        await client.add_gateways(campaign, gateways)
    return campaign


def declared(*campaigns: IotCampaignSpec, assignments: tuple[GatewayAssignmentSpec, ...] = ()) -> DesiredState:
    return DesiredState(campaigns={c.name: c for c in campaigns}, assignments={a.name: a for a in assignments})


async def observe(server: SandboxServer, tmp_path: Path, desired: DesiredState,
                  **spec_options: object) -> BackendObservation:
    server.app.stats.clear()
    reader = ADAPTER.reader(backend_spec(server.url, options=spec_options or None), connect_context(tmp_path))
    try:
        return await reader.observe(desired)
    finally:
        await reader.aclose()


async def test_two_declared_campaigns_cost_exactly_five_requests(setup: IotCampaignsClient, server: SandboxServer,
                                                                 tmp_path: Path) -> None:
    await make_campaign(setup, "a")
    await make_campaign(setup, "b")
    await observe(server, tmp_path, declared(IotCampaignSpec("a", "b1"), IotCampaignSpec("b", "b1")))
    assert SandboxControl.of(server).stats().requests == {
        "POST /api/tokens": 1, "GET /api/programs": 1, "GET /api/campaigns": 1,
        "GET /api/campaigns/{campaign_id}/devices": 2}


async def test_distribution_list_is_read_only_for_campaigns_that_declare_one(
        setup: IotCampaignsClient, server: SandboxServer, tmp_path: Path) -> None:
    first = await make_campaign(setup, "a")
    await make_campaign(setup, "b")
    await setup.set_distribution_list(first, "berlin", 600)
    observation = await observe(server, tmp_path, declared(
        IotCampaignSpec("a", "b1", distribution_list=DistributionList("berlin", 600)), IotCampaignSpec("b", "b1")))
    by_name = {c.name: c for c in observation.iot_campaigns}
    assert SandboxControl.of(server).requests("GET /api/campaigns/{campaign_id}/distribution-list") == 1
    assert (by_name["a"].distribution_list_id, by_name["a"].distribution_list_interval) == ("berlin", 600)
    assert by_name["b"].distribution_list_id is None


async def test_gateway_packages_are_read_only_for_overridden_gateways_in_the_campaign(
        setup: IotCampaignsClient, server: SandboxServer, tmp_path: Path) -> None:
    await make_campaign(setup, "a", gateways=("gw-00001", "gw-00002"))
    assignments = (
        GatewayAssignmentSpec("berlin", "a", gateways=("gw-00001", "gw-00077"), packages=("fw-de",)),
        GatewayAssignmentSpec("rest", "a", gateways=("gw-00002",)),
    )
    observation = await observe(server, tmp_path, declared(IotCampaignSpec("a", "b1"), assignments=assignments))
    assert SandboxControl.of(server).requests("GET /api/campaigns/{campaign_id}/devices/{gateway_id}/packages") == 1
    assert observation.iot_campaigns[0].gateways == (
        ObservedGateway("gw-00001", "INSTANTIATED", False, ()), ObservedGateway("gw-00002", "INSTANTIATED", False))


async def test_observation_holds_packages_and_declared_campaign_details(
        setup: IotCampaignsClient, server: SandboxServer, tmp_path: Path) -> None:
    firmware = tmp_path / "fw.zip"
    firmware.write_bytes(b"fw")
    package = await setup.upload_package_multipart(firmware, name="fw-abc", description="Firmware")
    campaign = await make_campaign(setup, "a", packages=(package,))
    observation = await observe(server, tmp_path, declared(IotCampaignSpec("a", "b1")))
    assert observation.readable
    assert [(p.id, p.name, p.description) for p in observation.iot_packages] == [(package, "fw-abc", "Firmware")]
    (observed,) = observation.iot_campaigns
    assert (observed.id, observed.status, observed.packages, observed.gateways) == (
        campaign, "CREATED", (package,), (ObservedGateway("gw-00001", "INSTANTIATED"),))


async def test_undeclared_campaigns_are_listed_without_details(setup: IotCampaignsClient, server: SandboxServer,
                                                               tmp_path: Path) -> None:
    await make_campaign(setup, "foreign")
    other_backend = IotCampaignSpec("foreign", "b2")
    observation = await observe(server, tmp_path, DesiredState(campaigns={"foreign": other_backend}))
    assert [(c.name, c.gateways) for c in observation.iot_campaigns] == [("foreign", ())]
    assert SandboxControl.of(server).requests("GET /api/campaigns/{campaign_id}/devices") == 0


async def test_declared_campaign_missing_from_the_backend_is_absent(setup: IotCampaignsClient,
                                                                    server: SandboxServer, tmp_path: Path) -> None:
    observation = await observe(server, tmp_path, declared(IotCampaignSpec("new", "b1")))
    assert (observation.readable, observation.iot_campaigns) == (True, ())


async def test_campaigns_of_other_kinds_are_not_read_in_detail(setup: IotCampaignsClient, server: SandboxServer,
                                                               tmp_path: Path) -> None:
    await make_campaign(setup, "sim")
    desired = DesiredState(campaigns={"sim": SimCampaignSpec("sim", "b1", campaign_id=147)})
    await observe(server, tmp_path, desired)
    assert SandboxControl.of(server).requests("GET /api/campaigns/{campaign_id}/devices") == 0


async def test_every_page_of_campaigns_and_gateways_is_read(setup: IotCampaignsClient, server: SandboxServer,
                                                            tmp_path: Path) -> None:
    for n in range(5):
        await make_campaign(setup, f"c{n}", gateways=("gw-00001", "gw-00002", "gw-00003"))
    observation = await observe(server, tmp_path, declared(IotCampaignSpec("c0", "b1")), pageSize=2)
    by_name = {c.name: c for c in observation.iot_campaigns}
    assert (len(by_name), len(by_name["c0"].gateways)) == (5, 3)
    sandbox = SandboxControl.of(server)
    pages = (sandbox.requests("GET /api/campaigns"), sandbox.requests("GET /api/campaigns/{campaign_id}/devices"))
    assert pages == (3, 2)


async def test_unreachable_backend_is_unreadable_without_raising(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reader = ADAPTER.reader(backend_spec(f"http://127.0.0.1:{port}", max_retries=0), connect_context(tmp_path))
    observation = await reader.observe(declared(IotCampaignSpec("a", "b1")))
    await reader.aclose()
    assert (observation.readable, "cannot connect" in observation.error) == (False, True)


async def test_refused_credentials_make_the_backend_unreadable(server: SandboxServer, tmp_path: Path) -> None:
    reader = ADAPTER.reader(backend_spec(server.url), connect_context(tmp_path, password="wrong"))
    observation = await reader.observe(declared(IotCampaignSpec("a", "b1")))
    await reader.aclose()
    assert (observation.readable, "invalid user name or password" in observation.error) == (False, True)
