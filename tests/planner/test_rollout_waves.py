"""How a rollout's current wave is derived from what the backend holds (the brief's numbers: waves
10%/50%/100% of 270 declared gateways are 27, 135 and 270 gateways).

The current wave is the first whose size (its share of the whole declared list, rounded up) is at least
the number of declared gateways already in the campaign; it is filled up to its size at once; the next wave
opens only when the current one is full and its success rate reaches ``successThreshold``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.actions import Verb
from reconciler.backends.registry import adapter_for
from reconciler.model import (
    BackendSpec,
    DesiredState,
    GatewayAssignmentSpec,
    IotCampaignSpec,
    Rollout,
)
from reconciler.observed import BackendObservation, ObservedGateway, ObservedIotCampaign, ObservedState
from reconciler.planner import PlanInput, plan
from reconciler.planner.campaign_gateways import wave_sizes
from reconciler.state.store import InventoryEntry, StoreView

DECLARED = tuple(f"gw-{i:05d}" for i in range(1, 271))
DONE, BUSY, FAILED = "ACTIVATION_COMPLETE", "DOWNLOADING", "DOWNLOAD_FAILED"


def planned(members: dict[str, str], *, max_failure_rate: float = 0.1) -> tuple[int, list[str], set[Verb]]:
    """(gateways added, the campaign's notes, verbs planned) for a campaign holding ``members``."""
    spec = IotCampaignSpec("roll", "iot", "Rollout", rollout=Rollout((0.1, 0.5, 1.0), 0.95, max_failure_rate))
    desired = DesiredState({"iot": BackendSpec("iot", "iot-campaigns", "http://127.0.0.1:8702")}, {},
                           {"roll": spec}, {"roll-gws": GatewayAssignmentSpec("roll-gws", "roll", DECLARED)})
    campaign = ObservedIotCampaign("c1", "roll", "STARTED", "Rollout",
                                   gateways=tuple(ObservedGateway(g, s) for g, s in members.items()))
    decided = plan(PlanInput(desired, ObservedState({"iot": BackendObservation("iot", iot_campaigns=(campaign,))}),
                             {"iot": adapter_for("iot-campaigns").traits},
                             StoreView(inventory=frozenset({InventoryEntry("iot", "campaign", "roll", "c1")})),
                             datetime(2026, 12, 1, tzinfo=UTC)))
    assert not any(a.verb is Verb.REMOVE_GATEWAYS for a in decided.actions)
    added = sum(len(a.params["gateway_ids"]) for a in decided.actions if a.verb is Verb.ADD_GATEWAYS)
    return added, [n.reason for n in decided.noops], {a.verb for a in decided.actions}


def members(count: int, done: int = 0, failed: int = 0) -> dict[str, str]:
    """``count`` declared gateways in the campaign (not the hash order's first ones: any may be in)."""
    states = [DONE] * done + [FAILED] * failed + [BUSY] * (count - done - failed)
    return dict(zip(DECLARED[::-1][:count], states, strict=True))


def test_wave_sizes_are_shares_of_the_whole_declared_list_rounded_up() -> None:
    assert wave_sizes((0.1, 0.5, 1.0), 270) == [27, 135, 270]
    assert wave_sizes((0.07, 1.0), 100) == [7, 100]  # not 8: 0.07 x 100 is 7.000000000000001 in floats
    assert wave_sizes((0.05, 1.0), 3) == [1, 3]


@pytest.mark.parametrize(("held", "added", "note"), [
    (members(0), 27, "rollout wave 1 of 3 (10%: 27 gateways)"),
    (members(20, done=20), 7, "rollout wave 1 of 3 (10%: 27 gateways)"),  # wave 1 not full: filled, no gate
    (members(27, done=10), 0, "rollout wave 1 of 3 (10%: 27 gateways)"),  # full, under successThreshold
    (members(27, done=27), 108, "rollout wave 2 of 3 (50%: 135 gateways)"),  # full and successful: next wave
    (members(135, done=100), 0, "rollout wave 2 of 3 (50%: 135 gateways)"),
    (members(250), 20, "rollout wave 3 of 3 (100%: 270 gateways)"),  # past wave 2 (135): in wave 3, everyone
    (members(270, done=270), 0, "rollout wave 3 of 3 (100%: 270 gateways)"),
], ids=["none-in", "20-in", "27-in-busy", "27-in-done", "135-in", "250-in", "all-in"])
def test_the_current_wave_is_the_first_whose_size_holds_the_gateways_already_in(
    held: dict[str, str], added: int, note: str
) -> None:
    got_added, notes, _ = planned(held)
    assert (got_added, note in notes) == (added, True), notes


def test_over_max_failure_rate_nothing_joins_and_the_campaign_stops() -> None:
    added, notes, verbs = planned(members(27, failed=5), max_failure_rate=0.1)
    assert added == 0 and Verb.STOP_CAMPAIGN in verbs
    assert any("failure rate 19% is over maxFailureRate 10%" in n for n in notes)
