"""The YateOTA adapter against the YateOTA sandbox over loopback: every client method, what observe
reads (counted by the sandbox), paging, error translation, and secrets kept out of sight (the faults every
adapter survives alike are proved in ``test_adapter_contract.py``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from reconciler.actions import Action, Verb
from reconciler.backends.protocol import ConnectContext
from reconciler.backends.yateota.adapter import ADAPTER, TraceEvent, YateOtaClient, YateOtaReader, YateOtaWriter
from reconciler.errors import AuthError, MalformedReplyError, PermanentBackendError, SecretError
from reconciler.model import (
    BackendLimits,
    BackendSpec,
    DesiredState,
    IotCampaignSpec,
    Kind,
    ResourceKey,
    SimCampaignSpec,
)
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.testing import SandboxControl, running_simulator
from reconciler.sandbox.yateota.app import YateOtaSimulator
from reconciler.secrets import Redactor, SecretRef

SECRET = "sandbox-secret"
BACKEND = "yate-1"
ROUTE = "POST /api.php"


class Sleeps:
    """Records backoff delays instead of sleeping, so retry tests take no time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Sandbox(SandboxControl):
    """The sandbox's control API and what these tests read from its state."""

    def calls(self) -> int:
        """Requests served (every YateOTA request is a ``POST /api.php``)."""
        return self.requests(ROUTE)

    def by_name(self) -> dict[str, int]:
        return dict(self.state()["requests_by_name"])

    def participant(self, participant_id: int) -> dict[str, Any]:
        return next(p for p in self.state()["participants"] if p["participant_id"] == participant_id)

    def campaign(self, campaign_id: int) -> dict[str, Any]:
        return next(c for c in self.state()["campaigns"] if c["campaign_id"] == campaign_id)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    clock = SimClock()
    with running_simulator(YateOtaSimulator(clock=clock, seed=21), clock=clock) as running:
        yield running


