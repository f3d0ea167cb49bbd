"""The campaigns and participants the YateOTA simulator starts with, deterministic by construction.

Default fixtures (the ids the seed's examples use), ``participants_per_campaign`` each (default 20),
participant ids global and consecutive from 151 in the order below:

    142 applet-update-q3    ram  started   participants 151..170 (161 among them)
    144 roaming-list-2024   rfm  started   participants 171..190
    147 applet-update-q4    ram  started   participants 191..210 (195 starts failed)
    167 ota-keys-rotation   rfm  started   participants 211..230
    176 euicc-profile-sync  ram  paused    participants 231..250

Within a campaign participant number i takes ``STATE_CYCLE[i % 10]``: 3 finished, 1 waiting_por,
1 pending_send, 1 failed, 3 pending_build and 1 canceled in every ten. A benchmark ``fleet`` of
``(campaign_id, participant_count, failed_fraction)`` replaces these: every campaign started, the failed
fraction spread evenly, the others cycling finished / waiting_por / pending_send / pending_build.
``extra_campaigns`` adds started campaigns numbered after the highest id, shaped like the defaults.

Participants move like a sending queue: participant number i of a campaign takes its next step
``(i + 1) * step_seconds`` after start (or reset), then one step per ``step_seconds``; with the defaults
the started fixture campaigns keep running for about eleven minutes of simulated time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reconciler.sandbox.yateota.fleet import (
    FAILURE_REASONS,
    NEXT_STEP,
    Campaign,
    CampaignState,
    Participant,
    ParticipantState,
    TraceEvent,
    YateOtaFleet,
)

FIRST_PARTICIPANT_ID = 151
DAY_S = 86_400.0

S = ParticipantState
STATE_CYCLE = (S.FINISHED, S.FINISHED, S.WAITING_POR, S.PENDING_SEND, S.FAILED,
               S.PENDING_BUILD, S.PENDING_BUILD, S.FINISHED, S.CANCELED, S.PENDING_BUILD)
FLEET_CYCLE = (S.FINISHED, S.WAITING_POR, S.PENDING_SEND, S.PENDING_BUILD)


@dataclass(frozen=True)
class CampaignFixture:
    """One campaign to create: id, name, type, starting state, and its participants' states."""

    campaign_id: int
    name: str
    type: str
    state: CampaignState
    participant_states: tuple[ParticipantState, ...]


def default_fixtures(participants_per_campaign: int) -> list[CampaignFixture]:
    cycled = _cycled(STATE_CYCLE, participants_per_campaign)
    return [
        CampaignFixture(142, "applet-update-q3", "ram", CampaignState.STARTED, cycled),
        CampaignFixture(144, "roaming-list-2024", "rfm", CampaignState.STARTED, cycled),
        CampaignFixture(147, "applet-update-q4", "ram", CampaignState.STARTED, cycled),
        CampaignFixture(167, "ota-keys-rotation", "rfm", CampaignState.STARTED, cycled),
        CampaignFixture(176, "euicc-profile-sync", "ram", CampaignState.PAUSED, cycled),
    ]


def benchmark_fixtures(fleet: list[tuple[int, int, float]]) -> list[CampaignFixture]:
    return [
        CampaignFixture(
            int(campaign_id),
            f"fleet-{campaign_id}",
            "ram" if position % 2 == 0 else "rfm",
            CampaignState.STARTED,
            _with_failed_fraction(int(count), float(failed_fraction)),
        )
        for position, (campaign_id, count, failed_fraction) in enumerate(fleet)
    ]


def extra_fixtures(after_id: int, count: int, participants_per_campaign: int) -> list[CampaignFixture]:
    cycled = _cycled(STATE_CYCLE, participants_per_campaign)
    return [
        CampaignFixture(
            after_id + n, f"generated-{after_id + n}", "ram" if n % 2 else "rfm", CampaignState.STARTED, cycled
        )
        for n in range(1, count + 1)
    ]


def populate(fleet: YateOtaFleet, fixtures: list[CampaignFixture], *, now: float) -> None:
    """Create ``fixtures`` in ``fleet``: campaigns started days ago, participants with a plausible history."""
    next_id = FIRST_PARTICIPANT_ID
    for position, fixture in enumerate(fixtures):
        start_time = now - DAY_S * (len(fixtures) - position)
        fleet.add_campaign(
            Campaign(fixture.campaign_id, fixture.name, fixture.type, fixture.state, start_time)
        )
        for index, state in enumerate(fixture.participant_states):
            created = start_time + index * fleet.step_seconds
            due_at = now + fleet.step_seconds * (1 + index)
            fleet.add_participant(
                _participant(
                    next_id,
                    fixture.campaign_id,
                    state,
                    created=created,
                    due_at=due_at,
                    step_seconds=fleet.step_seconds,
                )
            )
            next_id += 1
    fleet.settle_all()


def _participant(
    participant_id: int,
    campaign_id: int,
    state: ParticipantState,
    *,
    created: float,
    due_at: float,
    step_seconds: float,
) -> Participant:
    events = _history(state, created, step_seconds)
    return Participant(
        participant_id=participant_id,
        campaign_id=campaign_id,
        msisdn=f"49170{participant_id:07d}",
        imsi=f"26201{participant_id:010d}",
        state=state,
        attempts=0 if state in NEXT_STEP or state is S.CANCELED else 1,
        last_update=events[-1].time,
        error=FAILURE_REASONS[participant_id % len(FAILURE_REASONS)] if state is S.FAILED else "",
        due_at=due_at,
        events=events,
    )


def _history(state: ParticipantState, created: float, step_seconds: float) -> list[TraceEvent]:
    """The events that led a participant to ``state``, one step apart."""
    steps = [("created", S.PENDING_BUILD)]
    if state is S.CANCELED:
        steps.append(("cancel", S.CANCELED))
    elif state is not S.PENDING_BUILD:
        steps.append(("built", S.PENDING_SEND))
        if state is not S.PENDING_SEND:
            steps.append(("sent", S.WAITING_POR))
        if state is S.FINISHED:
            steps.append(("por_received", S.FINISHED))
        elif state is S.FAILED:
            steps.append(("failed", S.FAILED))
    return [TraceEvent(created + n * step_seconds, event, reached) for n, (event, reached) in enumerate(steps)]


def _cycled(cycle: tuple[ParticipantState, ...], count: int) -> tuple[ParticipantState, ...]:
    return tuple(cycle[i % len(cycle)] for i in range(count))


def _with_failed_fraction(count: int, failed_fraction: float) -> tuple[ParticipantState, ...]:
    """``floor(count * failed_fraction)`` failed participants spread evenly among the others."""
    states: list[ParticipantState] = []
    for i in range(count):
        failed = math.floor((i + 1) * failed_fraction + 1e-9) > math.floor(i * failed_fraction + 1e-9)
        states.append(S.FAILED if failed else FLEET_CYCLE[i % len(FLEET_CYCLE)])
    return tuple(states)
