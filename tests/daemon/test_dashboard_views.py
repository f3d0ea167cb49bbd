"""The dashboard's view-models, from daemon snapshots built by hand (``dashboard_fleet``): sync statuses
with their reasons, rollout waves, the SMS funnel, ETA and chart, the history, and the rendered HTML (masked,
scrubbed, escaped)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from reconciler.daemon.dashboard.app import server_event
from reconciler.daemon.dashboard.campaign_views import campaign_page, chart, send_rate
from reconciler.daemon.dashboard.live import SeriesBuffer, is_error_status
from reconciler.masking import mask_numbers_in
from reconciler.daemon.dashboard.rendering import Pages, View
from reconciler.daemon.dashboard.snapshot import ActionRecord, PassRecord, RequestTally, SeriesPoint
from reconciler.daemon.dashboard.sync import Sync
from reconciler.daemon.dashboard.views import history_page, overview
from reconciler.model import DesiredState, IotRunState, QuietHours, ScheduleSpec
from reconciler.observed import BackendObservation, ObservedIotCampaign
from reconciler.secrets import Redactor
from tests.daemon.dashboard_fleet import NOW, fleet_snapshot

ROLLOUT = "fw-rollout-000"


def rows(snapshot):  # type: ignore[no-untyped-def]
    return {row.name: row for row in overview(snapshot).campaigns}


def test_the_overview_lists_every_campaign_with_its_state_and_sync_status() -> None:
    shown = rows(fleet_snapshot())
    assert sorted(shown) == ["applet", "fw-rollout-000", "fw-rollout-001", "notice-000"]
    rollout, notice, applet = shown[ROLLOUT], shown["notice-000"], shown["applet"]
    assert (rollout.kind, rollout.declared, rollout.observed) == ("OTA (IoT)", "running", "STARTED")
    assert rollout.sync.kind is Sync.PROGRESSING and "14 not in the campaign yet" in rollout.sync.reason
    assert (notice.observed, notice.sync.kind, notice.progress) == ("sending", Sync.PROGRESSING,
                                                                    "800/2,000 messages handed over")
    assert applet.sync.kind is Sync.PROGRESSING and applet.sync.reason == "40 of 300 participant(s) pending"
    assert rollout.last_change == "2026-12-01 11:59:55 UTC"


def test_a_rollout_over_its_failure_limit_is_halted_with_the_rate_in_the_reason() -> None:
    row = rows(fleet_snapshot(failed_gateways=2))[ROLLOUT]  # 2 of 6 gateways in: 33% > 5%
    assert row.sync.kind is Sync.HALTED
    assert row.sync.reason == "failure rate 33.3% is over maxFailureRate 5.0%: the campaign is stopped"
    page = campaign_page(fleet_snapshot(failed_gateways=2), ROLLOUT)
    assert page is not None and page.iot is not None and page.iot.over_limit and page.iot.failure_rate == "33.3%"


def test_stranded_gateways_outrank_progress() -> None:
    snapshot = replace(fleet_snapshot(), stranded={ROLLOUT: {"count": 3, "by_window": {"download": 3},
                                                             "since": "2026-12-01T05:00:00+00:00",
                                                             "gateways": ["gw-00001", "gw-00002", "gw-00003"]}})
    row = rows(snapshot)[ROLLOUT]
    assert row.sync.kind is Sync.STRANDED
    assert row.sync.reason == ("3 gateway(s) stranded: their window ended before they finished (download 3) "
                               "since 2026-12-01T05:00:00+00:00")
    page = campaign_page(snapshot, ROLLOUT)
    assert page is not None and page.iot is not None and page.iot.stranded_ids == ("gw-00001", "gw-00002", "gw-00003")


def test_an_unreadable_backend_makes_its_campaigns_errors_and_the_backend_unreachable() -> None:
    snapshot = fleet_snapshot()
    snapshot = replace(snapshot, observed={**snapshot.observed,
                                           "iot": BackendObservation("iot", readable=False, error="connect timeout")})
    assert rows(snapshot)[ROLLOUT].sync.kind is Sync.ERROR
    assert rows(snapshot)[ROLLOUT].observed == "unreadable"
    backend = {b.name: b for b in overview(snapshot).backends}["iot"]
    assert (backend.status, backend.detail) == ("unreachable", "connect timeout")
    assert backend.error_rate == "2.0% of 50 (last 5 min)"


def test_declared_stopped_but_observed_started_is_out_of_sync() -> None:
    snapshot = fleet_snapshot()
    assert snapshot.desired is not None
    stopped = replace(snapshot.desired.campaigns[ROLLOUT], state=IotRunState.STOPPED)
    snapshot = replace(snapshot, desired=replace(snapshot.desired,
                                                 campaigns={**snapshot.desired.campaigns, ROLLOUT: stopped}))
    row = rows(snapshot)[ROLLOUT]
    assert (row.sync.kind, row.sync.reason) == (Sync.OUT_OF_SYNC, "declared stopped, is STARTED")


def test_a_stalled_campaign_is_an_error_and_one_backing_off_is_held_until_its_retry() -> None:
    snapshot = replace(fleet_snapshot(), stalled={"applet": "401 unauthorized"},
                       retry_at={ROLLOUT: (NOW + timedelta(seconds=40), 2)})
    shown = rows(snapshot)
    assert shown["applet"].sync.kind is Sync.ERROR and "401 unauthorized" in shown["applet"].sync.reason
    assert (shown[ROLLOUT].sync.kind, shown[ROLLOUT].sync.reason) == (
        Sync.HELD, "backing off after 2 failed attempt(s); next try at 12:00:40 UTC")


def test_an_sms_send_in_quiet_hours_is_held_with_when_they_end() -> None:
    snapshot = replace(fleet_snapshot(), sending=frozenset())
    assert snapshot.desired is not None
    quiet = ScheduleSpec(name="nights", campaign="notice-000",
                         quiet_hours=QuietHours(start="11:00", end="13:00", timezone="UTC"))
    snapshot = replace(snapshot, desired=replace(snapshot.desired, schedules={"nights": quiet}))
    row = rows(snapshot)["notice-000"]
    assert (row.sync.kind, row.sync.reason) == (Sync.HELD, "quiet hours until 2026-12-01T13:00:00+00:00")


def test_waves_have_the_planners_sizes_and_the_members_come_first() -> None:
    page = campaign_page(fleet_snapshot(), ROLLOUT)  # 20 declared gateways, 6 in the campaign
    assert page is not None and page.iot is not None
    waves = page.iot.waves
    assert [(w.share, w.size, w.status) for w in waves] == [("10%", 2, "finished"), ("50%", 8, "in progress"),
                                                           ("100%", 10, "waiting")]
    assert [(s.label, s.count) for s in waves[1].segments] == [("finished", 4), ("not in the campaign yet", 4)]
    assert sum(s.percent for s in waves[1].segments) == 100.0
    assert (page.iot.max_failure_rate, page.iot.success_threshold) == ("5.0%", "95%")


def test_the_funnel_counts_every_recipient_once_and_the_eta_follows_the_recent_rate() -> None:
    page = campaign_page(fleet_snapshot(recipients=2000, handed_over=800), "notice-000")
    assert page is not None and page.sms is not None
    funnel = {s.label: s.count for s in page.sms.funnel}
    assert funnel == {"to send": 1190, "dispatching": 10, "accepted": 360, "sent": 0, "delivered": 400,
                      "failed": 40, "unknown": 0}
    assert sum(funnel.values()) == page.sms.recipients == 2000
    assert page.sms.handed_over == 800
    assert page.sms.eta == "about 60 s left at 20.0/s (done about 12:01:00 UTC)"  # 1200 at 800 per 40 s


def test_without_a_send_running_the_eta_uses_the_declared_rate() -> None:
    page = campaign_page(replace(fleet_snapshot(), sending=frozenset()), "notice-000")
    assert page is not None and page.sms is not None
    assert page.sms.eta == "about 60 s at the declared 20/s"  # 1190 to send and 10 dispatching


def test_the_chart_spans_its_frame_from_the_first_point_to_the_last() -> None:
    points = [SeriesPoint(at=100.0 + i, handed_over=10 * i, delivered=5 * i, failed=0) for i in range(11)]
    drawn = chart(points, recipients=100)
    assert drawn is not None
    handed = drawn.lines[0][2].split()
    assert (handed[0], handed[-1]) == ("0.0,200.0", "640.0,200.0".replace("200.0", "0.0"))
    assert chart(points[:1], recipients=100) is None
    assert send_rate(points) == 10.0


def test_the_series_stays_bounded_and_spans_the_whole_send() -> None:
    buffer = SeriesBuffer(limit=50)
    for second in range(1000):
        buffer.add(SeriesPoint(at=float(second), handed_over=second, delivered=0, failed=0), moving=True)
    assert len(buffer.points) <= 50
    assert (buffer.points[0].at, buffer.points[-1].at) == (0.0, 999.0)
    still = len(buffer.points)
    buffer.add(SeriesPoint(at=2000.0, handed_over=999, delivered=0, failed=0), moving=False)
    assert len(buffer.points) == still  # nothing moved, nothing recorded


def test_the_history_marks_resyncs_that_changed_something_as_drift_corrections() -> None:
    page = history_page(fleet_snapshot())
    assert [(p.trigger, p.drift, p.backends) for p in page.passes] == [("resync", True, "all")]
    assert (page.quiet, page.last_quiet) == (1, "2026-12-01 11:58:30 UTC")  # the files pass did nothing
    assert [a.verb for a in page.drift[0].actions] == ["start-campaign"]


def test_an_error_rate_counts_server_errors_and_lost_replies_not_lookups() -> None:
    assert [is_error_status(s) for s in ("200", "404", "409", "429", "503", "ConnectTimeout")] == [
        False, False, False, True, True, True]
    snapshot = replace(fleet_snapshot(), requests={"iot": RequestTally(total=100, errors=10)})
    backend = {b.name: b for b in overview(snapshot).backends}["iot"]
    assert (backend.status, backend.error_rate) == ("degraded", "10.0% of 100 (since start)")


def failing(message: str):  # type: ignore[no-untyped-def]
    snapshot = fleet_snapshot()
    outcome = {"verb": "send-sms", "outcome": "failed", "message": message}
    record = PassRecord(at=NOW, reasons=("start",), backends=None, seconds=0.1, ok=False,
                        actions=(ActionRecord("send-sms", "Campaign/notice-000", "failed", message),))
    return replace(snapshot, outcomes={"Campaign/notice-000": [outcome]}, passes_log=(record,))


def test_every_page_masks_numbers_and_scrubs_secrets_wherever_they_come_from() -> None:
    redactor = Redactor()
    redactor.values.add("s3cr3t-gateway-password")
    snapshot = failing("gateway refused +491701231234 (auth s3cr3t-gateway-password)")
    pages = Pages(lambda text: mask_numbers_in(redactor.scrub(text)))
    for view in (View("overview"), View("campaign", "notice-000"), View("history")):
        html, found = pages.page(snapshot, view)
        assert found
        assert "491701231234" not in html.replace(" ", "") and "s3cr3t-gateway-password" not in html
        assert "+49 170 ***1234" in html


def test_markup_in_a_message_is_escaped() -> None:
    html, _ = Pages().page(failing('<script>alert("x")</script>'), View("campaign", "notice-000"))
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


def test_an_undeclared_campaign_is_a_page_that_says_so() -> None:
    html, found = Pages().page(replace(fleet_snapshot(), desired=DesiredState()), View("campaign", "gone"))
    assert not found and "No campaign named <code>gone</code>" in html


def test_a_server_event_carries_every_line_of_its_data() -> None:
    assert server_event("update", "<p>\r\none</p>\ntwo") == "event: update\ndata: <p>\ndata: one</p>\ndata: two\n\n"


def test_a_campaign_not_in_the_backend_yet_is_out_of_sync() -> None:
    snapshot = fleet_snapshot()
    observed = {**snapshot.observed, "iot": BackendObservation("iot", iot_campaigns=(
        ObservedIotCampaign(id="c1", name="fw-rollout-001", status="STARTED"),))}
    row = rows(replace(snapshot, observed=observed))[ROLLOUT]
    assert (row.sync.kind, row.sync.reason, row.observed) == (Sync.OUT_OF_SYNC, "declared in git, not in the backend",
                                                              "absent")
