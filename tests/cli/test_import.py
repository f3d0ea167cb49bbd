"""``reconcile import``: objects made directly through the backends' own APIs become declarations that plan
nothing, recorded as adopted; names that collide or cannot be paths are handled; a folder that is not empty
or a backend that cannot be read stops the import before anything is written."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import httpx
import pytest
import yaml

from reconciler.backends.exported import ExportedResource, ExportRef, ExportResult
from reconciler.cli.main import main
from reconciler.engine.import_layout import Exported, lay_out
from reconciler.engine.import_names import NameBook, name_from
from reconciler.model import DesiredState, Kind
from reconciler.sandbox.run import RunningSandbox
from tests.engine import sandbox_repo as repo

STATE = "sqlite:///state.db"


class IotApi:
    """The IoT campaign manager's seed API, called directly (as a person or another tool would)."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.url = sandbox.url("iot-campaigns")
        token = httpx.post(f"{self.url}/api/tokens", auth=("admin", "admin")).json()["accessToken"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **request: object) -> dict:
        reply = httpx.request(method, f"{self.url}{path}", headers=self.headers, **request)  # type: ignore[arg-type]
        reply.raise_for_status()
        return reply.json() if reply.content else {}

    def upload(self, name: str, content: bytes, description: str = "") -> str:
        return self.call("POST", "/api/programs/", params={"name": name, "description": description},
                          content=content)["uuid"]

    def campaign(self, name: str, *, packages: tuple[str, ...] = (), description: str = "") -> str:
        body = {"name": name, "description": description, "packages": list(packages),
                "campaignSettings": {"settings": {}}}
        return self.call("POST", "/api/campaigns", json=body)["uuid"]

    def add_gateways(self, campaign_id: str, gateways: list[str]) -> None:
        self.call("POST", f"/api/campaigns/{campaign_id}/devices",
                   json={"gatewayIds": gateways, "campaignId": campaign_id})

    def distribution_list(self, campaign_id: str, list_id: str, interval: int) -> None:
        self.call("PUT", f"/api/campaigns/{campaign_id}/distribution-list",
                   json={"distributionListId": list_id, "reevaluationIntervalSeconds": str(interval),
                         "campaignId": campaign_id})

    def start(self, campaign_id: str) -> None:
        self.call("PUT", f"/api/campaigns/{campaign_id}/start", json={"campaignId": campaign_id})

    def program_id(self, prefix: str) -> str:
        """The id of the first program whose name starts with ``prefix``."""
        return next(p["id"] for p in self.call("GET", "/api/programs", params={"page.size": 100})["programs"]
                    if p["name"].startswith(prefix))


def yate_action(sandbox: RunningSandbox, campaign_id: int, action: str) -> None:
    reply = httpx.post(f"{sandbox.url('yateota')}/api.php", headers={"X-Authentication": "sandbox-secret"},
                       json={"request": "action_campaign", "node": "ota",
                             "params": {"campaign_id": campaign_id, "action": action}})
    assert reply.json()["code"] == 0


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def plan_of(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, dict]:
    code, out, _ = run(capsys, "--dry-run", "--detailed-exitcode", "--output", "json", *map(str, paths),
                       "--state", STATE)
    return code, json.loads(out)


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts}


def spec_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["spec"]


def inventory(db: Path) -> set[tuple[str, str, str, str]]:
    with sqlite3.connect(db) as connection:
        return set(connection.execute("SELECT backend, kind, name, remote_id FROM inventory"))


