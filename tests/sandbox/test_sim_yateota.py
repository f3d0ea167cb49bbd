"""The YateOTA simulator over real loopback HTTP: the seed's examples, the envelope, auth, the campaign
and participant state machines, the lifecycle on the simulated clock, fixtures and persistence."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.testing import SandboxControl, running_simulator
from reconciler.sandbox.yateota.app import YateOtaSimulator

SECRET = "sandbox-secret"
HEADERS = {"X-Authentication": SECRET}
CAMPAIGN_FIELDS = {
    "campaign_id", "campaign", "type", "state", "start_time", "participants",
    "pending_build", "pending_send", "waiting_por", "finished", "failed", "canceled",
}
PARTICIPANT_FIELDS = {
    "participant_id", "campaign_id", "msisdn", "imsi", "state", "attempts", "last_update", "error",
}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    clock = SimClock()
    with running_simulator(YateOtaSimulator(clock=clock, seed=11), clock=clock) as running:
        yield running


@pytest.fixture(scope="module")
def shared_client(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=5) as client:
        yield client


@pytest.fixture
def api(shared_client: httpx.Client) -> httpx.Client:
    """The module's simulator, back at its fixtures and without faults."""
    SandboxControl.over(shared_client).reset()
    return shared_client


@contextmanager
def serving(**options: Any) -> Iterator[httpx.Client]:
    """A simulator of its own, for tests of constructor options."""
    clock = SimClock()
    simulator = YateOtaSimulator(clock=clock, seed=5, **options)
    with running_simulator(simulator, clock=clock) as running:
        with httpx.Client(base_url=running.url, headers=HEADERS, timeout=5) as client:
            yield client


