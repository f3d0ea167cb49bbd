"""The SMS gateway simulator's memory and how it moves on in simulated time: SIM ports, accepted
messages with their per-port send queues, tasks, delivery reports and incoming SMS.

Kept apart from the HTTP layer (``sms_gateway.py``) so the lifecycle rules read as plain code and
persist as plain data: each port sends one message per ``1 / send_rate_per_port`` simulated seconds;
a message's fate (sent or failed, and the failure's status code) is drawn from the seeded RNG when it
is accepted, so runs repeat whatever the timing of requests; ``ref_id`` counts segments mod 256 per
port; a requested status report arrives ``delivery_delay_s`` after sending.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

#: slack when comparing simulated times that were built by repeated addition
EPSILON = 1e-6


class MessageStatus(StrEnum):
    SENDING = "SENDING"
    SENT_OK = "SENT_OK"
    FAILED = "FAILED"
    DELIVERED = "DELIVERED"


class PortState(StrEnum):
    """A port's ``reg`` value in ``get_port_info``."""

    REGISTER_OK = "REGISTER_OK"
    NO_SIM = "NO_SIM"
    POWER_OFF = "POWER_OFF"


@dataclass(slots=True)
class GatewayPort:
    """One SIM port. ``free_at`` is when it can start its next message; ``next_ref_id`` its next ref."""

    port: int
    has_sim: bool
    imei: str
    powered: bool = True
    slot: int = 1
    type: str = "LTE"
    smsc: str = "+8613800100500"
    next_ref_id: int = 0
    free_at: float = 0.0

    @property
    def reg(self) -> PortState:
        if not self.powered:
            return PortState.POWER_OFF
        return PortState.REGISTER_OK if self.has_sim else PortState.NO_SIM

    @property
    def imsi(self) -> str:
        return f"46000464214{self.slot}{self.port:03d}" if self.has_sim else ""

    @property
    def iccid(self) -> str:
        return f"89860{self.slot}{self.port:014d}" if self.has_sim else ""

    def info(self) -> dict[str, Any]:
        return {"port": self.port, "type": self.type, "imei": self.imei, "imsi": self.imsi,
                "iccid": self.iccid, "smsc": self.smsc, "reg": self.reg.value}


@dataclass(frozen=True)
class MessageDraft:
    """One message of a ``send_sms`` request, text already substituted and measured."""

    number: str
    user_id: int | None
    text: str
    encoding: str
    count: int


@dataclass(slots=True)
class GatewayMessage:
    """One accepted message. ``time`` is what results show: acceptance, then sending (or abandon)."""

    index: int
    task_id: int
    user_id: int | None
    number: str
    port: int
    text: str
    encoding: str
    count: int
    status_report: bool
    accepted_at: float
    fails: bool
    failure_code: int
    status: MessageStatus = MessageStatus.SENDING
    time: float = 0.0
    sent_at: float | None = None
    succ_count: int = 0
    ref_id: int | None = None
    imsi: str = ""
    reported_at: float | None = None
    abandoned: str = ""  # why it never went out: "stopped" (stop_sms) or "port-lost"


@dataclass(slots=True)
class GatewayTask:
    """One ``send_sms`` request: its messages are ``messages[first_index : first_index + count]``."""

    task_id: int
    ports: list[int]
    first_index: int
    count: int
    accepted_at: float
    stopped: bool = False


@dataclass(slots=True)
class DeliverReport:
    message_index: int
    port: int
    number: str
    time: float
    ref_id: int
    status_code: int
    imsi: str


@dataclass(slots=True)
class IncomingMessage:
    incoming_sms_id: int
    port: int
    number: str
    smsc: str
    timestamp: float
    text: str
    imsi: str
    read: bool = False


@dataclass(frozen=True)
class MessageFilter:
    """The filters of the query endpoints; ``None`` means "any"; times are inclusive bounds."""

    numbers: frozenset[str] | None = None
    ports: frozenset[int] | None = None
    user_ids: frozenset[int] | None = None
    time_after: float | None = None
    time_before: float | None = None

    def matches(self, *, number: str, port: int, time: float, user_id: int | None = None) -> bool:
        return (
            (self.numbers is None or number in self.numbers)
            and (self.ports is None or port in self.ports)
            and (self.user_ids is None or user_id in self.user_ids)
            and (self.time_after is None or int(time) >= self.time_after)
            and (self.time_before is None or int(time) <= self.time_before)
        )