@pytest.fixture(scope="module")
def control(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as http:
        yield http


@pytest.fixture
def sandbox(control: httpx.Client) -> Sandbox:
    sandbox = Sandbox.over(control)
    sandbox.reset()
    return sandbox


@pytest.fixture
def ctx(tmp_path: Path) -> ConnectContext:
    return ConnectContext(root=tmp_path, environ={"YATE_SECRET": SECRET}, redactor=Redactor())


def backend_spec(url: str, secret: SecretRef | None = None, **options: object) -> BackendSpec:
    return BackendSpec(
        name=BACKEND,
        type="yateota",
        url=url,
        auth={"secret": secret or SecretRef(env="YATE_SECRET")},
        limits=BackendLimits(max_retries=2),
        options=options,
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def connect(
    server: SandboxServer, sandbox: Sandbox, ctx: ConnectContext, sleeps: Sleeps
) -> AsyncIterator[Callable[..., YateOtaClient]]:
    """Builds clients for the sandbox with the given ``options``; closes them afterwards."""
    made: list[YateOtaClient] = []

    def make(**options: object) -> YateOtaClient:
        made.append(YateOtaClient.connect(backend_spec(server.url, **options), ctx, sleep=sleeps))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def client(connect: Callable[..., YateOtaClient]) -> YateOtaClient:
    return connect()


def sim_campaign(campaign_id: int, *, backend: str = BACKEND, **fields: Any) -> SimCampaignSpec:
    return SimCampaignSpec(name=f"c-{campaign_id}-{backend}", backend=backend, campaign_id=campaign_id, **fields)


def desired(*campaigns: SimCampaignSpec | IotCampaignSpec) -> DesiredState:
    return DesiredState(campaigns={c.name: c for c in campaigns})


def action(verb: Verb, **params: object) -> Action:
    return Action(id="a1", verb=verb, key=ResourceKey(Kind.CAMPAIGN, "c"), backend=BACKEND, params=params)


def mock_client(
    ctx: ConnectContext, reply: Callable[[httpx.Request], httpx.Response], **options: object
) -> YateOtaClient:
    """A client whose replies are bytes the sandbox never produces."""
    spec = backend_spec("http://yate.invalid", **options)
    return YateOtaClient.connect(spec, ctx, transport=httpx.MockTransport(reply), sleep=Sleeps())


def json_reply(body: object, content_type: str = "application/json") -> Callable[[httpx.Request], httpx.Response]:
    headers = {"Content-Type": content_type}
    return lambda request: httpx.Response(200, content=json.dumps(body).encode(), headers=headers)


# --- client methods ------------------------------------------------------------------------------


async def test_query_campaigns_lists_every_campaign_with_its_counts(client: YateOtaClient) -> None:
    campaigns = await client.query_campaigns()
    assert [c.campaign_id for c in campaigns] == [142, 144, 147, 167, 176]
    assert campaigns[0].counts == {
        "participants": 20, "pending_build": 6, "pending_send": 2, "waiting_por": 2,
        "finished": 6, "failed": 2, "canceled": 2,
    }


async def test_query_campaigns_with_limit_and_offset_reads_one_page(client: YateOtaClient) -> None:
    assert [c.campaign_id for c in await client.query_campaigns(limit=2, offset=1)] == [144, 147]


async def test_query_campaigns_by_id_reads_the_single_campaign(client: YateOtaClient) -> None:
    (campaign,) = await client.query_campaigns(campaign_id=176)
    assert (campaign.campaign_id, campaign.name, campaign.type, campaign.state) == (
        176, "euicc-profile-sync", "ram", "paused"
    )


async def test_action_campaign_changes_the_run_state(client: YateOtaClient, sandbox: Sandbox) -> None:
    assert await client.action_campaign(144, "pause") == {}
    assert sandbox.campaign(144)["state"] == "paused"


async def test_query_participants_filters_by_state(client: YateOtaClient) -> None:
    failed = await client.query_participants(147, state="failed")
    assert [(p.participant_id, p.state) for p in failed] == [(195, "failed"), (205, "failed")]


async def test_query_participants_reads_one_page(client: YateOtaClient) -> None:
    page = await client.query_participants(142, limit=5, offset=15)
    assert [p.participant_id for p in page] == [166, 167, 168, 169, 170]


async def test_query_participants_reads_every_field(client: YateOtaClient) -> None:
    (first,) = await client.query_participants(147, state="failed", limit=1)
    assert (first.campaign_id, first.msisdn, first.imsi, first.attempts) == (147, "491700000195", "262010000000195", 1)
    assert first.error


async def test_action_participant_retries_a_failed_participant(client: YateOtaClient, sandbox: Sandbox) -> None:
    assert await client.action_participant(195, "retry") == {}
    assert sandbox.participant(195)["state"] == "pending_build"


@pytest.mark.parametrize(
    "who", [{"participant_id": 161}, {"msisdn": "491700000161"}, {"imsi": "262010000000161"}]
)
async def test_trace_finds_the_participant_by_any_key(client: YateOtaClient, who: dict[str, Any]) -> None:
    events = await client.trace(142, **who)
    assert [(e.event, e.state) for e in events] == [
        ("created", "pending_build"), ("built", "pending_send"), ("sent", "waiting_por"), ("por_received", "finished")
    ]
    assert all(isinstance(e, TraceEvent) and e.time.isdigit() for e in events)


async def test_trace_without_a_participant_is_a_permanent_error_with_the_message(client: YateOtaClient) -> None:
    with pytest.raises(PermanentBackendError, match="one of participant_id, msisdn, imsi"):
        await client.trace(142)


async def test_error_reply_is_a_permanent_error_naming_backend_operation_and_message(client: YateOtaClient) -> None:
    with pytest.raises(PermanentBackendError) as caught:
        await client.action_campaign(999, "stop")
    assert str(caught.value) == "yate-1 action_campaign: campaign 999 does not exist"


async def test_refused_transition_is_a_permanent_error(client: YateOtaClient) -> None:
    with pytest.raises(PermanentBackendError, match="cannot pause campaign 176: it is paused"):
        await client.action_campaign(176, "pause")


# --- paging --------------------------------------------------------------------------------------


async def test_all_participants_reads_pages_until_a_shorter_page(
    connect: Callable[..., YateOtaClient], sandbox: Sandbox
) -> None:
    participants = await connect(pageSize=7).all_participants(142)
    assert [p.participant_id for p in participants] == list(range(151, 171))
    assert sandbox.by_name() == {"query_participants": 3}


async def test_all_participants_on_an_exact_multiple_ends_with_an_empty_page(
    connect: Callable[..., YateOtaClient], sandbox: Sandbox
) -> None:
    assert len(await connect(pageSize=5).all_participants(142)) == 20
    assert sandbox.by_name() == {"query_participants": 5}


async def test_all_participants_pages_within_a_state(connect: Callable[..., YateOtaClient], sandbox: Sandbox) -> None:
    pending = await connect(pageSize=4).all_participants(142, state="pending_build")
    assert [p.participant_id for p in pending] == [156, 157, 160, 166, 167, 170]
    assert sandbox.by_name() == {"query_participants": 2}


# --- observe -------------------------------------------------------------------------------------


def reader(client: YateOtaClient) -> YateOtaReader:
    return YateOtaReader(BACKEND, client)


async def test_observe_reads_one_listing_and_participants_only_where_needed(
    client: YateOtaClient, sandbox: Sandbox
) -> None:
    await reader(client).observe(desired(
        sim_campaign(147, retry_failed_max_attempts=3),
        sim_campaign(142, cancel_msisdns=("491700000156",)),
        sim_campaign(144),
        sim_campaign(167, backend="other", cancel_msisdns=("1",)),
        IotCampaignSpec(name="iot", backend=BACKEND),
    ))
    assert sandbox.by_name() == {"query_campaigns": 1, "query_participants": 2}
    assert sandbox.calls() == 3


async def test_observe_reads_only_failed_participants_for_retry_failed(client: YateOtaClient) -> None:
    seen = await reader(client).observe(desired(sim_campaign(147, retry_failed_max_attempts=3)))
    (campaign,) = [c for c in seen.sim_campaigns if c.campaign_id == 147]
    assert [(p.participant_id, p.state) for p in campaign.participants] == [(195, "failed"), (205, "failed")]


@pytest.mark.parametrize(
    "wish",
    [{"cancel_msisdns": ("491700000156",)}, {"cancel_imsis": ("262010000000156",)}, {"hurry_msisdns": ("1",)}],
)
async def test_observe_reads_every_participant_for_cancel_and_hurry_lists(
    client: YateOtaClient, wish: dict[str, Any]
) -> None:
    seen = await reader(client).observe(desired(sim_campaign(142, **wish)))
    (campaign,) = [c for c in seen.sim_campaigns if c.campaign_id == 142]
    assert len(campaign.participants) == 20


async def test_observe_returns_every_listed_campaign_with_participants_only_where_read(
    client: YateOtaClient,
) -> None:
    seen = await reader(client).observe(desired(sim_campaign(147, retry_failed_max_attempts=3)))
    assert seen.readable and seen.backend == BACKEND
    assert {c.campaign_id: len(c.participants) for c in seen.sim_campaigns} == {
        142: 0, 144: 0, 147: 2, 167: 0, 176: 0
    }


async def test_observe_with_nothing_to_read_in_detail_sends_only_the_listing(
    client: YateOtaClient, sandbox: Sandbox
) -> None:
    await reader(client).observe(desired(sim_campaign(144), sim_campaign(999, retry_failed_max_attempts=1)))
    assert sandbox.by_name() == {"query_campaigns": 1}


async def test_observe_reads_a_campaign_declared_twice_once(client: YateOtaClient, sandbox: Sandbox) -> None:
    both = desired(
        SimCampaignSpec(name="a", backend=BACKEND, campaign_id=142, retry_failed_max_attempts=2),
        SimCampaignSpec(name="b", backend=BACKEND, campaign_id=142, hurry_msisdns=("1",)),
    )
    seen = await reader(client).observe(both)
    assert sandbox.by_name() == {"query_campaigns": 1, "query_participants": 1}
    assert len(seen.sim_campaigns[0].participants) == 20


async def test_observe_pages_participants_by_page_size(
    connect: Callable[..., YateOtaClient], sandbox: Sandbox
) -> None:
    await reader(connect(pageSize=8)).observe(desired(sim_campaign(142, cancel_msisdns=("1",))))
    assert sandbox.by_name() == {"query_campaigns": 1, "query_participants": 3}


async def test_backend_refusing_the_secret_is_unreadable_not_raised(
    server: SandboxServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    wrong = ConnectContext(root=tmp_path, environ={"YATE_SECRET": "not-the-secret"}, redactor=Redactor())
    observing = ADAPTER.reader(backend_spec(server.url), wrong)
    seen = await observing.observe(desired(sim_campaign(147)))
    await observing.aclose()
    assert (seen.readable, seen.sim_campaigns) == (False, ())
    assert "pre-shared secret" in seen.error


async def test_backend_answering_503_is_unreadable_after_the_retries(client: YateOtaClient, sandbox: Sandbox) -> None:
    sandbox.faults(error_rate=1)
    seen = await reader(client).observe(desired(sim_campaign(147)))
    assert (seen.readable, "injected fault: HTTP 503" in seen.error) == (False, True)
    assert sandbox.calls() == 3


async def test_failure_reading_participants_makes_the_backend_unreadable(ctx: ConnectContext) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        name = json.loads(request.content)["request"]
        if name == "query_campaigns":
            body: dict[str, Any] = {"code": 0, "campaigns": [{"campaign_id": 147, "state": "started"}]}
        else:
            body = {"code": 7, "message": "participants database offline"}
        return httpx.Response(200, json=body)

    client = mock_client(ctx, reply)
    seen = await reader(client).observe(desired(sim_campaign(147, retry_failed_max_attempts=1)))
    await client.aclose()
    assert (seen.readable, seen.error) == (False, "yate-1 query_participants: participants database offline")


# --- writer --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "params", "kind", "key", "state"),
    [
        (Verb.PAUSE_CAMPAIGN, {"campaign_id": 144}, "campaign", 144, "paused"),
        (Verb.STOP_CAMPAIGN, {"campaign_id": "144"}, "campaign", 144, "stopped"),
        (Verb.RESTART_CAMPAIGN, {"campaign_id": 176}, "campaign", 176, "started"),
        (Verb.RETRY_PARTICIPANT, {"participant_id": 195}, "participant", 195, "pending_build"),
        (Verb.CANCEL_PARTICIPANT, {"participant_id": 156}, "participant", 156, "canceled"),
        (Verb.HURRY_PARTICIPANT, {"participant_id": 156}, "participant", 156, "pending_send"),
    ],
)
async def test_writer_performs_each_yateota_verb(
    client: YateOtaClient, sandbox: Sandbox, verb: Verb, params: dict[str, Any], kind: str, key: int, state: str
) -> None:
    result = await YateOtaWriter(BACKEND, client).apply(action(verb, **params))
    found = sandbox.campaign(key) if kind == "campaign" else sandbox.participant(key)
    assert (result, found["state"]) == ({}, state)


async def test_writer_counts_a_pause_of_an_already_paused_campaign_as_done(client: YateOtaClient) -> None:
    result = await YateOtaWriter(BACKEND, client).apply(action(Verb.PAUSE_CAMPAIGN, campaign_id=176))
    assert result == {"campaign_id": 176, "state": "paused"}


async def test_writer_reports_a_refused_state_change_with_the_backends_message(client: YateOtaClient) -> None:
    writer = YateOtaWriter(BACKEND, client)
    await writer.apply(action(Verb.STOP_CAMPAIGN, campaign_id=144))
    with pytest.raises(PermanentBackendError, match="cannot pause campaign 144: it is stopped"):
        await writer.apply(action(Verb.PAUSE_CAMPAIGN, campaign_id=144))


async def test_writer_refuses_a_verb_yateota_does_not_support_without_a_request(
    client: YateOtaClient, sandbox: Sandbox
) -> None:
    with pytest.raises(PermanentBackendError, match="yateota does not support create-campaign"):
        await YateOtaWriter(BACKEND, client).apply(action(Verb.CREATE_CAMPAIGN, name="x"))
    assert sandbox.calls() == 0


async def test_writer_refuses_an_action_without_its_id(client: YateOtaClient) -> None:
    with pytest.raises(PermanentBackendError, match="retry-participant needs a numeric parameter participant_id"):
        await YateOtaWriter(BACKEND, client).apply(action(Verb.RETRY_PARTICIPANT))


# --- the adapter entry point and options ----------------------------------------------------------


def test_traits_declare_the_six_verbs_and_adopted_campaigns() -> None:
    traits = ADAPTER.traits
    assert traits.type == "yateota"
    assert traits.verbs == {
        Verb.PAUSE_CAMPAIGN, Verb.STOP_CAMPAIGN, Verb.RESTART_CAMPAIGN,
        Verb.RETRY_PARTICIPANT, Verb.CANCEL_PARTICIPANT, Verb.HURRY_PARTICIPANT,
    }
    assert (traits.editable_states, traits.write_only) == (frozenset(), frozenset())
    assert (traits.lifecycle.started, traits.lifecycle.finished) == ("started", "finished")


async def test_adapter_writer_and_reader_work_against_the_sandbox(
    server: SandboxServer, sandbox: Sandbox, ctx: ConnectContext
) -> None:
    spec = backend_spec(server.url)
    writer, observing = ADAPTER.writer(spec, ctx), ADAPTER.reader(spec, ctx)
    await writer.apply(action(Verb.PAUSE_CAMPAIGN, campaign_id=147))
    seen = await observing.observe(desired(sim_campaign(147)))
    await writer.aclose()
    await observing.aclose()
    assert {c.campaign_id: c.state for c in seen.sim_campaigns}[147] == "paused"


async def test_auth_header_option_names_the_header_that_carries_the_secret(ctx: ConnectContext) -> None:
    seen: list[httpx.Headers] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"code": 0, "campaigns": []})

    client = mock_client(ctx, reply, authHeader="Mobile-API-Secret")
    await client.query_campaigns()
    await client.aclose()
    assert seen[0].get("Mobile-API-Secret") == SECRET and "X-Authentication" not in seen[0]


