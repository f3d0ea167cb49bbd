"""Which backends a declaration-triggered pass visits (``reconciler.daemon.scope``)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from reconciler.daemon.health import fingerprints
from reconciler.daemon.scope import LastSeen, backend_prints, changed_backends
from reconciler.model import (BackendSpec, DesiredState, GatewayAssignmentSpec, IotCampaignSpec,
                              PackageSpec, RecipientSource, ScheduleSpec, SimCampaignSpec, SimRunState,
                              SmsCampaignSpec)
from reconciler.observed import BackendObservation, ObservedState


def prints_of(desired: DesiredState) -> dict[str, str]:
    return backend_prints(desired, fingerprints(desired))


def fleet(root: Path) -> DesiredState:
    (root / "numbers.csv").write_text("number\n+4917000001\n", encoding="utf-8")
    return DesiredState(
        backends={"iot": BackendSpec("iot", "iot-campaigns", "http://127.0.0.1:1"),
                  "yate": BackendSpec("yate", "yateota", "http://127.0.0.1:2"),
                  "gw": BackendSpec("gw", "sms-gateway", "http://127.0.0.1:3")},
        packages={"fw": PackageSpec("fw", "iot", "fw.bin", "", "a" * 64, 1)},
        campaigns={"rollout": IotCampaignSpec("rollout", "iot", packages=("fw",)),
                   "sim": SimCampaignSpec("sim", "yate", 142),
                   "notice": SmsCampaignSpec("notice", "gw", "hello", RecipientSource(file="numbers.csv", count=1))},
        assignments={"rollout-gws": GatewayAssignmentSpec("rollout-gws", "rollout", gateways=("gw-1",)),
                     "notice-ports": GatewayAssignmentSpec("notice-ports", "notice")},
        schedules={"rollout-windows": ScheduleSpec("rollout-windows", "rollout")},
        root=str(root),
    )


def test_an_edit_changes_only_its_own_backend(tmp_path: Path) -> None:
    desired = fleet(tmp_path)
    edited = replace(desired, campaigns={**desired.campaigns,
                                         "sim": SimCampaignSpec("sim", "yate", 142, state=SimRunState.PAUSED)})
    assert changed_backends(prints_of(desired), prints_of(edited)) == {"yate"}


def test_an_assignment_or_schedule_counts_for_its_campaigns_backend(tmp_path: Path) -> None:
    desired = fleet(tmp_path)
    edited = replace(desired, assignments={**desired.assignments,
                                           "rollout-gws": GatewayAssignmentSpec("rollout-gws", "rollout",
                                                                                gateways=("gw-1", "gw-2"))})
    assert changed_backends(prints_of(desired), prints_of(edited)) == {"iot"}


def test_rewriting_a_recipients_file_changes_its_backend_though_no_declaration_did(tmp_path: Path) -> None:
    desired = fleet(tmp_path)
    before = prints_of(desired)
    csv = tmp_path / "numbers.csv"
    csv.write_text("number\n+4917000002\n", encoding="utf-8")  # same size: the modification time tells
    os.utime(csv, ns=(csv.stat().st_atime_ns, csv.stat().st_mtime_ns + 1_000_000))
    assert changed_backends(before, prints_of(desired)) == {"gw"}


def test_nothing_changed_is_an_empty_scope_and_a_new_backend_is_in_it(tmp_path: Path) -> None:
    desired = fleet(tmp_path)
    assert changed_backends(prints_of(desired), prints_of(desired)) == set()
    fewer = desired.only_backends({"iot", "gw"})
    assert changed_backends(prints_of(fewer), prints_of(desired)) == {"yate"}


def test_only_backends_keeps_exactly_what_belongs_to_them(tmp_path: Path) -> None:
    kept = fleet(tmp_path).only_backends({"iot"})
    assert (set(kept.backends), set(kept.packages), set(kept.campaigns), set(kept.assignments),
            set(kept.schedules)) == ({"iot"}, {"fw"}, {"rollout"}, {"rollout-gws"}, {"rollout-windows"})


def test_a_visit_to_some_backends_replaces_only_what_was_seen_of_them(tmp_path: Path) -> None:
    desired = fleet(tmp_path)
    seen = LastSeen()
    everything = ObservedState({b: BackendObservation(b) for b in desired.backends})
    seen.absorb(desired, everything, {}, {"Campaign/rollout": [{"verb": "create-campaign"}]},
                {"Campaign/sim": "in sync"}, None, {"iot"})
    assert (seen.complete, seen.changed) == (True, {"iot"})
    yate_only = desired.only_backends({"yate", "iot"})
    seen.absorb(yate_only, ObservedState({"yate": BackendObservation("yate", readable=False, error="HTTP 503"),
                                          "iot": BackendObservation("iot")}),
                {}, {}, {"Campaign/sim": "unreadable"}, {"yate", "iot"}, set())
    assert seen.changed == set()
    assert seen.outcomes == {}  # rollout was visited again and nothing was done to it
    assert seen.reasons == {"Campaign/sim": "unreadable"}
    assert set(seen.observed) == {"iot", "yate", "gw"} and not seen.observed["yate"].readable