def send(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    reply = api.post("/api.php", json=body)
    assert reply.status_code == 200
    result: dict[str, Any] = reply.json()
    return result


def call(api: httpx.Client, request: str, **params: Any) -> dict[str, Any]:
    return send(api, {"request": request, "node": "ota", "params": params})


def ok(api: httpx.Client, request: str, **params: Any) -> dict[str, Any]:
    reply = call(api, request, **params)
    assert reply["code"] == 0, reply
    return reply


def refused(api: httpx.Client, request: str, **params: Any) -> str:
    reply = call(api, request, **params)
    assert reply["code"] != 0 and set(reply) == {"code", "message"}, reply
    return str(reply["message"])


def campaign_state(api: httpx.Client, campaign_id: int) -> str:
    return str(ok(api, "query_campaigns", campaign_id=campaign_id)["campaign"][0]["state"])


def participant(api: httpx.Client, campaign_id: int, participant_id: int) -> dict[str, Any]:
    listed = ok(api, "query_participants", campaign_id=campaign_id)["participants"]
    return next(p for p in listed if p["participant_id"] == participant_id)


def first_in_state(api: httpx.Client, state: str, campaign_id: int = 142) -> dict[str, Any]:
    found: dict[str, Any] = ok(api, "query_participants", campaign_id=campaign_id, state=state)["participants"][0]
    return found


# --- the seed's examples, sent as written -------------------------------------------------------


def test_seed_query_campaigns_without_params_lists_every_campaign(api: httpx.Client) -> None:
    reply = send(api, {"request": "query_campaigns", "node": "ota", "params": {}})
    assert [c["campaign_id"] for c in reply["campaigns"]] == [142, 144, 147, 167, 176]
    assert all(set(c) == CAMPAIGN_FIELDS for c in reply["campaigns"])


def test_seed_query_campaigns_with_limit_and_offset_returns_one_page(api: httpx.Client) -> None:
    reply = send(api, {"request": "query_campaigns", "node": "ota", "params": {"limit": 3, "offset": 0}})
    assert [c["campaign_id"] for c in reply["campaigns"]] == [142, 144, 147]


def test_seed_query_campaigns_by_id_answers_a_list_under_campaign(api: httpx.Client) -> None:
    reply = send(api, {"request": "query_campaigns", "node": "ota", "params": {"campaign_id": 147}})
    assert reply["code"] == 0 and [c["campaign_id"] for c in reply["campaign"]] == [147]


def test_seed_action_campaign_examples_succeed_in_the_order_pause_restart_stop(api: httpx.Client) -> None:
    replies = [
        send(api, {"request": "action_campaign", "node": "ota", "params": {"campaign_id": 144, "action": action}})
        for action in ("pause", "restart", "stop")
    ]
    assert replies == [{"code": 0}] * 3
    assert campaign_state(api, 144) == "stopped"


@pytest.mark.parametrize(
    "params",
    [
        {"campaign_id": "176"},
        {"campaign_id": 167, "offset": 0, "limit": 20},
        {"campaign_id": 167, "offset": 0, "limit": 20, "state": "finished"},
    ],
)
def test_seed_query_participants_examples_answer_participant_records(
    api: httpx.Client, params: dict[str, Any]
) -> None:
    reply = send(api, {"request": "query_participants", "node": "ota", "params": params})
    assert reply["code"] == 0 and reply["participants"]
    assert all(set(p) == PARTICIPANT_FIELDS for p in reply["participants"])
    assert all(p["state"] == params.get("state", p["state"]) for p in reply["participants"])


def test_seed_hurry_example_with_its_placeholder_id_is_an_error_reply(api: httpx.Client) -> None:
    reply = send(api, {
        "request": "action_participant",
        "node": "ota",
        "params": {
            "participant_id": "Id of the participant.",
            "action": "hurry",
            "comment__action": "Messages that have status failed/waiting_por can not be hurried.",
        },
    })
    assert reply["code"] != 0 and "participant_id" in reply["message"]


def test_seed_hurry_example_with_a_real_id_hurries_a_pending_participant(api: httpx.Client) -> None:
    pending = first_in_state(api, "pending_build")
    reply = send(api, {
        "request": "action_participant",
        "node": "ota",
        "params": {
            "participant_id": str(pending["participant_id"]),
            "action": "hurry",
            "comment__action": "Messages that have status failed/waiting_por can not be hurried.",
        },
    })
    assert reply == {"code": 0}


def test_seed_retry_then_cancel_examples_succeed_on_participant_195(api: httpx.Client) -> None:
    retry = {"request": "action_participant", "node": "ota", "params": {"participant_id": "195", "action": "retry"}}
    cancel = {"request": "action_participant", "node": "ota", "params": {"participant_id": "195", "action": "cancel"}}
    assert [send(api, retry), send(api, cancel)] == [{"code": 0}, {"code": 0}]


def test_seed_trace_example_answers_timestamped_events(api: httpx.Client) -> None:
    reply = send(api, {"request": "trace", "node": "ota", "params": {"campaign_id": "142", "participant_id": "161"}})
    assert reply["code"] == 0 and reply["participant_id"] == 161
    assert [e["event"] for e in reply["trace"]] == ["created", "built", "sent", "por_received"]
    assert all(isinstance(e["time"], int) and e["state"] for e in reply["trace"])


@pytest.mark.parametrize(
    ("request_name", "params", "mentions"),
    [
        ("query_campaigns", {"limit": "Number of campaigns to return",
                             "offset": "The starting point to return campaigns"}, "offset"),
        ("query_campaigns", {"campaign_id": "Return a single campaign by specifying the campaign_id"}, "campaign_id"),
        ("action_campaign", {"campaign_id": "Id of the campaign. Required.", "action": "stop/pause/restart"},
         "campaign_id"),
        ("query_participants", {"campaign_id": "Id of the campaign.",
                                "limit": "Number of participants to return",
                                "offset": "The starting point to return participants from a campaign",
                                "state": "pending_build/pending_send/failed/finished."}, "campaign_id"),
        ("action_participant", {"participant_id": "Id of the participant.",
                                "action": "cancel/hurry/retry. Action is based on participant status."},
         "participant_id"),
        ("trace", {"campaign_id": "Id of the campaign. Mandatory Parameter",
                   "participant_id": "Id of the participant. Optional Parameter.",
                   "msisdn": "Phone Number.  Optional Parameter", "imsi": "IMSI.  Optional Parameter"}, "campaign_id"),
    ],
)
def test_seed_request_formats_with_their_placeholder_text_get_an_error_reply_naming_the_parameter(
    api: httpx.Client, request_name: str, params: dict[str, Any], mentions: str
) -> None:
    assert mentions in refused(api, request_name, **params)


# --- envelope, numbers, content type -------------------------------------------------------------


@pytest.mark.parametrize("campaign_id", [147, "147", " 147 "])
def test_numbers_are_accepted_as_json_numbers_or_strings(api: httpx.Client, campaign_id: object) -> None:
    assert ok(api, "query_campaigns", campaign_id=campaign_id)["campaign"][0]["campaign_id"] == 147


def test_ids_and_counts_are_emitted_as_integers(api: httpx.Client) -> None:
    campaign = ok(api, "query_campaigns", campaign_id="142")["campaign"][0]
    listed = ok(api, "query_participants", campaign_id="142")["participants"]
    numbers = [campaign[k] for k in CAMPAIGN_FIELDS - {"campaign", "type", "state"}]
    numbers += [p[k] for p in listed for k in ("participant_id", "campaign_id", "attempts", "last_update")]
    assert all(type(n) is int for n in numbers)


def test_replies_are_labelled_application_json_by_default(api: httpx.Client) -> None:
    assert api.post("/api.php", json={"request": "query_campaigns", "node": "ota"}).headers[
        "content-type"
    ].startswith("application/json")


def test_content_type_option_labels_replies_text_x_json() -> None:
    with serving(content_type="text/x-json") as api:
        reply = api.post("/api.php", json={"request": "query_campaigns", "node": "ota", "params": {}})
        assert reply.headers["content-type"].startswith("text/x-json") and reply.json()["code"] == 0


def test_body_that_is_not_json_is_an_error_reply(api: httpx.Client) -> None:
    reply = api.post("/api.php", content=b"request=query_campaigns")
    assert reply.status_code == 200 and reply.json() == {"code": 400, "message": "request body is not valid JSON"}


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"node": "ota", "params": {}}, "request"),
        ({"request": ["query_campaigns"], "node": "ota", "params": {}}, "request"),
        ({"request": "add_campaign", "node": "ota", "params": {}}, "add_campaign"),
        ({"request": "query_campaigns", "node": "ivr", "params": {}}, "node"),
        ({"request": "query_campaigns", "params": {}}, "node"),
        ({"request": "query_campaigns", "node": "ota", "params": [1]}, "params"),
        ({"request": "action_campaign", "node": "ota", "params": {"action": "stop"}}, "campaign_id"),
        ({"request": "action_campaign", "node": "ota", "params": {"campaign_id": 144}}, "action"),
        ({"request": "action_campaign", "node": "ota", "params": {"campaign_id": 144, "action": "go"}}, "go"),
        ({"request": "query_participants", "node": "ota", "params": {}}, "campaign_id"),
        ({"request": "query_participants", "node": "ota", "params": {"campaign_id": 142, "state": "x"}}, "state"),
        ({"request": "action_participant", "node": "ota", "params": {"action": "retry"}}, "participant_id"),
        ({"request": "action_participant", "node": "ota", "params": {"participant_id": 195, "action": "x"}}, "x"),
        ({"request": "query_campaigns", "node": "ota", "params": {"campaign_id": 999}}, "999"),
        ({"request": "action_participant", "node": "ota", "params": {"participant_id": 9, "action": "retry"}}, "9"),
        ({"request": "query_campaigns", "node": "ota", "params": {"limit": -1}}, "limit"),
    ],
)
def test_bad_calls_get_an_error_reply_naming_the_problem(
    api: httpx.Client, body: dict[str, Any], mentions: str
) -> None:
    reply = send(api, body)
    assert reply["code"] != 0 and mentions in reply["message"]


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-Authentication": "wrong"}, {"Mobile-API-Secret": "wrong"}])
def test_missing_or_wrong_secret_is_http_401_with_an_error_envelope(
    server: SandboxServer, headers: dict[str, str]
) -> None:
    reply = httpx.post(f"{server.url}/api.php", json={"request": "query_campaigns", "node": "ota"}, headers=headers)
    assert reply.status_code == 401 and reply.json()["code"] == 401 and reply.json()["message"]


