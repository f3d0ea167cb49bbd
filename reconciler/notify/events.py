"""Every event of one pass, derived from what it produced: pure (no I/O, no clock: the pass's time comes in
as data), so each rule is tested as data in, events out. Who gets which event is decided later, by the
Notifications (``enqueue``). The rules: failures (``failures``), campaign progress (``campaign_events``),
drift (``drift``); ``event`` says how ids make one event of an occurrence seen by several passes."""

from __future__ import annotations

from reconciler.notify.campaign_events import campaign_events
from reconciler.notify.drift import drift_events
from reconciler.notify.event import Found, PassEvents
from reconciler.notify.facts import PassFacts
from reconciler.notify.failures import action_failures, pass_failures


def derive_events(facts: PassFacts) -> PassEvents:
    """The events of one pass and the conditions it saw end."""
    found = Found()
    pass_failures(facts, found)
    action_failures(facts, found)
    if facts.plan is not None:
        campaign_events(facts, found)  # before drift: a halt's stop or a wave's gateways are not drift
        drift_events(facts, found)
    return found.freeze()
