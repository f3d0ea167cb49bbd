"""The IoT campaign manager Writer: each verb's effect in the sandbox, batching and state conflicts (what
faults turn into, for every adapter alike: ``test_adapter_contract.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.actions import Action, Verb
from reconciler.backends.iot_campaigns.adapter import ADAPTER, TRAITS, IotCampaignsWriter
from reconciler.errors import ConflictError, PermanentBackendError
from reconciler.model import Kind, ResourceKey
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.testing import SandboxControl
from tests.backends.test_adapter_iot_campaigns_support import backend_spec, connect_context, iot_sandbox

KEY = ResourceKey(Kind.CAMPAIGN, "rollout")


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with iot_sandbox() as running:
        yield running


@pytest.fixture
async def writer(server: SandboxServer, tmp_path: Path) -> AsyncIterator[IotCampaignsWriter]:
    SandboxControl.of(server).reset()
    writer = ADAPTER.writer(backend_spec(server.url), connect_context(tmp_path))
    yield writer
    await writer.aclose()


async def apply(writer: IotCampaignsWriter, verb: Verb, **params: Any) -> dict[str, Any]:
    return dict(await writer.apply(Action(f"test/{verb.value}", verb, KEY, "b1", params)))


async def new_campaign(writer: IotCampaignsWriter, *gateways: str) -> str:
    produced = await apply(writer, Verb.CREATE_CAMPAIGN, name="rollout", description="d", packages=[],
                           settings={"reboot": "graceful"})
    if gateways:
        await apply(writer, Verb.ADD_GATEWAYS, campaign_id=produced["campaign_id"], gateway_ids=list(gateways))
    return str(produced["campaign_id"])


def only_campaign(server: SandboxServer) -> dict[str, Any]:
    (campaign,) = SandboxControl.of(server).state()["campaigns"]
    return dict(campaign)


def fleet(count: int) -> list[str]:
    return [f"gw-{n:05d}" for n in range(1, count + 1)]


async def test_upload_package_returns_the_package_id(writer: IotCampaignsWriter, server: SandboxServer,
                                                     tmp_path: Path) -> None:
    firmware = tmp_path / "fw.zip"
    firmware.write_bytes(b"firmware")
    produced = await apply(writer, Verb.UPLOAD_PACKAGE, file=str(firmware), name="fw-0123", description="Fw")
    stored = SandboxControl.of(server).state()["packages"][0]
    assert (produced["package_id"], stored["name"], stored["description"], stored["upload"]) == (
        stored["id"], "fw-0123", "Fw", "multipart")


async def test_upload_mode_streaming_streams(server: SandboxServer, tmp_path: Path) -> None:
    SandboxControl.of(server).reset()
    firmware = tmp_path / "fw.zip"
    firmware.write_bytes(b"firmware")
    writer = ADAPTER.writer(backend_spec(server.url, options={"uploadMode": "streaming"}), connect_context(tmp_path))
    await apply(writer, Verb.UPLOAD_PACKAGE, file=str(firmware), name="fw-0123", description="")
    await writer.aclose()
    assert SandboxControl.of(server).state()["packages"][0]["upload"] == "streaming"


async def test_upload_of_a_missing_file_is_a_permanent_error_and_sends_nothing(
        writer: IotCampaignsWriter, server: SandboxServer, tmp_path: Path) -> None:
    with pytest.raises(PermanentBackendError, match="cannot read package file"):
        await apply(writer, Verb.UPLOAD_PACKAGE, file=str(tmp_path / "missing.zip"), name="fw", description="")
    assert SandboxControl.of(server).requests("POST /api/programs/") == 0


def test_unknown_upload_mode_is_refused(server: SandboxServer, tmp_path: Path) -> None:
    with pytest.raises(PermanentBackendError, match="uploadMode"):
        ADAPTER.writer(backend_spec(server.url, options={"uploadMode": "carrier-pigeon"}), connect_context(tmp_path))


async def test_delete_package_removes_it(writer: IotCampaignsWriter, server: SandboxServer, tmp_path: Path) -> None:
    firmware = tmp_path / "fw.zip"
    firmware.write_bytes(b"firmware")
    package = (await apply(writer, Verb.UPLOAD_PACKAGE, file=str(firmware), name="fw"))["package_id"]
    await apply(writer, Verb.DELETE_PACKAGE, package_id=package)
    assert SandboxControl.of(server).state()["packages"] == []


async def test_deleting_what_is_already_gone_succeeds(writer: IotCampaignsWriter) -> None:
    produced = await apply(writer, Verb.DELETE_CAMPAIGN, campaign_id="00000000-0000-4000-8000-000000000000")
    assert produced == {"already_absent": True}


async def test_create_campaign_returns_its_id_and_sends_every_field(writer: IotCampaignsWriter,
                                                                    server: SandboxServer) -> None:
    campaign_id = await new_campaign(writer)
    stored = only_campaign(server)
    assert (stored["id"], stored["name"], stored["description"], stored["settings"]) == (
        campaign_id, "rollout", "d", {"reboot": "graceful"})


async def test_update_campaign_replaces_its_fields(writer: IotCampaignsWriter, server: SandboxServer) -> None:
    campaign_id = await new_campaign(writer)
    await apply(writer, Verb.UPDATE_CAMPAIGN, campaign_id=campaign_id, name="renamed", description="v2",
                packages=[], settings={})
    stored = only_campaign(server)
    assert (stored["name"], stored["description"], stored["settings"]) == ("renamed", "v2", {})


async def test_delete_campaign_removes_it(writer: IotCampaignsWriter, server: SandboxServer) -> None:
    await apply(writer, Verb.DELETE_CAMPAIGN, campaign_id=await new_campaign(writer))
    assert SandboxControl.of(server).state()["campaigns"] == []


async def test_start_and_stop_move_the_campaign(writer: IotCampaignsWriter, server: SandboxServer) -> None:
    campaign_id = await new_campaign(writer)
    await apply(writer, Verb.START_CAMPAIGN, campaign_id=campaign_id)
    started = only_campaign(server)["status"]
    await apply(writer, Verb.STOP_CAMPAIGN, campaign_id=campaign_id)
    assert (started, only_campaign(server)["status"]) == ("STARTED", "STOPPED")


async def test_starting_a_started_campaign_is_done_already(writer: IotCampaignsWriter) -> None:
    campaign_id = await new_campaign(writer)
    await apply(writer, Verb.START_CAMPAIGN, campaign_id=campaign_id)
    assert await apply(writer, Verb.START_CAMPAIGN, campaign_id=campaign_id) == {"status": "STARTED",
                                                                                 "already": True}


async def test_stopping_a_campaign_that_never_started_is_a_conflict(writer: IotCampaignsWriter) -> None:
    campaign_id = await new_campaign(writer)
    with pytest.raises(ConflictError):
        await apply(writer, Verb.STOP_CAMPAIGN, campaign_id=campaign_id)


async def test_approve_campaign_approves(tmp_path: Path) -> None:
    with iot_sandbox(approval_required=True) as approving:
        writer = ADAPTER.writer(backend_spec(approving.url), connect_context(tmp_path))
        await apply(writer, Verb.APPROVE_CAMPAIGN, campaign_id=await new_campaign(writer))
        await writer.aclose()
        assert only_campaign(approving)["status"] == "APPROVED"


async def test_gateways_are_added_in_batches_of_1000(writer: IotCampaignsWriter, server: SandboxServer) -> None:
    campaign_id = await new_campaign(writer)
    produced = await apply(writer, Verb.ADD_GATEWAYS, campaign_id=campaign_id, gateway_ids=fleet(2500))
    batches = SandboxControl.of(server).requests("POST /api/campaigns/{campaign_id}/devices")
    assert (produced, batches) == ({"batches": 3}, 3)
    assert len(only_campaign(server)["gateways"]) == 2500


async def test_gateways_are_removed_in_batches_of_1000(writer: IotCampaignsWriter, server: SandboxServer) -> None:
    campaign_id = await new_campaign(writer, *fleet(1500))
    await apply(writer, Verb.REMOVE_GATEWAYS, campaign_id=campaign_id, gateway_ids=fleet(1200))
    assert SandboxControl.of(server).requests("PUT /api/campaigns/{campaign_id}/devices") == 2
    assert len(only_campaign(server)["gateways"]) == 300


async def test_set_gateway_packages_overrides_one_gateway(writer: IotCampaignsWriter, server: SandboxServer,
                                                          tmp_path: Path) -> None:
    firmware = tmp_path / "fw.zip"
    firmware.write_bytes(b"firmware")
    package = (await apply(writer, Verb.UPLOAD_PACKAGE, file=str(firmware), name="fw"))["package_id"]
    campaign_id = await new_campaign(writer, "gw-00001", "gw-00002")
    await apply(writer, Verb.SET_GATEWAY_PACKAGES, campaign_id=campaign_id, gateway_id="gw-00002",
                packages=[package])
    assert [g["packages"] for g in only_campaign(server)["gateways"]] == [None, [package]]


@pytest.mark.parametrize("window", ["download", "activation", "execution"])
async def test_schedule_gateway_sets_the_window(writer: IotCampaignsWriter, server: SandboxServer,
                                                window: str) -> None:
    campaign_id = await new_campaign(writer, "gw-00001")
    await apply(writer, Verb.SCHEDULE_GATEWAY, campaign_id=campaign_id, gateway_id="gw-00001", window=window,
                begin_ms=1_893_456_000_000, end_ms=1_893_459_600_000)
    schedules = only_campaign(server)["gateways"][0]["schedules"]
    assert schedules == {window: {"begin": "1893456000000", "end": "1893459600000"}}


async def test_unknown_schedule_window_is_refused(writer: IotCampaignsWriter) -> None:
    campaign_id = await new_campaign(writer, "gw-00001")
    with pytest.raises(PermanentBackendError, match="lunch"):
        await apply(writer, Verb.SCHEDULE_GATEWAY, campaign_id=campaign_id, gateway_id="gw-00001", window="lunch",
                    begin_ms=1, end_ms=2)


async def test_set_callback_registers_destination_and_tracked_states(writer: IotCampaignsWriter,
                                                                      server: SandboxServer) -> None:
    campaign_id = await new_campaign(writer)
    await apply(writer, Verb.SET_CALLBACK, campaign_id=campaign_id, callback="state-change", destination="ops",
                tracked_states=["ACTIVATION_COMPLETE"])
    await apply(writer, Verb.SET_CALLBACK, campaign_id=campaign_id, callback="completed", destination="ops",
                tracked_states=[])
    assert only_campaign(server)["callbacks"] == {
        "state-change": {"destination": "ops", "trackedStates": ["ACTIVATION_COMPLETE"]},
        "completed": {"destination": "ops", "trackedStates": []}}


async def test_set_distribution_list(writer: IotCampaignsWriter, server: SandboxServer) -> None:
    campaign_id = await new_campaign(writer)
    await apply(writer, Verb.SET_DISTRIBUTION_LIST, campaign_id=campaign_id, distribution_list_id="berlin",
                interval=3600)
    assert only_campaign(server)["distributionList"] == {"id": "berlin", "reevaluationIntervalSeconds": 3600}


async def test_close_gateway(writer: IotCampaignsWriter, server: SandboxServer) -> None:
    campaign_id = await new_campaign(writer, "gw-00001")
    await apply(writer, Verb.CLOSE_GATEWAY, campaign_id=campaign_id, gateway_id="gw-00001")
    assert only_campaign(server)["gateways"][0]["closed"] is True


IOT_VERBS = {Verb.UPLOAD_PACKAGE, Verb.DELETE_PACKAGE, Verb.CREATE_CAMPAIGN, Verb.UPDATE_CAMPAIGN,
             Verb.DELETE_CAMPAIGN, Verb.APPROVE_CAMPAIGN, Verb.START_CAMPAIGN, Verb.STOP_CAMPAIGN,
             Verb.ADD_GATEWAYS, Verb.REMOVE_GATEWAYS, Verb.SET_GATEWAY_PACKAGES, Verb.SCHEDULE_GATEWAY,
             Verb.SET_CALLBACK, Verb.SET_DISTRIBUTION_LIST, Verb.CLOSE_GATEWAY, Verb.ADOPT_CAMPAIGN}


@pytest.mark.parametrize("verb", sorted(set(Verb) - IOT_VERBS))
async def test_verb_of_another_backend_is_refused(writer: IotCampaignsWriter, verb: Verb) -> None:
    with pytest.raises(PermanentBackendError, match=verb.value):
        await apply(writer, verb, campaign_id="1")


def test_traits_declare_the_iot_verbs() -> None:
    assert set(TRAITS.verbs) == IOT_VERBS


def test_traits_say_started_campaigns_refuse_edits_and_what_cannot_be_read_back() -> None:
    assert (TRAITS.replace_fields, "STARTED" in TRAITS.editable_states, TRAITS.approval_states,
            TRAITS.write_only) == (frozenset({"packages", "settings", "description"}), False,
                                   frozenset({"APPROVAL_NEEDED"}), frozenset({"schedules", "callbacks", "settings"}))
    assert TRAITS.refuses_edits("STARTED") and not TRAITS.refuses_edits("STOPPED")
    assert not TRAITS.refuses_edits("SOMETHING_NEW")  # a state the lifecycle does not name is opaque