@pytest.mark.parametrize("header", ["X-Authentication", "Mobile-API-Secret"])
def test_either_secret_header_is_accepted(server: SandboxServer, header: str) -> None:
    body = {"request": "query_campaigns", "node": "ota", "params": {}}
    reply = httpx.post(f"{server.url}/api.php", json=body, headers={header: SECRET})
    assert reply.status_code == 200 and reply.json()["code"] == 0


def test_secret_option_replaces_the_default_secret() -> None:
    with serving(secret="other") as api:
        body = {"request": "query_campaigns", "node": "ota"}
        assert api.post("/api.php", json=body).status_code == 401
        assert api.post("/api.php", json=body, headers={"X-Authentication": "other"}).json()["code"] == 0


# --- campaign state machine ----------------------------------------------------------------------

def bring_campaign_to(api: httpx.Client, state: str) -> int:
    """Campaign 142 (started) brought into ``state``."""
    if state in ("paused", "stopped"):
        ok(api, "action_campaign", campaign_id=142, action={"paused": "pause", "stopped": "stop"}[state])
    elif state == "finished":
        for p in ok(api, "query_participants", campaign_id=142)["participants"]:
            if p["state"] in ("pending_build", "pending_send", "waiting_por"):
                ok(api, "action_participant", participant_id=p["participant_id"], action="cancel")
    return 142