def test_objects_made_through_the_apis_are_imported_and_then_plan_nothing(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """IoT packages, a started campaign with packages, gateways and distribution list, a campaign never
    started, and YateOTA campaigns whose state changed: imported, validated, adopted, and a dry run of the
    repository with them exits 0 with --detailed-exitcode."""
    assert main([str(decl), "--state", STATE]) == 0  # the declared package `fw` is uploaded
    iot = IotApi(sandbox)
    config = iot.upload("gw-config 2.0.json", b'{"mode": "eco"}', description="Gateway configuration 2.0")
    berlin = iot.campaign("berlin-rollout", packages=(iot.program_id("fw-"), config),
                          description="Berlin fleet")
    iot.add_gateways(berlin, ["gw-00001", "gw-00002", "gw-00003"])
    iot.distribution_list(berlin, "berlin-gateways", 3600)
    iot.start(berlin)
    iot.campaign("munich-pilot")
    yate_action(sandbox, 147, "pause")
    yate_action(sandbox, 142, "stop")
    out = decl.parent / "imported"

    code, text, err = run(capsys, "import", str(decl), "--out", str(out), "--state", STATE)

    assert code == 0, err
    assert "recorded 8 object(s) as adopted" in text  # 1 package, 2 IoT and 5 YateOTA campaigns
    campaign = spec_of(out / "campaigns" / "berlin-rollout.yaml")
    assert campaign == {"backend": "iot", "description": "Berlin fleet", "packages": ["fw", "gw-config-2-0-json"],
                        "state": "running", "distributionList": {"id": "berlin-gateways",
                                                                 "reevaluationIntervalSeconds": 3600}}
    assert spec_of(out / "assignments" / "berlin-rollout-gateways.yaml")["gateways"] == [
        "gw-00001", "gw-00002", "gw-00003"]
    assert spec_of(out / "campaigns" / "munich-pilot.yaml")["state"] == "stopped"
    assert spec_of(out / "campaigns" / "applet-update-q4.yaml") == {"backend": "yate", "campaignId": 147,
                                                                    "state": "paused"}
    assert spec_of(out / "campaigns" / "applet-update-q3.yaml")["state"] == "stopped"
    package = spec_of(out / "packages" / "gw-config-2-0-json.yaml")
    assert package["program"] == "gw-config 2.0.json" and package["file"] == "files/gw-config-2-0-json.placeholder"
    assert (out / "packages" / "files" / "gw-config-2-0-json.placeholder").read_text().startswith("PLACEHOLDER")
    assert "placeholder" in (out / "packages" / "gw-config-2-0-json.yaml").read_text().split("apiVersion")[0]
    assert all(p.read_text().startswith("# yaml-language-server: $schema=") for p in out.rglob("*.yaml"))
    adopted = {entry[:3] for entry in inventory(decl.parent.parent / "state.db")}
    assert {("iot", "package", "gw-config 2.0.json"), ("iot", "campaign", "berlin-rollout"),
            ("iot", "campaign", "munich-pilot"), ("yate", "campaign", "applet-update-q4")} <= adopted
    writes = repo.write_requests(sandbox)
    code, plan = plan_of(capsys, decl, out)
    assert code == 0, plan
    assert plan["actions"] == [] and not any("adopt" in n["reason"] for n in plan["noops"])
    assert repo.write_requests(sandbox) == writes  # importing wrote nothing to any backend


def test_an_import_that_records_nothing_leaves_adoption_to_apply_with_adopt(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Imported with --no-state, a same-named campaign is not in the inventory: the plan shows `~ adopt` and
    leaves it alone until an apply with --adopt."""
    assert main([str(decl), "--state", STATE]) == 0  # the store exists, with `fw` in its inventory
    IotApi(sandbox).campaign("orphan")
    out = decl / "imported"
    code, text, _ = run(capsys, "import", str(decl), "--out", str(out), "--no-state")
    assert code == 0 and "recorded nothing as adopted" in text
    code, plan = plan_of(capsys, decl)
    assert any(n["reason"].startswith("~ adopt") for n in plan["noops"] if n["resource"] == "Campaign/orphan")
    assert main([str(decl), "--state", STATE, "--adopt"]) == 0
    code, plan = plan_of(capsys, decl)
    assert code == 0 and plan["actions"] == [] and not any("adopt" in n["reason"] for n in plan["noops"])


def test_a_dry_run_prints_the_files_and_writes_and_records_nothing(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The files as they would be written, their `$schema` comment pointing at the repository's own schemas
    folder when it has one; no folder, no store."""
    IotApi(sandbox).campaign("preview-me", description="shown, not written")
    (decl.parent / "schemas").mkdir()
    (decl.parent / "schemas" / "campaign.schema.json").write_text("{}")
    out = decl / "imported"
    code, text, _ = run(capsys, "import", str(decl), "--out", str(out), "--state", STATE, "--dry-run")
    assert code == 0
    assert f"would write {out / 'campaigns' / 'preview-me.yaml'}" in text
    assert "\n    spec:\n      backend: iot\n      description: shown, not written\n      state: stopped\n" in text
    assert "    # yaml-language-server: $schema=../../../schemas/campaign.schema.json" in text
    assert "nothing was written (--dry-run)" in text
    assert not out.exists() and not (tmp_path / "state.db").exists()


def test_names_that_collide_are_told_apart_and_a_name_the_backend_matches_is_kept_or_skipped(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An IoT campaign keeps its name (it is how the backend matches it) even against a YateOTA campaign's
    made-up one, which takes `-2`; programs whose names read alike get `-2`; an IoT campaign whose name is
    declared elsewhere, or shared by two campaigns, is skipped with the reason; the result plans nothing."""
    (decl / "package.yaml").unlink()
    repo.write(decl, "sim.yaml", "apiVersion: reconciler/v1\nkind: Campaign\nmetadata: {name: taken}\n"
                                 "spec: {backend: yate, campaignId: 144, state: running}\n")
    iot = IotApi(sandbox)
    iot.upload("FW 1.0", b"one")
    iot.upload("fw-1-0", b"two")
    iot.campaign("applet-update-q4")  # the name YateOTA campaign 147 has
    iot.campaign("taken")  # declared as a YateOTA campaign
    iot.campaign("twin")
    iot.campaign("twin")
    out = decl / "imported"
    code, text, _ = run(capsys, "import", str(decl), "--out", str(out), "--state", STATE)
    assert code == 0
    assert spec_of(out / "campaigns" / "applet-update-q4.yaml")["backend"] == "iot"
    assert spec_of(out / "campaigns" / "applet-update-q4-2.yaml")["campaignId"] == 147
    assert {spec_of(out / "packages" / f"{n}.yaml")["program"] for n in ("fw-1-0", "fw-1-0-2")} == {"FW 1.0",
                                                                                                    "fw-1-0"}
    assert "skipped iot: Campaign 'taken': Campaign taken is already declared" in text
    assert "skipped iot: Campaign 'twin': 2 campaigns have this name" in text
    assert not (out / "campaigns" / "taken.yaml").exists() and not (out / "campaigns" / "twin.yaml").exists()
    code, plan = plan_of(capsys, decl)
    assert code == 0 and plan["actions"] == [], plan


def test_backend_names_that_are_unsafe_as_paths_never_reach_one(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Path separators, `..`, control characters and a newline in backend names: every file lands under
    --out with a plain name, comments stay comments, and the program keeps its real name."""
    (decl / "package.yaml").unlink()
    iot = IotApi(sandbox)
    iot.upload("../../../escaped\n.bin", b"x")
    iot.upload("/etc/passwd", b"y")
    iot.campaign("../../outside")
    root = decl.parent
    before = files_under(root.parent)
    out = decl / "imported"
    code, text, _ = run(capsys, "import", str(decl), "--out", str(out), "--state", STATE)
    assert code == 0
    new = files_under(root.parent) - before - {"state.db"}
    assert all(name.startswith(str((out).relative_to(root.parent))) for name in new), new
    assert files_under(out) == {"packages/escaped-bin.yaml", "packages/files/escaped-bin.placeholder",
                                "packages/etc-passwd.yaml", "packages/files/etc-passwd.placeholder",
                                *(f"campaigns/{n}.yaml" for n in ("applet-update-q3", "roaming-list-2024",
                                                                  "applet-update-q4", "ota-keys-rotation",
                                                                  "euicc-profile-sync"))}
    written = (out / "packages" / "escaped-bin.yaml").read_text()
    assert spec_of(out / "packages" / "escaped-bin.yaml")["program"] == "../../../escaped\n.bin"
    assert all(line.startswith("#") for line in written.split("apiVersion")[0].splitlines())
    assert "\\n" in text and "escaped\n" not in text  # printed escaped, on one line
    assert "skipped iot: Campaign '../../outside': its name is not a valid resource name" in text
    code, plan = plan_of(capsys, decl)
    assert code == 0 and plan["actions"] == []


def test_an_imported_package_whose_program_is_gone_is_an_error_never_an_upload_of_its_placeholder(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (decl / "package.yaml").unlink()
    iot = IotApi(sandbox)
    program = iot.upload("fw-3.0.bin", b"three")
    assert main(["import", str(decl), "--out", str(decl / "imported"), "--state", STATE]) == 0
    iot.call("DELETE", f"/api/programs/{program}")
    writes = repo.write_requests(sandbox)
    code, out, err = run(capsys, str(decl), "--state", STATE)
    assert code == 1
    assert "program 'fw-3.0.bin' (spec.program) does not exist on backend iot" in out + err
    assert repo.write_requests(sandbox) == writes


def test_what_this_tool_manages_and_git_no_longer_declares_is_not_imported_again(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Removing a campaign from git is a decision (--prune acts on it): the import leaves it out, says why,
    and imports what the inventory does not hold."""
    repo.write(decl, "a.yaml", repo.campaign_yaml("rollout-a", gateways=["gw-00001"], state="stopped"))
    assert main([str(decl), "--state", STATE]) == 0
    (decl / "a.yaml").unlink()
    IotApi(sandbox).campaign("made-by-hand")
    code, text, err = run(capsys, "import", str(decl), "--out", str(decl / "imported"), "--state", STATE, "--dry-run")
    assert code == 0, err
    assert "skipped iot: Campaign 'rollout-a': this tool manages it" in text and "--prune" in text
    assert "skipped iot: GatewayAssignment 'rollout-a-gateways': not imported, since what it refers to is not" in text
    assert "[Campaign/made-by-hand]" in text and "Campaign/rollout-a]" not in text


def test_a_folder_under_out_that_is_a_symlink_is_never_written_through(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = decl / "imported"
    out.mkdir()
    (out / "campaigns").symlink_to(elsewhere)
    code, _, err = run(capsys, "import", str(decl), "--out", str(out), "--state", STATE, "--force")
    assert code == 1 and "is not a plain folder" in err
    assert list(elsewhere.iterdir()) == [] and files_under(out) == set()


def test_an_out_folder_that_is_not_empty_is_refused_unless_forced(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = decl.parent / "imported"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    code, _, err = run(capsys, "import", str(decl), "--out", str(out), "--state", STATE)
    assert code == 1 and "is not empty" in err and "--force" in err
    assert files_under(out) == {"notes.txt"}
    code, _, _ = run(capsys, "import", str(decl), "--out", str(out), "--state", STATE, "--force")
    assert code == 0 and "notes.txt" in files_under(out) and len(files_under(out)) == 6


def test_an_unreadable_backend_fails_the_import_and_nothing_is_written_or_recorded(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    IotApi(sandbox).campaign("never-imported")
    monkeypatch.setenv("IOT_PASSWORD", "wrong")
    out = decl / "imported"
    code, text, err = run(capsys, "import", str(decl), "--out", str(out), "--state", STATE)
    assert code == 1
    assert "backend iot could not be read" in err and "nothing was written" in err
    assert "wrong" not in text + err
    assert not out.exists()
    assert inventory(tmp_path / "state.db") == set()


def test_backends_that_list_no_campaigns_have_nothing_to_import(
        sandbox: RunningSandbox, decl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write(decl, "sms.yaml", f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: gsm}}
spec:
  type: sms-gateway
  url: "{sandbox.url('sms-gateway')}"
  auth: {{username: admin, password: {{env: GSM_PASSWORD}}}}
""")
    code, text, _ = run(capsys, "import", str(decl), "--out", str(decl / "imported"), "--state", STATE)
    assert code == 0
    assert "backend gsm: a sms-gateway backend lists no campaigns or packages: nothing to import" in text
    assert "backend yate: 5 Campaign" in text


def test_made_up_names_are_valid_unique_and_stable() -> None:
    book = NameBook({Kind.CAMPAIGN: {"rollout"}})
    assert name_from("Mise à jour: Région Île-de-France") == "mise-a-jour-region-ile-de-france"
    assert book.claim_derived(Kind.CAMPAIGN, "Rollout", "x") == "rollout-2"
    assert book.claim_derived(Kind.CAMPAIGN, "rollout", "x") == "rollout-3"
    assert book.claim_derived(Kind.CAMPAIGN, "…/\x00", "campaign-7") == "campaign-7"
    long = book.claim_derived(Kind.CAMPAIGN, "a" * 80, "x")
    assert long == "a" * 63 and book.claim_derived(Kind.CAMPAIGN, "a" * 80, "x") == "a" * 61 + "-2"
    assert book.claim_exact(Kind.CAMPAIGN, "rollout-2").startswith("Campaign rollout-2 is already declared")
    assert book.claim_exact(Kind.CAMPAIGN, "Fresh").startswith("its name is not a valid resource name")
    assert book.claim_exact(Kind.CAMPAIGN, "fresh") == ""
    assert os.sep not in name_from("a/b\\c") and "." not in name_from("../..x")


def test_text_no_yaml_file_can_hold_skips_its_resource_and_what_refers_to_it(tmp_path: Path) -> None:
    """A lone surrogate (JSON allows one) in a value: that resource and its dependents are skipped, saying why;
    the others are laid out."""
    bad = ExportedResource(ref="c1", kind=Kind.CAMPAIGN, name_from="odd",
                           spec={"backend": "b", "description": "\ud800"}, comments=("odd \ud800 comment",))
    child = ExportedResource(ref="a1", kind=Kind.GATEWAY_ASSIGNMENT, name_from="odd-gateways",
                             spec={"campaign": ExportRef("c1"), "gateways": ["gw-1"]})
    good = ExportedResource(ref="c2", kind=Kind.CAMPAIGN, name_from="Fine \ud800 Name", spec={"backend": "b"},
                            comments=("a comment with \ud800",))
    found = Exported(results={"b": ExportResult((bad, child, good))})
    layout = lay_out(found, DesiredState(), out=tmp_path / "out", root=tmp_path)
    assert [f.resource for f in layout.files] == ["Campaign/fine-name"]
    assert b"# a comment with \\ud800" in layout.files[0].content
    assert layout.skipped == ("b: Campaign 'odd': it holds text that is not valid Unicode (a lone surrogate), which no "
                              "YAML file can hold",
                              "b: GatewayAssignment 'odd-gateways': not imported, since what it refers to is not")
