"""Failure events: ``pass.failed`` (the pass could not apply something) and ``apply.failed`` (actions
failed). Both are conditions: sent when they start, not again while they hold."""

from __future__ import annotations

from reconciler.diagnostics import Severity
from reconciler.engine.execute import Outcome, OutcomeStatus
from reconciler.model import Kind, NotificationEvent, ResourceKey
from reconciler.notify.event import MAX_LISTED, Event, Found, campaign_of, condition_id, short
from reconciler.notify.facts import PassFacts

FAILED = (OutcomeStatus.FAILED, OutcomeStatus.UNKNOWN)


def pass_failures(facts: PassFacts, found: Found) -> None:
    """``pass.failed``: a backend that could not be read or connected to, and error diagnostics (by
    resource) that kept the pass from applying; over once a pass reads that backend, or plans that
    campaign, without an error."""
    kind = NotificationEvent.PASS_FAILED
    problems = _problems(facts)
    for resource, messages in sorted(problems.items()):
        subject = f"{kind.value}/{resource or 'pass'}"
        campaign = campaign_of(resource)
        found.add(Event(kind, condition_id(kind, subject, facts.now),
                        short(f"the pass could not apply {resource or 'the declarations'}: {messages[0]}"),
                        campaign=campaign, backend=_backend_of(facts, resource, campaign), resource=resource,
                        severity="error", subject=subject,
                        details={"problems": [short(m) for m in messages[:MAX_LISTED]], "count": len(messages)}))
    if facts.plan is None:
        return
    looked = [str(ResourceKey(Kind.BACKEND, b)) for b in facts.readable_backends]
    looked += [str(ResourceKey(Kind.CAMPAIGN, n)) for n, c in facts.desired.campaigns.items()
               if c.backend in facts.readable_backends]
    for resource in [*looked, ""]:
        if resource not in problems:
            found.clear(f"{kind.value}/{resource or 'pass'}")


def _backend_of(facts: PassFacts, resource: str, campaign: str | None) -> str | None:
    backend = f"{Kind.BACKEND.value}/"
    if resource.startswith(backend):
        return resource[len(backend):]
    spec = facts.desired.campaigns.get(campaign) if campaign is not None else None
    return spec.backend if spec is not None else None


def _problems(facts: PassFacts) -> dict[str, list[str]]:
    """Messages by resource ('' for the pass as a whole): unreadable backends, then errors."""
    problems: dict[str, list[str]] = {}
    observed = facts.observed.backends if facts.observed is not None else {}
    for backend in facts.plan.unreadable if facts.plan is not None else ():
        why = observed[backend].error if backend in observed else "not observed"
        problems.setdefault(str(ResourceKey(Kind.BACKEND, backend)), []).append(
            f"backend {backend} could not be read: {why}")
    planned = facts.plan.diagnostics if facts.plan is not None else ()
    for diagnostic in (*facts.diagnostics, *planned):
        if diagnostic.severity is Severity.ERROR:
            problems.setdefault(diagnostic.resource, []).append(diagnostic.format())
    return problems


def action_failures(facts: PassFacts, found: Found) -> None:
    """``apply.failed``: per resource, actions that failed or whose outcome is unknown (skipped ones follow
    from those); over once a pass applies that resource's actions and every one succeeds."""
    kind = NotificationEvent.APPLY_FAILED
    by_resource: dict[ResourceKey, list[Outcome]] = {}
    for outcome in facts.outcomes():
        by_resource.setdefault(outcome.key, []).append(outcome)
    for key, outcomes in sorted(by_resource.items()):
        subject = f"{kind.value}/{key}"
        failed = [o for o in outcomes if o.status in FAILED]
        if not failed:
            if all(o.status is OutcomeStatus.SUCCEEDED for o in outcomes):
                found.clear(subject)
            continue
        first = failed[0]
        found.add(Event(
            kind, condition_id(kind, subject, facts.now),
            short(f"{len(failed)} of {len(outcomes)} action(s) on {key} failed; {first.action.verb.value}: "
                  f"{first.message}"),
            campaign=key.name if key.kind is Kind.CAMPAIGN else None, backend=first.action.backend,
            resource=str(key), severity="error", subject=subject,
            details={"failed": len(failed), "actions": len(outcomes),
                     "outcomes": [{"verb": o.action.verb.value, "status": o.status.value, "permanent": o.permanent,
                                   "message": short(o.message)} for o in failed[:MAX_LISTED]]}))
