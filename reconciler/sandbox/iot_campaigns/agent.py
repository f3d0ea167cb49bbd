"""The simulated on-gateway agent of the IoT campaign manager sandbox, as pure functions of time.

A gateway's state is never advanced by a background loop: it is computed from a checkpoint (a state
and the simulated moment it was entered), the gateway's schedule windows and the step length. So a
campaign of 10,000 gateways costs nothing until one of them is read, and reading one costs at most
the dozen transitions of its lifecycle.

Lifecycle (each step takes ``step_s`` seconds)::

    INSTANTIATED -> INVENTORY_UP_TO_DATE -> SCHEDULED_DOWNLOAD (download window set, not yet open)
                                            | WAITING_FOR_DOWNLOAD
      -> DOWNLOADING -> DOWNLOAD_COMPLETE | DOWNLOAD_FAILED
      -> EXECUTING -> EXECUTION_COMPLETE | EXECUTION_FAILED
      -> ACTIVATING -> ACTIVATION_COMPLETE (the gateway is then closed) | ACTIVATION_FAILED

Entering DOWNLOADING, EXECUTING and ACTIVATING waits for the matching window to be open. A window
that has already closed when the gateway gets there blocks it where it is (SCHEDULED_DOWNLOAD,
WAITING_FOR_DOWNLOAD, DOWNLOAD_COMPLETE or EXECUTION_COMPLETE) until a new window is scheduled.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never


class GatewayState(StrEnum):
    INSTANTIATED = "INSTANTIATED"
    INVENTORY_UP_TO_DATE = "INVENTORY_UP_TO_DATE"
    SCHEDULED_DOWNLOAD = "SCHEDULED_DOWNLOAD"
    WAITING_FOR_DOWNLOAD = "WAITING_FOR_DOWNLOAD"
    DOWNLOADING = "DOWNLOADING"
    DOWNLOAD_COMPLETE = "DOWNLOAD_COMPLETE"
    DOWNLOAD_FAILED = "DOWNLOAD_FAILED"
    EXECUTING = "EXECUTING"
    EXECUTION_COMPLETE = "EXECUTION_COMPLETE"
    EXECUTION_FAILED = "EXECUTION_FAILED"
    ACTIVATING = "ACTIVATING"
    ACTIVATION_COMPLETE = "ACTIVATION_COMPLETE"
    ACTIVATION_FAILED = "ACTIVATION_FAILED"


class Window(StrEnum):
    """The three schedulable windows; the value is the word in the URL (``scheduled-<value>``)."""

    DOWNLOAD = "download"
    EXECUTION = "execution"
    ACTIVATION = "activation"


class Phase(StrEnum):
    """The steps that can fail (each one draws once per gateway and campaign)."""

    DOWNLOAD = "download"
    EXECUTION = "execution"
    ACTIVATION = "activation"


FAILED_STATES = frozenset(
    {GatewayState.DOWNLOAD_FAILED, GatewayState.EXECUTION_FAILED, GatewayState.ACTIVATION_FAILED}
)
TERMINAL_STATES = FAILED_STATES | {GatewayState.ACTIVATION_COMPLETE}

#: the success path in order, for "has reached" counts
SUCCESS_PATH = (
    GatewayState.INSTANTIATED,
    GatewayState.INVENTORY_UP_TO_DATE,
    GatewayState.SCHEDULED_DOWNLOAD,
    GatewayState.WAITING_FOR_DOWNLOAD,
    GatewayState.DOWNLOADING,
    GatewayState.DOWNLOAD_COMPLETE,
    GatewayState.EXECUTING,
    GatewayState.EXECUTION_COMPLETE,
    GatewayState.ACTIVATING,
    GatewayState.ACTIVATION_COMPLETE,
)


@dataclass(frozen=True)
class Span:
    """A schedule window [begin, end) in epoch seconds."""

    begin: float
    end: float

    def earliest_inside(self, moment: float) -> float | None:
        """The first moment at or after ``moment`` inside the window; ``None`` once it has closed."""
        start = max(moment, self.begin)
        return start if start < self.end else None


@dataclass(frozen=True)
class Checkpoint:
    """A gateway's state and the simulated moment it entered it."""

    state: GatewayState
    entered: float


FailureDraw = Callable[[Phase], bool]


def failure_draw(*, rate: float, seed: int, campaign_id: str, gateway_id: str) -> FailureDraw:
    """A repeatable draw per (seed, campaign, gateway, phase): the same gateway fails the same way
    however often, and in whatever order, its state is computed."""

    def fails(phase: Phase) -> bool:
        if rate <= 0:
            return False
        return random.Random(f"{seed}:{campaign_id}:{gateway_id}:{phase.value}").random() < rate

    return fails


