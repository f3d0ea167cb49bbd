"""The event: one thing worth telling a person, with the idempotency key a receiver dedupes on.

Two sorts (``reconciler.notify.events`` derives both from a pass):

- an *occurrence* (a wave advanced, a campaign completed, drift was corrected, more SMS outcomes became
  unknown) has an id made of what happened (a hash of the event, the campaign, the remote campaign id,
  the wave...), so the same occurrence seen by two passes is one event: the outbox keeps one row per id;
- a *condition* (actions failing, a backend unreadable, a rollout halted, gateways stranded) holds over
  many passes. It carries a ``subject``; the outbox sends it once when it starts and not again while it
  holds, and a pass that looked and found it over lists the subject in ``cleared``, so the next time it
  starts is a new event.

Every list in an event is bounded and every message cut short; phone numbers in a message are cut to their
last four digits (``***4567``) and SMS events carry counts only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.masking import mask_numbers_in
from reconciler.model import Kind, NotificationEvent

MAX_LISTED = 10  # items of a list inside one event (actions, problems, gateways)
MAX_MESSAGE = 300  # characters of one message inside an event


@dataclass(frozen=True)
class Event:
    """One thing worth telling; ``subject`` is set for a condition (see the module docstring)."""

    kind: NotificationEvent
    id: str
    summary: str
    campaign: str | None = None
    backend: str | None = None
    resource: str = ""
    severity: str = "info"  # info | warning | error
    details: Mapping[str, Any] = field(default_factory=dict)
    subject: str = ""

    def as_json(self, *, occurred_at: str, revision: str = "") -> dict[str, Any]:
        return {"id": self.id, "event": self.kind.value, "severity": self.severity, "summary": self.summary,
                "campaign": self.campaign, "backend": self.backend, "resource": self.resource,
                "details": dict(self.details), "occurredAt": occurred_at, "revision": revision}


@dataclass(frozen=True)
class PassEvents:
    """The events of one pass and the conditions it saw end."""

    events: tuple[Event, ...] = ()
    cleared: frozenset[str] = frozenset()


@dataclass
class Found:
    """Collects events while the rules run: one event per id and per subject."""

    events: dict[str, Event] = field(default_factory=dict)
    cleared: set[str] = field(default_factory=set)
    halted: set[str] = field(default_factory=set)  # campaigns whose rollout is halted in this pass
    advanced: set[str] = field(default_factory=set)  # campaigns whose rollout wave advanced in this pass

    def add(self, event: Event) -> None:
        self.events.setdefault(event.subject or event.id, event)

    def clear(self, subject: str) -> None:
        self.cleared.add(subject)

    def freeze(self) -> PassEvents:
        subjects = {e.subject for e in self.events.values() if e.subject}
        ordered = sorted(self.events.values(), key=lambda e: (e.kind.value, e.resource, e.id))
        return PassEvents(tuple(ordered), frozenset(self.cleared - subjects))


def event_id(*parts: object) -> str:
    """The idempotency key of an occurrence: a hash of what identifies it (32 hex digits)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:32]


def condition_id(kind: NotificationEvent, subject: str, now: datetime) -> str:
    """A condition's event id: its subject and the time of the pass that saw it start."""
    return event_id(kind.value, subject, now.isoformat())


def short(text: str, limit: int = MAX_MESSAGE) -> str:
    """A message as an event carries it: numbers masked, at most ``limit`` characters."""
    text = mask_numbers_in(text)  # an event goes to chat rooms and third-party services; a number must not
    return text if len(text) <= limit else text[: limit - 3] + "..."


def campaign_of(resource: str) -> str | None:
    """``fw`` for ``Campaign/fw``; None for any other resource."""
    prefix = f"{Kind.CAMPAIGN.value}/"
    return resource[len(prefix):] if resource.startswith(prefix) else None