async def test_mobile_api_secret_header_is_accepted_by_the_sandbox(connect: Callable[..., YateOtaClient]) -> None:
    assert len(await connect(authHeader="Mobile-API-Secret").query_campaigns()) == 5


@pytest.fixture
def other_sandbox() -> Iterator[SandboxServer]:
    """A sandbox on another path that labels its replies ``text/x-json``."""
    clock = SimClock()
    simulator = YateOtaSimulator(clock=clock, path="/yate/api.php", content_type="text/x-json")
    with running_simulator(simulator, clock=clock) as running:
        yield running


async def test_path_option_and_text_x_json_replies(other_sandbox: SandboxServer, ctx: ConnectContext) -> None:
    client = YateOtaClient.connect(backend_spec(other_sandbox.url, path="/yate/api.php"), ctx)
    campaigns = await client.query_campaigns()
    await client.aclose()
    assert len(campaigns) == 5


@pytest.mark.parametrize("page_size", [0, -1, "many"])
def test_page_size_must_be_a_positive_integer(ctx: ConnectContext, page_size: object) -> None:
    with pytest.raises(PermanentBackendError, match="pageSize"):
        YateOtaClient.connect(backend_spec("http://yate.invalid", pageSize=page_size), ctx)


# --- tolerant parsing of bytes the sandbox does not produce ----------------------------------------


