"""Planning for SMS sends (any backend whose campaigns are SMS): whether to send now, how much, and what
the ledger says so far.

- active and inside its sending window (active period, outside quiet hours): one ``send-sms`` action
  with the number to send and the time it takes at the declared rate; messages whose fate was lost
  (``dispatching``) are resolved first by the same action;
- active but held (quiet hours, outside the active period): nothing, and the plan says until when;
- paused: nothing new is sent, and queued gateway tasks are stopped (their messages are sent when it
  resumes); stopped: the same, and what was not sent never will be.
Counts per ledger state are always shown, so a plan explains where every recipient stands.
"""

from __future__ import annotations

from reconciler.actions import Action, Verb
from reconciler.model import Kind, ResourceKey, SmsCampaignSpec, SmsRunState
from reconciler.observed import BackendObservation
from reconciler.planner.plan import PlanBuilder, PlanInput, PruneMode, SmsOutlook
from reconciler.planner.timing import sending_hold

STATE_ORDER = ("dispatching", "accepted", "sent", "delivered", "undelivered", "failed", "unknown")


def describe(outlook: SmsOutlook) -> str:
    parts = [f"to-send {outlook.to_send}"]
    parts += [f"{state} {outlook.counts[state]}" for state in STATE_ORDER if outlook.counts.get(state)]
    return ", ".join(parts)


def eta(count: int, rate: float | None) -> str:
    if not rate:
        return ""
    seconds = count / rate
    return f", about {seconds / 60:.0f} min at {rate:g}/s" if seconds >= 90 else f", about {seconds:.0f} s at {rate:g}/s"


def plan_sms_sends(inp: PlanInput, b: PlanBuilder, backend: str, observation: BackendObservation) -> None:
    for spec in sorted((c for c in inp.desired.campaigns_of(backend) if isinstance(c, SmsCampaignSpec)),
                       key=lambda c: c.name):
        _plan_campaign(inp, b, backend, spec)
    for name, outlook in sorted(inp.sms.items()):
        if not outlook.declared and outlook.backend == backend:
            _plan_removed(inp, b, backend, name, outlook)


def _plan_removed(inp: PlanInput, b: PlanBuilder, backend: str, name: str, outlook: SmsOutlook) -> None:
    """A campaign removed from git: what is still queued is cancelled with --prune; what was sent stays sent."""
    key = ResourceKey(Kind.CAMPAIGN, name)
    can_stop = Verb.STOP_SMS_TASK in inp.traits[backend].verbs
    if not outlook.open_tasks or not can_stop:
        b.noop(key, f"removed from git; nothing queued to cancel ({describe(outlook)})")
        return
    if inp.options.prune is PruneMode.OFF:
        b.noop(key, f"removed from git; --prune cancels its {len(outlook.open_tasks)} queued task(s)")
        return
    for task in outlook.open_tasks:
        b.add(Action(f"{backend}/campaign/{name}/stop-sms-task/{task}", Verb.STOP_SMS_TASK, key, backend,
                     {"task_id": task}, reason="removed from git (--prune): queued messages are cancelled",
                     destructive=True))


def _plan_campaign(inp: PlanInput, b: PlanBuilder, backend: str, spec: SmsCampaignSpec) -> None:
    key = ResourceKey(Kind.CAMPAIGN, spec.name)
    outlook = inp.sms.get(spec.name) or SmsOutlook(spec.recipients.count, spec.recipients.count)
    counts = describe(outlook)
    base = f"{backend}/campaign/{spec.name}"
    if spec.state is SmsRunState.STOPPED:
        for task in outlook.open_tasks if Verb.STOP_SMS_TASK in inp.traits[backend].verbs else ():
            b.add(Action(f"{base}/stop-sms-task/{task}", Verb.STOP_SMS_TASK, key, backend, {"task_id": task},
                         reason="declared stopped: queued messages are not sent"))
        b.noop(key, f"stopped: {outlook.to_send} recipient(s) will not be sent ({counts})")
        return
    if spec.state is SmsRunState.PAUSED:  # the brake: what the gateway still queues is held back too
        for task in outlook.open_tasks if Verb.STOP_SMS_TASK in inp.traits[backend].verbs else ():
            b.add(Action(f"{base}/stop-sms-task/{task}", Verb.STOP_SMS_TASK, key, backend, {"task_id": task},
                         reason="declared paused: queued messages are held back and sent when it resumes"))
        b.noop(key, f"paused: nothing new is sent ({counts})")
        return
    unresolved = outlook.counts.get("dispatching", 0)
    if not outlook.to_send and not unresolved:
        b.noop(key, f"every recipient handled ({counts})")
        return
    held, _ = sending_hold(inp.desired, spec.name, inp.now)
    if held:
        b.noop(key, f"{outlook.to_send} to send, held: {held} ({counts})")
        if outlook.to_send:  # it sends by itself once the hold ends: a change a reviewer must see
            b.pending.append(f"{key}: {outlook.to_send} SMS to send once held no longer ({held})")
        return
    if outlook.history_unknown and outlook.to_send:
        consequence = ("it is sent anyway (--risk-duplicate-sms)" if inp.options.risk_duplicate_sms else
                       "apply refuses to send it without --risk-duplicate-sms")
        b.warn(key, f"no record of earlier sends: this state store has never sent campaign {spec.name} and "
                    f"backend {backend} cannot be asked what it already sent; if another store (another "
                    f"checkout, a lost state file) sent it, its {outlook.to_send} recipient(s) get it twice. "
                    f"Point --state at the store that sent it; otherwise {consequence}", spec.source)
    b.add(Action(f"{base}/send-sms", Verb.SEND_SMS, key, backend,
                 {"campaign": spec.name, "to_send": outlook.to_send, "unresolved": unresolved},
                 reason=f"{counts}{eta(outlook.to_send, spec.rate_per_second)}"))
