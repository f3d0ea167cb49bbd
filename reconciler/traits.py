"""What the planner may assume about a backend type, as data (``BackendTraits``).

Each adapter declares its traits; they reach the planner inside ``PlanInput``, so the planner never imports
an adapter and never spells a backend's state names itself: the backend says which of its campaign states
means started or finished, which fields cannot change while it runs and which it cannot read back. This
module is pure data (no I/O), importable by the planner and by every adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.actions import Verb


@dataclass(frozen=True)
class Lifecycle:
    """The state names of one backend type, as it spells them ("" where it has no such state).

    Campaign states: ``created`` (new, not yet started), ``started``, ``paused``, ``stopped``, ``finished``
    (final: no action is accepted any more). Member states (the gateways or SIM cards a campaign reaches):
    ``member_succeeded`` (done with the update), ``member_failed`` (failed for good, unless retried),
    ``member_final`` (nothing more can be done to it), ``member_hurriable`` (pending, may be sped up), and
    ``member_waiting``: per schedule window (``download``, ``execution``, ``activation``), the states in which
    a member has not begun the step that window gates. Any other string is opaque to the planner.
    """

    created: str = ""
    started: str = ""
    paused: str = ""
    stopped: str = ""
    finished: str = ""
    member_succeeded: frozenset[str] = frozenset()
    member_failed: frozenset[str] = frozenset()
    member_final: frozenset[str] = frozenset()
    member_hurriable: frozenset[str] = frozenset()
    member_waiting: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def named(self) -> frozenset[str]:
        """The campaign states this lifecycle names (the others are opaque)."""
        return frozenset(s for s in (self.created, self.started, self.paused, self.stopped, self.finished) if s)


@dataclass(frozen=True)
class BackendTraits:
    """What the planner needs to know about a backend type, as data.

    - ``type``: the ``Backend.spec.type`` it describes (for messages).
    - ``verbs``: the writes this backend supports (which planning rules apply).
    - ``lifecycle``: its campaign and member state names.
    - ``replace_fields``: declared fields whose change cannot be applied in place outside ``editable_states``
      (the planner plans a replace, gated by ``--allow-replace``).
    - ``editable_states``: campaign states in which an in-place edit is accepted. A state the lifecycle does
      not name is opaque and treated as editable (the backend decides).
    - ``approval_states``: states that need an approve before start.
    - ``write_only``: declared fields the backend cannot read back: the planner compares them with what
      the state store remembers applying (without a store they are applied again, or reported unknown).
    - ``sms_queryable``: the backend can be asked what became of a message sent with our key.
    """

    type: str
    verbs: frozenset[Verb] = frozenset()
    lifecycle: Lifecycle = Lifecycle()
    replace_fields: frozenset[str] = frozenset()
    editable_states: frozenset[str] = frozenset()
    approval_states: frozenset[str] = frozenset()
    write_only: frozenset[str] = frozenset()
    sms_queryable: bool = False

    def refuses_edits(self, state: str) -> bool:
        """Whether a campaign in ``state`` refuses an in-place edit of a ``replace_fields`` field."""
        named = self.lifecycle.named() | self.approval_states | self.editable_states
        return state in named and state not in self.editable_states