def next_transition(
    at: Checkpoint, windows: Mapping[Window, Span], step_s: float, fails: FailureDraw
) -> Checkpoint | None:
    """The next state and when it is entered; ``None`` when terminal or blocked by a closed window."""
    due = at.entered + step_s
    state = at.state
    match state:
        case GatewayState.INSTANTIATED:
            return Checkpoint(GatewayState.INVENTORY_UP_TO_DATE, due)
        case GatewayState.INVENTORY_UP_TO_DATE:
            download = windows.get(Window.DOWNLOAD)
            if download is not None and due < download.begin:
                return Checkpoint(GatewayState.SCHEDULED_DOWNLOAD, due)
            return Checkpoint(GatewayState.WAITING_FOR_DOWNLOAD, due)
        case GatewayState.SCHEDULED_DOWNLOAD | GatewayState.WAITING_FOR_DOWNLOAD:
            return _gated(GatewayState.DOWNLOADING, due, windows.get(Window.DOWNLOAD))
        case GatewayState.DOWNLOADING:
            failed = fails(Phase.DOWNLOAD)
            return Checkpoint(GatewayState.DOWNLOAD_FAILED if failed else GatewayState.DOWNLOAD_COMPLETE, due)
        case GatewayState.DOWNLOAD_COMPLETE:
            return _gated(GatewayState.EXECUTING, due, windows.get(Window.EXECUTION))
        case GatewayState.EXECUTING:
            failed = fails(Phase.EXECUTION)
            return Checkpoint(GatewayState.EXECUTION_FAILED if failed else GatewayState.EXECUTION_COMPLETE, due)
        case GatewayState.EXECUTION_COMPLETE:
            return _gated(GatewayState.ACTIVATING, due, windows.get(Window.ACTIVATION))
        case GatewayState.ACTIVATING:
            failed = fails(Phase.ACTIVATION)
            return Checkpoint(GatewayState.ACTIVATION_FAILED if failed else GatewayState.ACTIVATION_COMPLETE, due)
        case (
            GatewayState.ACTIVATION_COMPLETE
            | GatewayState.DOWNLOAD_FAILED
            | GatewayState.EXECUTION_FAILED
            | GatewayState.ACTIVATION_FAILED
        ):
            return None
        case _:
            assert_never(state)


def _gated(target: GatewayState, due: float, window: Span | None) -> Checkpoint | None:
    if window is None:
        return Checkpoint(target, due)
    start = window.earliest_inside(due)
    return None if start is None else Checkpoint(target, start)


def evolve(
    at: Checkpoint, until: float, windows: Mapping[Window, Span], step_s: float, fails: FailureDraw
) -> Checkpoint:
    """Where a gateway that was at ``at`` stands at ``until``."""
    while True:
        following = next_transition(at, windows, step_s, fails)
        if following is None or following.entered > until:
            return at
        at = following


def has_reached(state: GatewayState, milestone: GatewayState) -> bool:
    """True when ``state`` is ``milestone`` or lies after it on the success path."""
    if state in FAILED_STATES:
        return False
    return SUCCESS_PATH.index(state) >= SUCCESS_PATH.index(milestone)


def step_fraction(at: Checkpoint, now: float, step_s: float) -> float:
    """How far (0..1) the gateway is through the step of its current state."""
    if step_s <= 0:
        return 1.0
    return min(max((now - at.entered) / step_s, 0.0), 1.0)


def downloaded_bytes(at: Checkpoint, now: float, step_s: float, total: int) -> int:
    """Bytes of a package of ``total`` bytes the gateway holds in its current state."""
    state = at.state
    if state is GatewayState.DOWNLOADING:
        return int(total * step_fraction(at, now, step_s))
    if state is GatewayState.DOWNLOAD_FAILED:
        return total // 2
    return total if has_reached(state, GatewayState.DOWNLOAD_COMPLETE) or state in FAILED_STATES else 0


def execution_percent(at: Checkpoint, now: float, step_s: float) -> int | None:
    """Execution progress in percent, or ``None`` before execution started."""
    state = at.state
    if state is GatewayState.EXECUTING:
        return int(99 * step_fraction(at, now, step_s))
    if state is GatewayState.EXECUTION_FAILED:
        return 50
    if has_reached(state, GatewayState.EXECUTION_COMPLETE) or state is GatewayState.ACTIVATION_FAILED:
        return 100
    return None