@dataclass
class AdvanceEvents:
    """What happened during one ``advance``: the pushes the gateway makes."""

    sent: list[GatewayMessage] = field(default_factory=list)
    reports: list[DeliverReport] = field(default_factory=list)


class GatewayStore:
    """All of one gateway's state, its send queues and its clockwork."""

    def __init__(
        self,
        *,
        port_count: int,
        unregistered_ports: Iterable[int],
        send_rate_per_port: float,
        delivery_delay_s: float,
        failure_rate: float,
        rng: random.Random,
    ) -> None:
        missing = frozenset(unregistered_ports)
        self._interval = 1.0 / send_rate_per_port
        self._delivery_delay_s = delivery_delay_s
        self._failure_rate = failure_rate
        self._rng = rng
        self.ports = {n: GatewayPort(port=n, has_sim=n not in missing, imei=f"8690710300{n:05d}")
                      for n in range(port_count)}
        self.messages: list[GatewayMessage] = []
        self.tasks: dict[int, GatewayTask] = {}
        self.reports: list[DeliverReport] = []
        self.incoming: list[IncomingMessage] = []
        self._queues: dict[int, deque[int]] = {n: deque() for n in self.ports}
        self._awaiting_report: list[tuple[float, int]] = []
        self._by_user_id: dict[int, list[int]] = {}

    # --- sending --------------------------------------------------------------------------------

    def available_ports(self, requested: Sequence[int] | None) -> list[int]:
        """The registered ports among ``requested`` (all ports when ``None``), in order."""
        wanted = self.ports if requested is None else sorted(set(requested))
        return [n for n in wanted if n in self.ports and self.ports[n].reg is PortState.REGISTER_OK]

    def accept(
        self, drafts: Sequence[MessageDraft], *, ports: Sequence[int], status_report: bool, now: float
    ) -> GatewayTask:
        """Queue ``drafts`` as one new task, round robin over ``ports`` (which must be available)."""
        task = GatewayTask(task_id=len(self.tasks) + 1, ports=list(ports), first_index=len(self.messages),
                           count=len(drafts), accepted_at=now)
        self.tasks[task.task_id] = task
        for position, draft in enumerate(drafts):
            port = ports[position % len(ports)]
            fails = self._rng.random() < self._failure_rate
            message = GatewayMessage(
                index=len(self.messages), task_id=task.task_id, user_id=draft.user_id,
                number=draft.number, port=port, text=draft.text, encoding=draft.encoding,
                count=draft.count, status_report=status_report, accepted_at=now, fails=fails,
                failure_code=self._failure_code() if fails else 0, time=now, imsi=self.ports[port].imsi,
            )
            self._remember(message)
        return task

    def _failure_code(self) -> int:
        """A delivery status code for a failed message: permanent (64-255) three times in four."""
        if self._rng.random() < 0.75:
            return self._rng.randint(64, 255)
        return self._rng.randint(32, 63)

    def _remember(self, message: GatewayMessage) -> None:
        self.messages.append(message)
        if message.user_id is not None:
            self._by_user_id.setdefault(message.user_id, []).append(message.index)
        if message.status is MessageStatus.SENDING:
            self._queues[message.port].append(message.index)
        elif message.status_report and message.sent_at is not None and message.reported_at is None:
            heapq.heappush(self._awaiting_report, (message.sent_at + self._delivery_delay_s, message.index))

    def in_queue(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def advance(self, now: float) -> AdvanceEvents:
        """Send what each port has had time to send by ``now``, then file the reports that are due."""
        events = AdvanceEvents()
        for port in self.ports.values():
            queue = self._queues[port.port]
            while queue:
                message = self.messages[queue[0]]
                finish = max(port.free_at, message.accepted_at) + self._interval
                if finish > now + EPSILON:
                    break
                queue.popleft()
                port.free_at = finish
                self._send(message, port, finish)
                events.sent.append(message)
        while self._awaiting_report and self._awaiting_report[0][0] <= now + EPSILON:
            due, index = heapq.heappop(self._awaiting_report)
            events.reports.append(self._report(self.messages[index], due))
        events.sent.sort(key=lambda message: (message.time, message.index))
        return events

    def _send(self, message: GatewayMessage, port: GatewayPort, at: float) -> None:
        message.time = message.sent_at = at
        message.ref_id = port.next_ref_id
        message.imsi = port.imsi
        port.next_ref_id = (port.next_ref_id + message.count) % 256
        message.status = MessageStatus.FAILED if message.fails else MessageStatus.SENT_OK
        message.succ_count = 0 if message.fails else message.count
        if message.status_report:
            heapq.heappush(self._awaiting_report, (at + self._delivery_delay_s, message.index))

    def _report(self, message: GatewayMessage, at: float) -> DeliverReport:
        message.reported_at = at
        if not message.fails:
            message.status = MessageStatus.DELIVERED
        report = DeliverReport(message_index=message.index, port=message.port, number=message.number,
                               time=at, ref_id=message.ref_id or 0, status_code=message.failure_code,
                               imsi=message.imsi)
        self.reports.append(report)
        return report

    # --- control --------------------------------------------------------------------------------

    def stop_task(self, task_id: int, now: float) -> bool:
        """Abandon the task's queued messages; ``False`` when the task is unknown."""
        task = self.tasks.get(task_id)
        if task is None:
            return False
        task.stopped = True
        queued = self.messages[task.first_index : task.first_index + task.count]
        self._abandon([m for m in queued if m.status is MessageStatus.SENDING], "stopped", now)
        return True

    def lose_queue(self, port: int, now: float) -> None:
        """The port went off, was reset or changed SIM: what it had queued fails."""
        self._abandon([self.messages[index] for index in self._queues[port]], "port-lost", now)

    def _abandon(self, messages: Sequence[GatewayMessage], reason: str, now: float) -> None:
        for message in messages:
            message.status, message.time, message.abandoned = MessageStatus.FAILED, now, reason
        for port in {message.port for message in messages}:
            self._queues[port] = deque(i for i in self._queues[port]
                                       if self.messages[i].status is MessageStatus.SENDING)

    def receive(self, port: int, number: str, text: str, now: float) -> IncomingMessage:
        """An SMS arrives on ``port`` from ``number``."""
        source = self.ports[port]
        message = IncomingMessage(incoming_sms_id=len(self.incoming) + 1, port=port, number=number,
                                  smsc=source.smsc, timestamp=now, text=text, imsi=source.imsi)
        self.incoming.append(message)
        return message

    # --- queries --------------------------------------------------------------------------------

    def results(self, wanted: MessageFilter) -> list[GatewayMessage]:
        """Accepted messages matching ``wanted``, in acceptance order."""
        if wanted.user_ids is not None:
            indices = sorted(i for user_id in wanted.user_ids for i in self._by_user_id.get(user_id, ()))
            candidates: Iterable[GatewayMessage] = (self.messages[i] for i in indices)
        else:
            candidates = self.messages
        return [m for m in candidates
                if wanted.matches(number=m.number, port=m.port, time=m.time, user_id=m.user_id)]

    def deliver_reports(self, wanted: MessageFilter) -> list[DeliverReport]:
        return [r for r in self.reports if wanted.matches(number=r.number, port=r.port, time=r.time)]

    def incoming_messages(self, *, unread_only: bool) -> list[IncomingMessage]:
        """Received SMS (only the unread ones, which then count as read, when ``unread_only``)."""
        listed = [m for m in self.incoming if not (unread_only and m.read)]
        for message in listed:
            message.read = message.read or unread_only
        return listed

    # --- persistence ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "ports": [{**asdict(port), **port.info()} for port in self.ports.values()],
            "messages": [asdict(message) for message in self.messages],
            "tasks": [asdict(task) for task in self.tasks.values()],
            "deliver_reports": [asdict(report) for report in self.reports],
            "incoming": [asdict(message) for message in self.incoming],
        }

    def restore(self, data: dict[str, Any]) -> None:
        port_fields = set(GatewayPort.__dataclass_fields__)
        for item in data["ports"]:
            port = GatewayPort(**{k: v for k, v in item.items() if k in port_fields})
            self.ports[port.port] = port
            self._queues[port.port] = deque()
        self.messages, self._awaiting_report, self._by_user_id = [], [], {}
        for item in data["messages"]:
            self._remember(GatewayMessage(**{**item, "status": MessageStatus(item["status"])}))
        self.tasks = {item["task_id"]: GatewayTask(**item) for item in data["tasks"]}
        self.reports = [DeliverReport(**item) for item in data["deliver_reports"]]
        self.incoming = [IncomingMessage(**item) for item in data["incoming"]]
