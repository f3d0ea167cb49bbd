"""Rendering plans and execution reports: text (like ``terraform plan``), JSON (versioned, for tools
and ``--out``) and Markdown (for pull-request comments, kept under 65,000 characters).

Symbols: ``+`` create, ``~`` change, ``-`` remove, ``>`` state change, ``=`` nothing to do.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import groupby
from typing import Any

from reconciler.actions import Action, Verb
from reconciler.diagnostics import Diagnostic, Severity, sorted_diagnostics
from reconciler.engine.execute import ExecutionReport, OutcomeStatus
from reconciler.planner.plan import Plan
from reconciler.planner.serialize import action_json

PLAN_FORMAT_VERSION = 1
MARKDOWN_LIMIT = 65_000
LIST_AT_MOST = 3  # same-verb actions of one resource beyond this are folded into one line

CREATE = frozenset({Verb.UPLOAD_PACKAGE, Verb.CREATE_CAMPAIGN, Verb.ADD_GATEWAYS, Verb.SEND_SMS})
REMOVE = frozenset({Verb.DELETE_PACKAGE, Verb.DELETE_CAMPAIGN, Verb.REMOVE_GATEWAYS})
STATE = frozenset({Verb.APPROVE_CAMPAIGN, Verb.START_CAMPAIGN, Verb.STOP_CAMPAIGN, Verb.PAUSE_CAMPAIGN,
                   Verb.RESTART_CAMPAIGN, Verb.RETRY_PARTICIPANT, Verb.CANCEL_PARTICIPANT,
                   Verb.HURRY_PARTICIPANT, Verb.CLOSE_GATEWAY, Verb.STOP_SMS_TASK})
COLOURS = {"+": "\x1b[32m", "-": "\x1b[31m", "~": "\x1b[33m", ">": "\x1b[36m", "=": "\x1b[2m"}
RESET = "\x1b[0m"


def symbol(verb: Verb) -> str:
    if verb in CREATE:
        return "+"
    if verb in REMOVE:
        return "-"
    if verb in STATE:
        return ">"
    return "~"


def summary_counts(plan: Plan) -> dict[str, int]:
    counts: Counter[str] = Counter(symbol(a.verb) for a in plan.actions)
    return {"create": counts["+"], "change": counts["~"], "remove": counts["-"], "state": counts[">"]}


def summary_line(plan: Plan) -> str:
    if not plan.actions:
        return "No changes. The backends match the declared state."
    c = summary_counts(plan)
    return (f"Plan: {c['create']} to create, {c['change']} to change, {c['remove']} to remove, "
            f"{c['state']} state change(s) ({len(plan.actions)} actions).")


def _action_lines(actions: list[Action]) -> Iterable[tuple[str, str]]:
    """(symbol, text) per line; long runs of one verb are folded into a single line."""
    for verb, run in groupby(actions, key=lambda a: a.verb):
        items = list(run)
        if len(items) > LIST_AT_MOST:
            reasons = Counter(a.reason for a in items).most_common(1)[0][0]
            yield symbol(verb), f"{verb.value} x{len(items)}  ({reasons}, ...)"
            continue
        for a in items:
            detail = _detail(a)
            yield symbol(verb), f"{verb.value}{detail}  ({a.reason})" if a.reason else f"{verb.value}{detail}"


def _detail(action: Action) -> str:
    p = action.params
    if "gateway_ids" in p:
        return f" [{len(p['gateway_ids'])} gateways]"
    if "gateway_id" in p:
        return f" {p['gateway_id']}" + (f" {p['window']}" if "window" in p else "")
    if "participant_id" in p:
        return f" participant {p['participant_id']}"
    if "callback" in p:
        return f" {p['callback']}"
    if "task_id" in p:
        return f" task {p['task_id']}"
    return ""


def render_text(plan: Plan, *, colour: bool = False, title: str = "") -> str:
    def paint(sym: str, text: str) -> str:
        return f"{COLOURS[sym]}{sym} {text}{RESET}" if colour else f"{sym} {text}"

    by_key: dict[str, list[Action]] = defaultdict(list)
    for action in plan.actions:
        by_key[f"{action.key}  ({action.backend})"].append(action)
    lines = [title] if title else []
    for key in by_key:
        lines.append(key)
        lines.extend("  " + paint(sym, text) for sym, text in _action_lines(by_key[key]))
    quiet = [n for n in plan.noops if not any(a.key == n.key for a in plan.actions)]
    for noop in quiet:
        lines.append(paint("=", f"{noop.key}: {noop.reason}"))
    for noop in plan.noops:
        if noop not in quiet:
            lines.append(f"  note on {noop.key}: {noop.reason}")
    lines.extend(f"note: {n}" for n in plan.notes)
    lines.extend(d.format() for d in sorted_diagnostics(plan.diagnostics))
    lines.append(summary_line(plan))
    return "\n".join(lines)


def plan_json(plan: Plan, *, paths: list[str]) -> dict[str, Any]:
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "paths": paths,
        "summary": {**summary_counts(plan), "actions": len(plan.actions), "has_errors": plan.has_errors},
        "actions": [action_json(a) for a in plan.actions],
        "noops": [{"resource": str(n.key), "reason": n.reason} for n in plan.noops],
        "notes": list(plan.notes),
        "unreadable_backends": list(plan.unreadable),
        "diagnostics": [d.as_json() for d in plan.diagnostics],
    }


def render_json(plan: Plan, *, paths: list[str]) -> str:
    return json.dumps(plan_json(plan, paths=paths), indent=2, sort_keys=False)


def render_markdown(plan: Plan) -> str:
    c = summary_counts(plan)
    head = [
        "### campaign-reconciler plan",
        "",
        "| create | change | remove | state changes | actions |",
        "|---:|---:|---:|---:|---:|",
        f"| {c['create']} | {c['change']} | {c['remove']} | {c['state']} | {len(plan.actions)} |",
        "",
    ]
    problems = [f"- `{d.format()}`" for d in sorted_diagnostics(plan.diagnostics)]
    if problems:
        head += ["**Problems**", "", *problems, ""]
    if plan.notes:
        head += [f"> {n}" for n in plan.notes] + [""]
    body: list[str] = []
    by_key: dict[str, list[Action]] = defaultdict(list)
    for action in plan.actions:
        by_key[str(action.key)].append(action)
    budget = MARKDOWN_LIMIT - sum(len(line) + 1 for line in head) - 200
    shown = 0
    for key, actions in by_key.items():
        block = [f"<details><summary><code>{key}</code>: {len(actions)} action(s)</summary>", "", "```diff"]
        block += [f"{sym} {text}" for sym, text in _action_lines(actions)] + ["```", "</details>"]
        size = sum(len(line) + 1 for line in block)
        if size > budget:
            break
        body += block
        budget -= size
        shown += 1
    if shown < len(by_key):
        body.append(f"\n_{len(by_key) - shown} more resource(s) not shown; run `reconcile --dry-run --output json` "
                    "for the whole plan._")
    return "\n".join(head + body + ["", summary_line(plan)])


def render_report(report: ExecutionReport) -> str:
    """The per-resource report after apply: what failed or was skipped, and totals."""
    lines = []
    for outcome in report.outcomes:
        if outcome.status is not OutcomeStatus.SUCCEEDED:
            lines.append(f"{outcome.status.value.upper():9} {outcome.key} {outcome.action.verb.value}"
                         f"{_detail(outcome.action)}: {outcome.message}")
    counts = Counter(o.status.value for o in report.outcomes)
    totals = ", ".join(f"{counts[s.value]} {s.value}" for s in OutcomeStatus if counts[s.value])
    lines.append(f"Applied in {report.seconds:.1f}s: {totals or 'nothing to do'}.")
    return "\n".join(lines)


def render_diagnostics(diagnostics: Iterable[Diagnostic]) -> str:
    return "\n".join(d.format() for d in sorted_diagnostics(diagnostics))


def count_errors(diagnostics: Iterable[Diagnostic]) -> int:
    return sum(1 for d in diagnostics if d.severity is Severity.ERROR)
