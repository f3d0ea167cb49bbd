"""Registered callbacks of the IoT campaign manager sandbox: which gateway transitions fire which
callback, the queue of transitions still to come for campaigns that have callbacks, and the
fire-and-forget delivery of the JSON POSTs to the notification destinations.

Only campaigns with a callback whose destination id is known (option ``destinations``) are driven
through ``TransitionQueue``: their transitions must happen at their moment to be announced. All other
campaigns stay purely lazy (``agent``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler.model import CallbackKind
from reconciler.sandbox.iot_campaigns.agent import TERMINAL_STATES, GatewayState
from reconciler.sandbox.iot_campaigns.model import CallbackRegistration

_DOWNLOAD_STATES = frozenset(
    {GatewayState.DOWNLOADING, GatewayState.DOWNLOAD_COMPLETE, GatewayState.DOWNLOAD_FAILED}
)
_EXECUTION_STATES = frozenset(
    {GatewayState.EXECUTING, GatewayState.EXECUTION_COMPLETE, GatewayState.EXECUTION_FAILED}
)
DELIVERY_LOG_SIZE = 200


def fired_callbacks(
    callbacks: Mapping[CallbackKind, CallbackRegistration], entered: GatewayState
) -> list[CallbackRegistration]:
    """The callbacks a gateway entering ``entered`` fires.

    state-change: every transition (only ``trackedStates`` when given); download-progress /
    execution-progress: entering a download / execution state; completed: reaching a terminal state.
    Wake-up fires on Notify Gateway, not on transitions.
    """
    fired = []
    for kind, registration in callbacks.items():
        match kind:
            case CallbackKind.STATE_CHANGE:
                hit = not registration.tracked_states or entered.value in registration.tracked_states
            case CallbackKind.DOWNLOAD_PROGRESS:
                hit = entered in _DOWNLOAD_STATES
            case CallbackKind.EXECUTION_PROGRESS:
                hit = entered in _EXECUTION_STATES
            case CallbackKind.COMPLETED:
                hit = entered in TERMINAL_STATES
            case CallbackKind.WAKE_UP:
                hit = False
        if hit:
            fired.append(registration)
    return fired


@dataclass(order=True, frozen=True)
class QueuedTransition:
    """A gateway transition due at ``due``; stale once the gateway's version or the campaign's run
    epoch moved on."""

    due: float
    seq: int
    campaign_id: str = field(compare=False)
    gateway_id: str = field(compare=False)
    version: int = field(compare=False)
    epoch: int = field(compare=False)


class TransitionQueue:
    """A min-heap of upcoming transitions of gateways in campaigns with callbacks."""

    def __init__(self) -> None:
        self._heap: list[QueuedTransition] = []
        self._seq = itertools.count()

    def push(self, due: float, campaign_id: str, gateway_id: str, *, version: int, epoch: int) -> None:
        heapq.heappush(self._heap, QueuedTransition(due, next(self._seq), campaign_id, gateway_id, version, epoch))

    def pop_due(self, now: float) -> QueuedTransition | None:
        if self._heap and self._heap[0].due <= now:
            return heapq.heappop(self._heap)
        return None

    def clear(self) -> None:
        self._heap.clear()


@dataclass(frozen=True)
class Delivery:
    url: str
    payload: Mapping[str, Any]


class CallbackDispatcher:
    """POSTs callback payloads in order from one background task; failures are counted, not raised."""

    def __init__(self, *, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._pending: deque[Delivery] = deque()
        self._worker: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.log: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_SIZE)
        self._epoch = 0  # moved on by reset(): a delivery begun before it is not counted after it

    def enqueue(self, url: str, payload: Mapping[str, Any]) -> None:
        self._pending.append(Delivery(url, payload))

    def flush(self) -> None:
        """Start delivering if anything is pending and an event loop runs (else wait for the next call)."""
        if not self._pending or (self._worker is not None and not self._worker.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._worker = loop.create_task(self._deliver_pending())

    async def _deliver_pending(self) -> None:
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            while self._pending:
                delivery = self._pending.popleft()
                await self._deliver(client, delivery)

    async def _deliver(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        entry: dict[str, Any] = {"url": delivery.url, "payload": dict(delivery.payload)}
        epoch = self._epoch
        try:
            reply = await client.post(delivery.url, json=dict(delivery.payload))
        except httpx.HTTPError as exc:
            if epoch != self._epoch:
                return
            self.failed += 1
            entry["error"] = type(exc).__name__
        else:
            if epoch != self._epoch:
                return
            ok = reply.is_success
            self.sent += ok
            self.failed += not ok
            entry["status"] = reply.status_code
        self.log.append(entry)

    def reset(self) -> None:
        """Forget every delivery, the one in flight included (its reply, if it comes, is not counted)."""
        self._epoch += 1
        self._pending.clear()
        self.sent = self.failed = 0
        self.log.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed, "pending": len(self._pending), "log": list(self.log)}

    def restore(self, data: Mapping[str, Any]) -> None:
        self.reset()
        self.sent = int(data.get("sent", 0))
        self.failed = int(data.get("failed", 0))
        self.log.extend(data.get("log", []))
