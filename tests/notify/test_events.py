"""The pure event rules: what a pass produced in, events (and ended conditions) out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from reconciler.actions import Action, Verb
from reconciler.backends.registry import adapter_for
from reconciler.diagnostics import Diagnostic
from reconciler.engine.execute import ExecutionReport, Outcome, OutcomeStatus
from reconciler.model import (
    BackendSpec, DesiredState, GatewayAssignmentSpec, IotCampaignSpec, Kind, NotificationEvent,
    RecipientSource, ResourceKey, Rollout, ScheduleSpec, SimCampaignSpec, SmsCampaignSpec, TimeWindow,
)
from reconciler.notify.events import derive_events
from reconciler.notify.facts import DriftBaseline, PassFacts
from reconciler.observed import (
    BackendObservation, ObservedGateway, ObservedIotCampaign, ObservedSimCampaign, ObservedState,
)
from reconciler.planner.plan import Plan, SmsOutlook, StrandedGateways

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)
GATEWAYS = tuple(f"gw-{i:02}" for i in range(20))
FW = ResourceKey(Kind.CAMPAIGN, "fw")
E = NotificationEvent


def desired(*, rollout: Rollout | None = Rollout(waves=(0.1, 0.5, 1.0), max_failure_rate=0.2),
            schedules: dict[str, ScheduleSpec] | None = None) -> DesiredState:
    return DesiredState(
        backends={"iot": BackendSpec("iot", "iot-campaigns", "http://iot"),
                  "yate": BackendSpec("yate", "yateota", "http://yate"),
                  "gw": BackendSpec("gw", "sms-gateway", "http://gw")},
        campaigns={"fw": IotCampaignSpec("fw", "iot", rollout=rollout),
                   "applet": SimCampaignSpec("applet", "yate", campaign_id=147),
                   "notice": SmsCampaignSpec("notice", "gw", "hello", RecipientSource(count=3))},
        assignments={"fw-gws": GatewayAssignmentSpec("fw-gws", "fw", gateways=GATEWAYS)},
        schedules=schedules or {})


def observed(states: dict[str, str], *, sim_state: str = "started") -> ObservedState:
    gateways = tuple(ObservedGateway(g, s) for g, s in states.items())
    return ObservedState({
        "iot": BackendObservation("iot", iot_campaigns=(ObservedIotCampaign("c-1", "fw", "STARTED", gateways=gateways),)),
        "yate": BackendObservation("yate", sim_campaigns=(ObservedSimCampaign(147, "applet", sim_state),)),
        "gw": BackendObservation("gw"),
    })


def outcome(verb: Verb, status: OutcomeStatus = OutcomeStatus.SUCCEEDED, message: str = "", key: ResourceKey = FW,
            **params: object) -> Outcome:
    return Outcome(Action(f"iot/campaign/{key.name}/{verb.value}", verb, key, "iot", params), status, message)


def facts(state: ObservedState, *outcomes: Outcome, now: datetime = NOW, plan: Plan | None = None,
          declared: DesiredState | None = None, **more: object) -> PassFacts:
    declared = declared or desired()
    traits = {name: adapter_for(spec.type).traits for name, spec in declared.backends.items()}
    return PassFacts(declared, now, plan=plan or Plan(), report=ExecutionReport(tuple(outcomes), 0.1),
                     observed=state, traits=traits, **more)  # type: ignore[arg-type]


def kinds(found: object) -> list[str]:
    return [e.kind.value for e in found.events]  # type: ignore[attr-defined]


def test_gateways_that_take_a_rollout_into_its_next_wave_are_one_wave_advanced_event() -> None:
    """2 of 20 members (wave 1 full), 8 added: wave 2; the same occurrence seen by a later pass has the same id."""
    state = observed({g: "ACTIVATION_COMPLETE" for g in GATEWAYS[:2]})
    added = outcome(Verb.ADD_GATEWAYS, gateway_ids=list(GATEWAYS[2:10]))
    first, again = derive_events(facts(state, added)), derive_events(facts(state, added, now=LATER))
    [event] = [e for e in first.events if e.kind is E.ROLLOUT_WAVE_ADVANCED]
    assert event.details["wave"] == 2 and event.details["gateways"] == 10 and event.campaign == "fw"
    assert "wave 2 of 3" in event.summary
    assert [e.id for e in again.events if e.kind is E.ROLLOUT_WAVE_ADVANCED] == [event.id]


def test_the_first_wave_and_a_failed_add_are_no_advance() -> None:
    start = derive_events(facts(observed({}), outcome(Verb.ADD_GATEWAYS, gateway_ids=list(GATEWAYS[:2]))))
    assert E.ROLLOUT_WAVE_ADVANCED.value not in kinds(start)
    state = observed({g: "ACTIVATION_COMPLETE" for g in GATEWAYS[:2]})
    failed = derive_events(facts(state, outcome(Verb.ADD_GATEWAYS, OutcomeStatus.FAILED, "HTTP 500",
                                                gateway_ids=list(GATEWAYS[2:10]))))
    assert kinds(failed) == [E.APPLY_FAILED.value]


def test_a_failure_rate_over_the_limit_is_a_halt_condition_until_it_is_back_under() -> None:
    bad = observed({**{g: "DOWNLOAD_FAILED" for g in GATEWAYS[:3]}, **{g: "DOWNLOADING" for g in GATEWAYS[3:10]}})
    halted = derive_events(facts(bad))
    [event] = [e for e in halted.events if e.kind is E.ROLLOUT_HALTED]
    assert event.subject == "rollout.halted/fw" and event.severity == "error"
    assert event.details == {"campaignId": "c-1", "failed": 3, "gateways": 10, "failureRate": 0.3,
                             "maxFailureRate": 0.2}
    assert "rollout.halted/fw" not in halted.cleared
    fine = derive_events(facts(observed({g: "DOWNLOADING" for g in GATEWAYS[:10]})))
    assert E.ROLLOUT_HALTED.value not in kinds(fine) and "rollout.halted/fw" in fine.cleared


def test_every_declared_gateway_done_completes_an_iot_campaign_once() -> None:
    done = observed({g: "ACTIVATION_COMPLETE" for g in GATEWAYS})
    first, again = derive_events(facts(done)), derive_events(facts(done, now=LATER))
    ids = [e.id for e in first.events if e.kind is E.CAMPAIGN_COMPLETED and e.campaign == "fw"]
    assert len(ids) == 1 and ids == [e.id for e in again.events if e.kind is E.CAMPAIGN_COMPLETED and e.campaign == "fw"]
    one_left = observed({**{g: "ACTIVATION_COMPLETE" for g in GATEWAYS[:-1]}, GATEWAYS[-1]: "DOWNLOADING"})
    assert not [e for e in derive_events(facts(one_left)).events if e.kind is E.CAMPAIGN_COMPLETED]


def test_a_finished_yateota_campaign_is_completed() -> None:
    found = derive_events(facts(observed({}, sim_state="finished")))
    assert [e.campaign for e in found.events if e.kind is E.CAMPAIGN_COMPLETED] == ["applet"]


def test_sms_outcomes_that_became_unknown_are_an_event_per_new_count_and_a_sent_campaign_completes() -> None:
    def sms(counts: dict[str, int], to_send: int = 0) -> list[object]:
        outlook = SmsOutlook(recipients=3, to_send=to_send, counts=counts, backend="gw")
        return list(derive_events(facts(observed({}), sms={"notice": outlook})).events)

    two, three = sms({"unknown": 2, "accepted": 1}), sms({"unknown": 3})
    unknown = [e for e in two if e.kind is E.SMS_UNKNOWN_OUTCOMES]  # type: ignore[attr-defined]
    assert len(unknown) == 1 and unknown[0].details["unknown"] == 2  # type: ignore[attr-defined]
    assert unknown[0].id not in {e.id for e in three}  # type: ignore[attr-defined]
    assert [e.campaign for e in two if e.kind is E.CAMPAIGN_COMPLETED] == ["notice"]  # type: ignore[attr-defined]
    assert not [e for e in sms({"accepted": 1}, to_send=2) if e.kind is E.CAMPAIGN_COMPLETED]  # type: ignore[attr-defined]
    assert not [e for e in sms({"dispatching": 1, "accepted": 2}) if e.kind is E.CAMPAIGN_COMPLETED]  # type: ignore[attr-defined]


def test_stranded_gateways_are_a_condition_of_their_campaign() -> None:
    entry = StrandedGateways("fw", "iot", 2, {"download": 2}, {"WAITING_FOR_DOWNLOAD": 2}, "2027-03-01T05:00:00+00:00",
                             gateways=("gw-00", "gw-01"))
    found = derive_events(facts(observed({}), plan=Plan(stranded=(entry,))))
    [event] = [e for e in found.events if e.kind is E.GATEWAYS_STRANDED]
    assert event.subject == "gateways.stranded/fw" and event.details["count"] == 2
    assert "gateways.stranded/fw" in derive_events(facts(observed({}))).cleared


def test_an_unreadable_backend_is_a_pass_failure_until_a_pass_reads_it() -> None:
    state = replace(observed({}), backends={**observed({}).backends,
                                            "yate": BackendObservation("yate", readable=False, error="refused")})
    found = derive_events(facts(state, plan=Plan(unreadable=("yate",))))
    [event] = [e for e in found.events if e.kind is E.PASS_FAILED]
    assert event.subject == "pass.failed/Backend/yate" and "refused" in event.summary
    assert "pass.failed/Backend/yate" in derive_events(facts(observed({}))).cleared
    connect = derive_events(PassFacts(desired(), NOW, diagnostics=(
        Diagnostic("backend yate: secret env:YATE_SECRET: environment variable YATE_SECRET is not set",
                   resource="Backend/yate"),)))
    assert [e.subject for e in connect.events] == ["pass.failed/Backend/yate"] and not connect.cleared


def test_failed_actions_are_one_condition_per_resource_with_numbers_masked() -> None:
    failed = outcome(Verb.START_CAMPAIGN, OutcomeStatus.FAILED, "refused for +491701234567")
    unknown = outcome(Verb.ADD_GATEWAYS, OutcomeStatus.UNKNOWN, "timeout", gateway_ids=["gw-00"])
    found = derive_events(facts(observed({}), failed, unknown))
    [event] = [e for e in found.events if e.kind is E.APPLY_FAILED]
    assert event.subject == "apply.failed/Campaign/fw" and event.details["failed"] == 2
    assert "+491701234567" not in str(event.as_json(occurred_at="t")) and "+49 170 ***4567" in event.summary
    ok = derive_events(facts(observed({}), outcome(Verb.START_CAMPAIGN)))
    assert "apply.failed/Campaign/fw" in ok.cleared


def test_what_the_daemon_changes_on_a_steady_resource_corrects_drift() -> None:
    baseline = DriftBaseline(frozenset({FW}), since=NOW - timedelta(minutes=1))
    started = outcome(Verb.START_CAMPAIGN)
    found = derive_events(facts(observed({}), started, drift=baseline))
    [event] = [e for e in found.events if e.kind is E.DRIFT_CORRECTED]
    assert event.resource == "Campaign/fw" and event.details["actions"][0]["verb"] == "start-campaign"
    assert not [e for e in derive_events(facts(observed({}), started)).events if e.kind is E.DRIFT_CORRECTED]
    edited = DriftBaseline(frozenset(), since=baseline.since)  # its declaration changed: not drift
    assert not [e for e in derive_events(facts(observed({}), started, drift=edited)).events
                if e.kind is E.DRIFT_CORRECTED]


def test_time_and_progress_are_not_drift() -> None:
    """A start at the edge of the active period, a halted rollout's stop, the next wave's gateways."""
    since = NOW - timedelta(minutes=1)
    baseline = DriftBaseline(frozenset({FW}), since=since)
    period = ScheduleSpec("fw-period", "fw", active=TimeWindow(NOW - timedelta(seconds=30), NOW + timedelta(days=1)))
    at_edge = facts(observed({}), outcome(Verb.START_CAMPAIGN), drift=baseline,
                    declared=desired(schedules={"fw-period": period}))
    halted = facts(observed({g: "DOWNLOAD_FAILED" for g in GATEWAYS[:5]}), outcome(Verb.STOP_CAMPAIGN), drift=baseline)
    wave = facts(observed({g: "ACTIVATION_COMPLETE" for g in GATEWAYS[:2]}),
                 outcome(Verb.ADD_GATEWAYS, gateway_ids=list(GATEWAYS[2:10])), drift=baseline)
    for case in (at_edge, halted, wave):
        assert E.DRIFT_CORRECTED.value not in kinds(derive_events(case))


def test_the_daemons_baseline_holds_resources_of_unchanged_backends_that_did_not_fail() -> None:
    from reconciler.notify.drift import drift_baseline

    declared = desired()
    prints = {FW: "fw v1", ResourceKey(Kind.CAMPAIGN, "applet"): "applet v1", ResourceKey(Kind.CAMPAIGN, "notice"): "n"}
    since = NOW - timedelta(minutes=1)
    assert drift_baseline(previous=None, current={"iot": "a"}, resources=prints, desired=declared, failing=(),
                          since=since) is None  # the daemon's first pass knows nothing steady
    baseline = drift_baseline(previous={"iot": "a", "yate": "b", "gw": "c"}, current={"iot": "a", "yate": "B", "gw": "c"},
                              resources=prints, desired=declared, failing={ResourceKey(Kind.CAMPAIGN, "notice")},
                              since=since)
    assert baseline == DriftBaseline(frozenset({FW}), since)


def test_events_go_to_the_notifications_that_want_them() -> None:
    """By event, and by campaign when a Notification lists campaigns; an event about no campaign (an
    unreadable backend) goes to every Notification that wants its kind."""
    from reconciler.model import NotificationSpec
    from reconciler.notify.enqueue import route

    failing = observed({g: "DOWNLOAD_FAILED" for g in GATEWAYS[:5]})
    state = replace(failing, backends={**failing.backends, "gw": BackendObservation("gw", readable=False, error="down")})
    derived = derive_events(facts(state, plan=Plan(unreadable=("gw",))))
    hooks = {"all": NotificationSpec("all", "https://a", frozenset(E)),
             "fw-only": NotificationSpec("fw-only", "https://b", frozenset(E), campaigns=frozenset({"fw"})),
             "applet-only": NotificationSpec("applet-only", "https://c", frozenset(E), campaigns=frozenset({"applet"})),
             "halts": NotificationSpec("halts", "https://d", frozenset({E.ROLLOUT_HALTED}))}
    sent = sorted((d.notification, d.event) for d in route(derived, hooks, occurred_at=NOW))
    assert sent == [("all", "pass.failed"), ("all", "rollout.halted"), ("applet-only", "pass.failed"),
                    ("fw-only", "pass.failed"), ("fw-only", "rollout.halted"), ("halts", "rollout.halted")]
