"""The fleet builder the benchmarks and the reliability tests share: what it writes loads as a valid
repository declaring exactly the sizes asked for, a backend with nothing to do is left out, and moving
the windows reschedules every gateway."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from reconciler.load import load_desired_state
from reconciler.model import DesiredState
from reconciler.sandbox.fleet_repo import (
    WINDOWS,
    Endpoints,
    FleetRepo,
    FleetSpec,
    rewrite_windows,
    shifted_windows,
    write_fleet,
)

SMALL = FleetSpec(iot_campaigns=3, gateways_per_campaign=20, yate_campaigns=2, participants=50, sms_recipients=300,
                  ogangi_recipients=40)


def loaded(repo: FleetRepo) -> DesiredState:
    result = load_desired_state([repo.decl], root=repo.root)
    assert result.desired is not None, result.diagnostics
    return result.desired


def test_a_written_fleet_declares_every_size_it_was_given(tmp_path: Path) -> None:
    repo = write_fleet(SMALL, tmp_path, Endpoints.on_ports(18700))
    desired = loaded(repo)
    assignments = {a.name: a for a in desired.assignments.values()}
    gateways = [g for a in assignments.values() for g in a.gateways]
    recipients = {name: desired.campaigns[name].recipients.count  # type: ignore[union-attr]
                  for name in ("notice-gw", "notice-og")}
    assert (sorted(desired.backends), len(desired.packages), len(desired.schedules)) == (
        ["gw", "iot", "og", "yate"], 3, 3)
    assert (len(gateways), len(set(gateways)), len(assignments["fw-002-override"].gateways)) == (60, 60, 2)
    assert sorted(desired.campaigns) == sorted(repo.campaign_names)
    assert (recipients, assignments["notice-gw-ports"].ports) == ({"notice-gw": 300, "notice-og": 40},
                                                                 tuple(range(8)))


def test_a_backend_with_nothing_to_do_is_not_declared(tmp_path: Path) -> None:
    only_gateway = FleetSpec(iot_campaigns=0, yate_campaigns=0, ogangi_recipients=0, sms_recipients=5)
    desired = loaded(write_fleet(only_gateway, tmp_path, Endpoints.on_ports(18700)))
    assert (sorted(desired.backends), sorted(desired.campaigns)) == (["gw"], ["notice-gw"])


def test_a_single_package_fleet_has_no_overrides_and_the_yateota_fixtures_on_request(tmp_path: Path) -> None:
    spec = replace(SMALL, packages=1, yate_campaigns=0, yate_fixtures=True, sms_recipients=0, ogangi_recipients=0)
    desired = loaded(write_fleet(spec, tmp_path, Endpoints.on_ports(18700)))
    assert all(not a.packages for a in desired.assignments.values())
    assert sorted(c.name for c in desired.campaigns_of("yate")) == ["applet", "profile-refresh"]


def test_moving_the_windows_reschedules_every_campaign(tmp_path: Path) -> None:
    repo = write_fleet(SMALL, tmp_path, Endpoints.on_ports(18700))
    moved = rewrite_windows(repo.decl, repo.spec, 3)
    schedules = loaded(repo).schedules.values()
    assert moved.windows == shifted_windows(3) != WINDOWS
    assert {s.download.begin.isoformat() for s in schedules} == {"2030-01-05T01:00:00+00:00"}  # type: ignore[union-attr]


def test_the_gateway_is_trusted_by_its_ca_file_when_one_is_given(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not really a CA")
    urls = Endpoints.on_ports(18700).urls
    repo = write_fleet(replace(SMALL, iot_campaigns=0), tmp_path / "repo", Endpoints(urls, tmp_path / "ca.pem"))
    assert (repo.root / "sandbox-ca.pem").read_text() == "not really a CA"
    assert "tls: {caFile: ../sandbox-ca.pem}" in (repo.decl / "backends.yaml").read_text()


def test_a_fleet_with_recurring_windows_declares_them_for_every_campaign(tmp_path: Path) -> None:
    desired = loaded(write_fleet(replace(SMALL, recurring_windows=True), tmp_path, Endpoints.on_ports(18700)))
    windows = {(s.download.describe(), s.activation.describe())  # type: ignore[union-attr]
               for s in desired.schedules.values()}
    assert windows == {("daily 01:00-05:00 Europe/Berlin", "sat,sun 23:00-02:00 Europe/Berlin")}
    assert len(desired.schedules) == SMALL.iot_campaigns
