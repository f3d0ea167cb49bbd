"""The shipped examples: ``examples/quickstart`` and ``campaigns.d`` validate and build the expected model."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from reconciler.backends import registry
from reconciler.load import load_desired_state
from reconciler.model import (
    CallbackKind, IotCampaignSpec, Kind, RecurringWindow, SimCampaignSpec, SmsCampaignSpec,
    SmsRunState,
)
from reconciler.secrets import SecretRef, resolve_secret

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart"


@pytest.fixture(scope="module")
def quickstart():
    result = load_desired_state([QUICKSTART])
    assert result.desired is not None, [d.format() for d in result.diagnostics]
    return result.desired


@pytest.mark.parametrize("folder", [QUICKSTART, REPO / "campaigns.d"], ids=["quickstart", "campaigns.d"])
def test_example_repository_is_valid(folder: Path) -> None:
    """The example validates with no diagnostic at all."""
    result = load_desired_state([folder])
    assert result.valid
    assert result.diagnostics == ()


def test_quickstart_uses_every_kind_and_backend_type(quickstart) -> None:
    """Every kind and every backend type appears in the quickstart."""
    assert {spec.type for spec in quickstart.backends.values()} == {d.type for d in registry.BUILT_IN}
    for kind, declared in [(Kind.PACKAGE, quickstart.packages), (Kind.CAMPAIGN, quickstart.campaigns),
                           (Kind.GATEWAY_ASSIGNMENT, quickstart.assignments), (Kind.SCHEDULE, quickstart.schedules)]:
        assert declared, kind


def test_quickstart_backends_use_the_sandbox_ports(quickstart) -> None:
    """The four backends point at the sandbox's default ports 8701-8704."""
    ports = {spec.type: spec.url.rsplit(":", 1)[1] for spec in quickstart.backends.values()}
    assert ports == {"yateota": "8701", "iot-campaigns": "8702", "ogangi": "8703",
                     "sms-gateway": "8704"}


def test_quickstart_secret_files_resolve_to_the_sandbox_credentials(quickstart) -> None:
    """Secret references are file references relative to the root, holding the sandbox credentials."""
    secrets = {name: spec.auth for name, spec in quickstart.backends.items()}
    assert isinstance(secrets["yate-ota"]["secret"], SecretRef)
    root = Path(quickstart.root)
    assert resolve_secret(secrets["yate-ota"]["secret"], base_dir=root).reveal() == "sandbox-secret"
    assert resolve_secret(secrets["ogangi-sandbox"]["privateKey"], base_dir=root).reveal() == "sandbox-private"
    assert secrets["ogangi-sandbox"]["instanceId"] == "7"


def test_package_hash_and_size_are_computed(quickstart) -> None:
    """A package carries the SHA-256 and size of its file, and a path relative to the root."""
    import hashlib

    package = quickstart.packages["gw-firmware"]
    data = (Path(quickstart.root) / package.file).read_bytes()
    assert package.sha256 == hashlib.sha256(data).hexdigest()
    assert package.size == len(data)
    assert package.upload_name == f"gw-firmware-{package.sha256[:12]}"


def test_rollout_percentages_become_fractions(quickstart) -> None:
    """``[10%, 50%, 100%]`` and the thresholds are fractions in the model."""
    campaign = quickstart.campaigns["fw-2-4-rollout"]
    assert isinstance(campaign, IotCampaignSpec)
    assert campaign.rollout is not None
    assert campaign.rollout.waves == (0.1, 0.5, 1.0)
    assert campaign.rollout.success_threshold == pytest.approx(0.95)
    assert campaign.rollout.max_failure_rate == pytest.approx(0.05)
    assert campaign.callbacks[CallbackKind.STATE_CHANGE].tracked_states == ("ACTIVATION_COMPLETE", "DOWNLOAD_FAILED")


def test_schedule_times_are_aware_datetimes(quickstart) -> None:
    """Windows are time-zone-aware datetimes, in the future (2027)."""
    nights = quickstart.schedules["fw-2-4-munich-nights"]
    assert nights.download is not None
    assert nights.download.begin.tzinfo is not None
    assert nights.download.begin == datetime(2027, 3, 8, 0, 0, tzinfo=timezone.utc)
    assert nights.download.begin > datetime(2026, 12, 31, tzinfo=timezone.utc)
    quiet = quickstart.schedules["outage-hours"].quiet_hours
    assert quiet is not None and (quiet.start, quiet.end, quiet.timezone) == ("21:00", "08:00", "Europe/Berlin")


def test_quickstart_declares_recurring_windows(quickstart) -> None:
    """The campaign-wide schedule uses recurring windows: daily, and weekly across midnight, Berlin time."""
    nights = quickstart.schedules["fw-2-4-nights"]
    assert nights.download == RecurringWindow("01:00", "05:00", "Europe/Berlin")
    assert nights.activation == RecurringWindow("23:00", "02:00", "Europe/Berlin", (5, 6))


def test_sms_campaigns_know_their_recipients(quickstart) -> None:
    """The CSV campaign counts its rows; the inline one lists numbers with their parameters."""
    outage = quickstart.campaigns["outage-notice-dec"]
    assert isinstance(outage, SmsCampaignSpec)
    assert outage.recipients.file == "examples/quickstart/recipients/outage-dec.csv"
    assert outage.recipients.count == 20
    assert outage.state is SmsRunState.ACTIVE
    welcome = quickstart.campaigns["welcome-sms"]
    assert isinstance(welcome, SmsCampaignSpec)
    assert welcome.sender == "12345"
    assert [r.number for r in welcome.recipients.inline] == ["+584140000001", "+584140000002", "+584140000003"]
    assert welcome.recipients.inline[0].params == ("Ana",)


def test_yateota_campaigns_are_adopted_by_id(quickstart) -> None:
    """YateOTA campaigns carry the id they adopt and the participant rules."""
    applet = quickstart.campaigns["applet-update-q4"]
    assert isinstance(applet, SimCampaignSpec)
    assert (applet.campaign_id, applet.retry_failed_max_attempts) == (147, 3)
    assert applet.cancel_msisdns == ("491700000099",)


def test_assignments_read_gateway_files_and_overrides(quickstart) -> None:
    """A file-based assignment lists the file's ids in order; the override names its packages."""
    munich = quickstart.assignments["fw-2-4-munich"]
    assert munich.gateways == ("gw-00006", "gw-00007", "gw-00008", "gw-00009", "gw-00010")
    assert munich.packages == ("gw-firmware-de",)
    assert quickstart.assignments["outage-ports"].ports == (0, 1, 2, 3)


def test_resources_remember_where_they_were_declared(quickstart) -> None:
    """Each spec's source names its file and the line of its document."""
    source = quickstart.campaigns["applet-update-q4"].source
    assert source is not None
    assert source.file.endswith("campaigns.yaml")
    line = (QUICKSTART / "campaigns.yaml").read_text().splitlines()[source.line - 1]
    assert line == "apiVersion: reconciler/v1"