@pytest.mark.parametrize(
    ("start", "action", "result"),
    [
        ("started", "pause", "paused"),
        ("started", "stop", "stopped"),
        ("started", "restart", None),
        ("paused", "restart", "started"),
        ("paused", "stop", "stopped"),
        ("paused", "pause", None),
        ("stopped", "restart", "started"),
        ("stopped", "stop", "stopped"),
        ("stopped", "pause", None),
        ("finished", "stop", None),
        ("finished", "pause", None),
        ("finished", "restart", None),
    ],
)
def test_campaign_transitions_are_allowed_or_refused_by_state(
    api: httpx.Client, start: str, action: str, result: str | None
) -> None:
    campaign_id = bring_campaign_to(api, start)
    assert campaign_state(api, campaign_id) == start
    if result is None:
        assert f"it is {start}" in refused(api, "action_campaign", campaign_id=campaign_id, action=action)
        assert campaign_state(api, campaign_id) == start
    else:
        ok(api, "action_campaign", campaign_id=campaign_id, action=action)
        assert campaign_state(api, campaign_id) == result


def test_fixture_campaign_176_starts_paused_and_the_others_started(api: httpx.Client) -> None:
    states = {c["campaign_id"]: c["state"] for c in ok(api, "query_campaigns")["campaigns"]}
    assert states == {142: "started", 144: "started", 147: "started", 167: "started", 176: "paused"}


# --- participant state machine -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action", "result"),
    [
        ("pending_build", "hurry", "pending_send"),
        ("pending_send", "hurry", "waiting_por"),
        ("waiting_por", "hurry", None),
        ("failed", "hurry", None),
        ("finished", "hurry", None),
        ("canceled", "hurry", None),
        ("failed", "retry", "pending_build"),
        ("canceled", "retry", "pending_build"),
        ("pending_build", "retry", None),
        ("pending_send", "retry", None),
        ("waiting_por", "retry", None),
        ("finished", "retry", None),
        ("pending_build", "cancel", "canceled"),
        ("pending_send", "cancel", "canceled"),
        ("waiting_por", "cancel", "canceled"),
        ("finished", "cancel", None),
        ("failed", "cancel", None),
        ("canceled", "cancel", None),
    ],
)
def test_participant_actions_are_allowed_or_refused_by_state(
    api: httpx.Client, state: str, action: str, result: str | None
) -> None:
    target = first_in_state(api, state)["participant_id"]
    if result is None:
        assert f"it is {state}" in refused(api, "action_participant", participant_id=target, action=action)
        assert participant(api, 142, target)["state"] == state
    else:
        ok(api, "action_participant", participant_id=target, action=action)
        assert participant(api, 142, target)["state"] == result


def test_hurrying_a_pending_send_participant_sends_it_and_counts_an_attempt(api: httpx.Client) -> None:
    pending = first_in_state(api, "pending_send")
    ok(api, "action_participant", participant_id=pending["participant_id"], action="hurry")
    assert participant(api, 142, pending["participant_id"])["attempts"] == pending["attempts"] + 1


def test_retried_participant_counts_an_attempt_only_when_next_sent(api: httpx.Client) -> None:
    ok(api, "action_participant", participant_id=195, action="retry")
    SandboxControl.over(api).advance(31)
    after_build = participant(api, 147, 195)
    SandboxControl.over(api).advance(30)
    after_send = participant(api, 147, 195)
    assert (after_build["state"], after_build["attempts"]) == ("pending_send", 1)
    assert (after_send["state"], after_send["attempts"]) == ("waiting_por", 2)


def test_retry_clears_the_participants_error(api: httpx.Client) -> None:
    assert participant(api, 147, 195)["error"]
    ok(api, "action_participant", participant_id=195, action="retry")
    assert participant(api, 147, 195)["error"] == ""


def test_retrying_a_participant_of_a_finished_campaign_starts_it_again(api: httpx.Client) -> None:
    bring_campaign_to(api, "finished")
    failed = first_in_state(api, "failed")
    ok(api, "action_participant", participant_id=failed["participant_id"], action="retry")
    assert campaign_state(api, 142) == "started"