async def test_numbers_as_strings_and_counts_as_booleans_are_read(ctx: ConnectContext) -> None:
    record = {"campaign_id": "176", "state": "started", "participants": "3", "failed": True, "finished": False}
    body = {"code": "0", "campaign": [record]}
    client = mock_client(ctx, json_reply(body, "text/x-json; charset=utf-8"))
    (campaign,) = await client.query_campaigns(campaign_id=176)
    await client.aclose()
    assert (campaign.campaign_id, campaign.counts) == (176, {"participants": 3, "failed": 1, "finished": 0})


async def test_participant_numbers_as_strings_are_read(ctx: ConnectContext) -> None:
    body = {"code": 0, "participants": [{"participant_id": "161", "state": "failed", "attempts": "2", "msisdn": 4917}]}
    client = mock_client(ctx, json_reply(body))
    (found,) = await client.query_participants(142)
    await client.aclose()
    assert (found.participant_id, found.campaign_id, found.attempts, found.msisdn) == (161, 142, 2, "4917")


@pytest.mark.parametrize("code", [1, -3, "E42", 500])
async def test_any_non_zero_code_is_a_permanent_error_with_the_message(ctx: ConnectContext, code: object) -> None:
    client = mock_client(ctx, json_reply({"code": code, "message": "nope"}))
    with pytest.raises(PermanentBackendError, match="nope"):
        await client.action_campaign(142, "stop")
    await client.aclose()


