"""The YateOTA simulator's world: campaigns, participants, their state machines and their lifecycle on
the simulated clock, kept apart from the HTTP envelope (``yateota.py``) so the rules read as rules.

Participants of a ``started`` campaign advance one step every ``step_seconds``:
pending_build -> pending_send -> waiting_por -> finished | failed (failed with ``failure_rate``, drawn
from the seeded RNG in due-time order, so a run repeats whatever the request timing). A started
campaign whose participants are all final (finished, failed, canceled) becomes finished; a finished
campaign refuses every campaign action, and retrying one of its participants starts it again
**[ours]**. Due steps sit in a heap so ``advance()`` costs nothing when nothing is due, even for
fleets of many thousand participants.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class ParticipantState(StrEnum):
    PENDING_BUILD = "pending_build"
    PENDING_SEND = "pending_send"
    WAITING_POR = "waiting_por"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"


class CampaignState(StrEnum):
    STARTED = "started"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"


class CampaignAction(StrEnum):
    STOP = "stop"
    PAUSE = "pause"
    RESTART = "restart"


class ParticipantAction(StrEnum):
    CANCEL = "cancel"
    HURRY = "hurry"
    RETRY = "retry"


class ErrorCode(IntEnum):
    """The non-zero ``code`` values of error replies **[ours]** (clients must not depend on them)."""

    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    NOT_FOUND = 404
    NOT_ALLOWED = 409


FINAL_STATES = frozenset({ParticipantState.FINISHED, ParticipantState.FAILED, ParticipantState.CANCELED})
NEXT_STEP = {
    ParticipantState.PENDING_BUILD: (ParticipantState.PENDING_SEND, "built"),
    ParticipantState.PENDING_SEND: (ParticipantState.WAITING_POR, "sent"),
}
CAMPAIGN_TRANSITIONS: dict[CampaignAction, tuple[frozenset[CampaignState], CampaignState]] = {
    CampaignAction.PAUSE: (frozenset({CampaignState.STARTED}), CampaignState.PAUSED),
    CampaignAction.RESTART: (frozenset({CampaignState.PAUSED, CampaignState.STOPPED}), CampaignState.STARTED),
    CampaignAction.STOP: (
        frozenset({CampaignState.STARTED, CampaignState.PAUSED, CampaignState.STOPPED}),
        CampaignState.STOPPED,
    ),
}
PARTICIPANT_ALLOWED: dict[ParticipantAction, frozenset[ParticipantState]] = {
    ParticipantAction.HURRY: frozenset({ParticipantState.PENDING_BUILD, ParticipantState.PENDING_SEND}),
    ParticipantAction.RETRY: frozenset({ParticipantState.FAILED, ParticipantState.CANCELED}),
    ParticipantAction.CANCEL: frozenset(
        {ParticipantState.PENDING_BUILD, ParticipantState.PENDING_SEND, ParticipantState.WAITING_POR}
    ),
}
FAILURE_REASONS = (
    "no proof of receipt before timeout",
    "SIM answered status word 6985 (conditions of use not satisfied)",
    "SMS-PP delivery failed: absent subscriber",
)


class YateOtaError(Exception):
    """A request the simulator refuses; becomes ``{"code": code, "message": message}``."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TraceEvent:
    """One line of a participant's trace: what happened, when, and the state it left."""

    time: float
    event: str
    state: ParticipantState


@dataclass
class Participant:
    """One SIM card in one campaign. ``due_at``: when its next step is due while the campaign runs."""

    participant_id: int
    campaign_id: int
    msisdn: str
    imsi: str
    state: ParticipantState
    attempts: int = 0
    last_update: float = 0.0
    error: str = ""
    due_at: float = 0.0
    events: list[TraceEvent] = field(default_factory=list)


@dataclass
class Campaign:
    """One RAM/RFM campaign; ``counts`` is kept up to date with every participant move."""

    campaign_id: int
    name: str
    type: str
    state: CampaignState
    start_time: float
    participant_ids: list[int] = field(default_factory=list)
    counts: Counter[ParticipantState] = field(default_factory=Counter)

    def unfinished(self) -> int:
        return sum(n for state, n in self.counts.items() if state not in FINAL_STATES)