# --- lifecycle on the simulated clock ------------------------------------------------------------


def test_nothing_moves_before_the_first_step_is_due(api: httpx.Client) -> None:
    before = ok(api, "query_participants", campaign_id=142)["participants"]
    SandboxControl.over(api).advance(85)  # the first unfinished participant (153, third) is due after 3 steps of 30 s
    assert ok(api, "query_participants", campaign_id=142)["participants"] == before


def test_a_due_step_moves_pending_build_to_pending_send(api: httpx.Client) -> None:
    # participant 156, sixth of campaign 142, is due 6 steps after the fixtures were made
    SandboxControl.over(api).advance(185)
    assert participant(api, 142, 156)["state"] == "pending_send"


def test_each_step_is_a_trace_event(api: httpx.Client) -> None:
    SandboxControl.over(api).advance(185)
    trace = ok(api, "trace", campaign_id=142, participant_id=156)["trace"]
    assert [(e["event"], e["state"]) for e in trace] == [("created", "pending_build"), ("built", "pending_send")]


def test_paused_campaign_does_not_advance(api: httpx.Client) -> None:
    before = ok(api, "query_participants", campaign_id=176)["participants"]
    SandboxControl.over(api).advance(3600)
    assert ok(api, "query_participants", campaign_id=176)["participants"] == before


def test_started_campaign_becomes_finished_when_every_participant_is_final(api: httpx.Client) -> None:
    SandboxControl.over(api).advance(3600)
    campaign = ok(api, "query_campaigns", campaign_id=142)["campaign"][0]
    assert campaign["state"] == "finished"
    assert campaign["finished"] + campaign["failed"] + campaign["canceled"] == campaign["participants"] == 20


def test_restart_resumes_the_lifecycle_of_a_paused_campaign(api: httpx.Client) -> None:
    ok(api, "action_campaign", campaign_id=176, action="restart")
    SandboxControl.over(api).advance(3600)
    assert campaign_state(api, 176) == "finished"


def test_failure_rate_one_makes_every_sent_participant_fail() -> None:
    with serving(failure_rate=1.0) as api:
        SandboxControl.over(api).advance(3600)
        campaign = ok(api, "query_campaigns", campaign_id=142)["campaign"][0]
        assert (campaign["finished"], campaign["failed"]) == (6, 2 + 10)


def test_failure_rate_zero_makes_every_sent_participant_finish() -> None:
    with serving(failure_rate=0.0) as api:
        SandboxControl.over(api).advance(3600)
        campaign = ok(api, "query_campaigns", campaign_id=142)["campaign"][0]
        assert (campaign["finished"], campaign["failed"]) == (6 + 10, 2)


def test_failed_participants_carry_an_error(api: httpx.Client) -> None:
    failed = ok(api, "query_participants", campaign_id=142, state="failed")["participants"]
    assert failed and all(p["error"] for p in failed)


def test_step_seconds_option_sets_the_pace() -> None:
    with serving(step_seconds=1000.0) as api:
        SandboxControl.over(api).advance(600)
        assert first_in_state(api, "pending_build")["participant_id"] == 156


# --- queries and trace ---------------------------------------------------------------------------


def test_query_participants_pages_with_limit_and_offset(api: httpx.Client) -> None:
    page = ok(api, "query_participants", campaign_id=142, limit=5, offset=15)
    assert [p["participant_id"] for p in page["participants"]] == [166, 167, 168, 169, 170]


def test_query_participants_state_filter_applies_before_paging(api: httpx.Client) -> None:
    page = ok(api, "query_participants", campaign_id=142, state="pending_build", limit=2, offset=1)
    assert [p["participant_id"] for p in page["participants"]] == [157, 160]
    assert page["total"] == 6


@pytest.mark.parametrize(("key", "value"), [("msisdn", "491700000161"), ("imsi", "262010000000161")])
def test_trace_finds_a_participant_by_msisdn_or_imsi(api: httpx.Client, key: str, value: str) -> None:
    assert ok(api, "trace", campaign_id=142, **{key: value})["participant_id"] == 161


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"participant_id": 161}, "campaign_id"),
        ({"campaign_id": 142}, "one of participant_id, msisdn, imsi"),
        ({"campaign_id": 144, "participant_id": 161}, "not in campaign 144"),
        ({"campaign_id": 142, "msisdn": "1"}, "no participant with msisdn 1"),
    ],
)
def test_trace_without_a_campaign_or_a_matching_participant_is_an_error_reply(
    api: httpx.Client, params: dict[str, Any], mentions: str
) -> None:
    assert mentions in refused(api, "trace", **params)