@pytest.mark.parametrize("body", [{"campaigns": []}, [0], "ok", {"code": 0, "campaigns": "none"}])
async def test_reply_outside_the_envelope_is_malformed(ctx: ConnectContext, body: object) -> None:
    client = mock_client(ctx, json_reply(body))
    with pytest.raises(MalformedReplyError):
        await client.query_campaigns()
    await client.aclose()


# --- secrets -------------------------------------------------------------------------------------


async def test_secret_never_appears_in_reprs(server: SandboxServer, ctx: ConnectContext) -> None:
    spec = backend_spec(server.url)
    client, observing, writer = YateOtaClient.connect(spec, ctx), ADAPTER.reader(spec, ctx), ADAPTER.writer(spec, ctx)
    objects = [client, client.http.client.auth, client.http.client.headers, observing, writer, ADAPTER]
    shown = " ".join(repr(o) + str(o) for o in objects)
    for closing in (client, observing, writer):
        await closing.aclose()
    assert SECRET not in shown


async def test_secret_echoed_in_an_error_message_is_redacted(ctx: ConnectContext) -> None:
    client = mock_client(ctx, json_reply({"code": 3, "message": f"secret {SECRET} expired"}))
    with pytest.raises(PermanentBackendError) as caught:
        await client.query_campaigns()
    await client.aclose()
    assert str(caught.value) == "yate-1 query_campaigns: secret *** expired"