class YateOtaFleet:
    """All campaigns and participants, the state machines, and the lifecycle."""

    def __init__(self, *, step_seconds: float, failure_rate: float, rng: random.Random) -> None:
        self.step_seconds = step_seconds
        self.failure_rate = failure_rate
        self.rng = rng
        self.campaigns: dict[int, Campaign] = {}
        self.participants: dict[int, Participant] = {}
        self._due: list[tuple[float, int]] = []

    # --- building ---------------------------------------------------------------------------------

    def add_campaign(self, campaign: Campaign) -> None:
        self.campaigns[campaign.campaign_id] = campaign

    def add_participant(self, participant: Participant) -> None:
        campaign = self.campaigns[participant.campaign_id]
        self.participants[participant.participant_id] = participant
        campaign.participant_ids.append(participant.participant_id)
        campaign.counts[participant.state] += 1
        self._schedule(participant, participant.due_at)

    def settle_all(self) -> None:
        """Finish every started campaign that has nothing left to do (after building or restoring)."""
        for campaign in self.campaigns.values():
            self._settle(campaign)

    # --- lifecycle --------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Perform every step due up to ``now``, in due-time order."""
        while self._due and self._due[0][0] <= now:
            due_at, participant_id = heapq.heappop(self._due)
            participant = self.participants[participant_id]
            if participant.due_at != due_at or not self._runs(participant):
                continue
            self._step(participant, due_at)
            if participant.state not in FINAL_STATES:
                self._schedule(participant, due_at + self.step_seconds)

    def _step(self, participant: Participant, when: float) -> None:
        if participant.state in NEXT_STEP:
            state, event = NEXT_STEP[participant.state]
            self._move(participant, state, when, event)
        elif self.rng.random() < self.failure_rate:
            participant.error = self.rng.choice(FAILURE_REASONS)
            self._move(participant, ParticipantState.FAILED, when, "failed")
        else:
            self._move(participant, ParticipantState.FINISHED, when, "por_received")

    def _move(self, participant: Participant, state: ParticipantState, when: float, event: str) -> None:
        campaign = self.campaigns[participant.campaign_id]
        campaign.counts[participant.state] -= 1
        campaign.counts[state] += 1
        if state is ParticipantState.WAITING_POR:
            participant.attempts += 1
        participant.state = state
        participant.last_update = when
        participant.events.append(TraceEvent(when, event, state))
        if state in FINAL_STATES:
            self._settle(campaign)

    def _settle(self, campaign: Campaign) -> None:
        if campaign.state is CampaignState.STARTED and campaign.unfinished() == 0:
            campaign.state = CampaignState.FINISHED

    def _reopen(self, campaign: Campaign) -> None:
        """A retried participant gives a finished campaign work again **[ours]**."""
        if campaign.state is CampaignState.FINISHED:
            campaign.state = CampaignState.STARTED

    def _runs(self, participant: Participant) -> bool:
        campaign = self.campaigns[participant.campaign_id]
        return campaign.state is CampaignState.STARTED and participant.state not in FINAL_STATES

    def _schedule(self, participant: Participant, due_at: float) -> None:
        participant.due_at = due_at
        if self._runs(participant):
            heapq.heappush(self._due, (due_at, participant.participant_id))

    # --- actions ----------------------------------------------------------------------------------

    def campaign(self, campaign_id: int) -> Campaign:
        if campaign_id not in self.campaigns:
            raise YateOtaError(ErrorCode.NOT_FOUND, f"campaign {campaign_id} does not exist")
        return self.campaigns[campaign_id]

    def participant(self, participant_id: int) -> Participant:
        if participant_id not in self.participants:
            raise YateOtaError(ErrorCode.NOT_FOUND, f"participant {participant_id} does not exist")
        return self.participants[participant_id]

    def act_on_campaign(self, campaign_id: int, action: CampaignAction, now: float) -> None:
        campaign = self.campaign(campaign_id)
        allowed, target = CAMPAIGN_TRANSITIONS[action]
        if campaign.state not in allowed:
            raise YateOtaError(
                ErrorCode.NOT_ALLOWED,
                f"cannot {action.value} campaign {campaign_id}: it is {campaign.state.value}",
            )
        campaign.state = target
        if target is CampaignState.STARTED:
            for participant_id in campaign.participant_ids:
                participant = self.participants[participant_id]
                if participant.state not in FINAL_STATES:
                    self._schedule(participant, now + self.step_seconds)
            self._settle(campaign)

    def act_on_participant(self, participant_id: int, action: ParticipantAction, now: float) -> None:
        participant = self.participant(participant_id)
        if participant.state not in PARTICIPANT_ALLOWED[action]:
            raise YateOtaError(
                ErrorCode.NOT_ALLOWED,
                f"cannot {action.value} participant {participant_id}: it is {participant.state.value}",
            )
        if action is ParticipantAction.HURRY:
            state, _ = NEXT_STEP[participant.state]
            self._move(participant, state, now, "hurry")
        elif action is ParticipantAction.RETRY:
            participant.error = ""
            self._move(participant, ParticipantState.PENDING_BUILD, now, "retry")
            self._reopen(self.campaigns[participant.campaign_id])
        else:
            self._move(participant, ParticipantState.CANCELED, now, "cancel")
        if participant.state not in FINAL_STATES:
            self._schedule(participant, now + self.step_seconds)

    def participants_of(self, campaign_id: int, state: ParticipantState | None) -> list[Participant]:
        """The campaign's participants in id order, optionally only those in ``state``."""
        ids = sorted(self.campaign(campaign_id).participant_ids)
        chosen = (self.participants[pid] for pid in ids)
        return [p for p in chosen if state is None or p.state is state]

    # --- persistence ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "campaigns": [_campaign_data(c) for c in self.campaigns.values()],
            "participants": [_participant_data(p) for p in self.participants.values()],
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.campaigns.clear()
        self.participants.clear()
        self._due.clear()
        for item in data["campaigns"]:
            self.add_campaign(
                Campaign(
                    campaign_id=int(item["campaign_id"]),
                    name=str(item["campaign"]),
                    type=str(item["type"]),
                    state=CampaignState(item["state"]),
                    start_time=float(item["start_time"]),
                )
            )
        for item in data["participants"]:
            self.add_participant(_participant_from(item))