def test_actions_appear_in_the_trace(api: httpx.Client) -> None:
    ok(api, "action_participant", participant_id=195, action="retry")
    trace = ok(api, "trace", campaign_id=147, participant_id=195)["trace"]
    assert (trace[-1]["event"], trace[-1]["state"]) == ("retry", "pending_build")


# --- fixtures, options, state -------------------------------------------------------------------


def test_participant_ids_are_global_and_unique(api: httpx.Client) -> None:
    ids = [
        p["participant_id"]
        for c in (142, 144, 147, 167, 176)
        for p in ok(api, "query_participants", campaign_id=c)["participants"]
    ]
    assert len(ids) == len(set(ids)) == 100


def test_fixture_participant_195_starts_failed_and_161_belongs_to_142(api: httpx.Client) -> None:
    assert participant(api, 147, 195)["state"] == "failed"
    assert participant(api, 142, 161)["campaign_id"] == 142


def test_participants_per_campaign_option_sets_the_fixture_size() -> None:
    with serving(participants_per_campaign=3) as api:
        assert [c["participants"] for c in ok(api, "query_campaigns")["campaigns"]] == [3] * 5


def test_extra_campaigns_are_numbered_after_the_highest_fixture() -> None:
    with serving(extra_campaigns=2) as api:
        ids = [c["campaign_id"] for c in ok(api, "query_campaigns")["campaigns"]]
        assert ids == [142, 144, 147, 167, 176, 177, 178]


def test_fleet_option_replaces_the_fixtures_with_the_given_failed_fraction() -> None:
    simulator = YateOtaSimulator(clock=SimClock(), fleet=[(10 + n, 1000, 0.05) for n in range(10)])
    campaigns = simulator.snapshot()["campaigns"]
    assert [c["campaign_id"] for c in campaigns] == list(range(10, 20))
    assert {(c["participants"], c["failed"], c["state"]) for c in campaigns} == {(1000, 50, "started")}


def test_requests_are_counted_by_name_in_the_state(api: httpx.Client) -> None:
    ok(api, "query_campaigns")
    ok(api, "query_campaigns", campaign_id=142)
    ok(api, "trace", campaign_id=142, participant_id=161)
    api.post("/api.php", content=b"{")
    counted = SandboxControl.over(api).state()["requests_by_name"]
    assert counted == {"query_campaigns": 2, "trace": 1, "(invalid)": 1}


def test_reset_restores_the_fixtures(api: httpx.Client) -> None:
    ok(api, "action_campaign", campaign_id=142, action="stop")
    SandboxControl.over(api).reset()
    assert campaign_state(api, 142) == "started"


def test_malformed_fault_truncates_the_json_reply(api: httpx.Client) -> None:
    SandboxControl.over(api).faults(malformed_rate=1)
    with pytest.raises(ValueError):
        api.post("/api.php", json={"request": "query_campaigns", "node": "ota"}).json()


def frozen_clock() -> SimClock:
    return SimClock(real=lambda: 1_800_000_000.0)


def test_snapshot_and_restore_round_trip_everything() -> None:
    original = YateOtaSimulator(clock=frozen_clock(), seed=4)
    original.advance(1_800_000_185.0)
    copy = YateOtaSimulator(clock=frozen_clock(), seed=99)
    copy.restore(original.snapshot())
    assert copy.snapshot() == original.snapshot()


def test_restored_simulator_goes_on_exactly_like_the_original() -> None:
    original = YateOtaSimulator(clock=frozen_clock(), seed=4, failure_rate=0.5)
    original.advance(1_800_000_185.0)
    copy = YateOtaSimulator(clock=frozen_clock(), failure_rate=0.5)
    copy.restore(original.snapshot())
    original.advance(1_800_003_600.0)
    copy.advance(1_800_003_600.0)
    assert copy.snapshot() == original.snapshot()


def test_same_seed_gives_the_same_lifecycle() -> None:
    runs = [YateOtaSimulator(clock=frozen_clock(), seed=8, failure_rate=0.5) for _ in range(2)]
    for simulator in runs:
        simulator.advance(1_800_003_600.0)
    assert runs[0].snapshot() == runs[1].snapshot()