async def test_refused_secret_is_not_in_the_error_or_the_logs(
    server: SandboxServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    wrong = "not-the-secret-42"
    ctx = ConnectContext(root=tmp_path, environ={"YATE_SECRET": wrong}, redactor=Redactor())
    client = YateOtaClient.connect(backend_spec(server.url), ctx, sleep=Sleeps())
    sandbox.faults(error_rate=0.5, seed=7)
    with capture_logs() as logs, pytest.raises(AuthError) as caught:
        await client.query_campaigns()
    await client.aclose()
    assert logs and wrong not in repr(logs)
    assert wrong not in str(caught.value) + repr(caught.value)


async def test_secret_from_a_file_is_read_relative_to_the_root(
    server: SandboxServer, sandbox: Sandbox, ctx: ConnectContext
) -> None:
    (ctx.root / "yate.secret").write_text(SECRET + "\n")
    client = YateOtaClient.connect(backend_spec(server.url, SecretRef(file="yate.secret")), ctx)
    campaigns = await client.query_campaigns()
    await client.aclose()
    assert len(campaigns) == 5


def test_unset_secret_variable_is_a_secret_error_naming_it(tmp_path: Path) -> None:
    ctx = ConnectContext(root=tmp_path, environ={}, redactor=Redactor())
    with pytest.raises(SecretError, match="YATE_SECRET"):
        ADAPTER.reader(backend_spec("http://yate.invalid"), ctx)


def test_secret_written_in_plain_is_refused_without_showing_it(ctx: ConnectContext) -> None:
    spec = BackendSpec(name=BACKEND, type="yateota", url="http://yate.invalid", auth={"secret": SECRET})
    with pytest.raises(SecretError) as caught:
        ADAPTER.writer(spec, ctx)
    assert SECRET not in str(caught.value)