def _campaign_data(campaign: Campaign) -> dict[str, Any]:
    counts = {state.value: campaign.counts[state] for state in ParticipantState}
    return {
        "campaign_id": campaign.campaign_id,
        "campaign": campaign.name,
        "type": campaign.type,
        "state": campaign.state.value,
        "start_time": campaign.start_time,
        "participants": len(campaign.participant_ids),
        **counts,
    }


def _participant_data(participant: Participant) -> dict[str, Any]:
    return {
        "participant_id": participant.participant_id,
        "campaign_id": participant.campaign_id,
        "msisdn": participant.msisdn,
        "imsi": participant.imsi,
        "state": participant.state.value,
        "attempts": participant.attempts,
        "last_update": participant.last_update,
        "error": participant.error,
        "due_at": participant.due_at,
        "events": [{"time": e.time, "event": e.event, "state": e.state.value} for e in participant.events],
    }


def _participant_from(item: dict[str, Any]) -> Participant:
    return Participant(
        participant_id=int(item["participant_id"]),
        campaign_id=int(item["campaign_id"]),
        msisdn=str(item["msisdn"]),
        imsi=str(item["imsi"]),
        state=ParticipantState(item["state"]),
        attempts=int(item["attempts"]),
        last_update=float(item["last_update"]),
        error=str(item["error"]),
        due_at=float(item["due_at"]),
        events=[
            TraceEvent(float(e["time"]), str(e["event"]), ParticipantState(e["state"]))
            for e in item["events"]
        ],
    )
