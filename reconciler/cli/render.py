"""Rendering plans and execution reports: text (like ``terraform plan``), JSON (versioned, for tools
and ``--out``) and Markdown (for pull-request comments, kept under 65,000 characters).

Symbols: ``+`` create, ``~`` change, ``-`` remove, ``>`` state change, ``=`` nothing to do. A destructive
action (``Action.destructive``: it cannot be undone) ends in ``[destructive]`` in text and Markdown.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import groupby
from typing import Any

from reconciler.actions import Action, Verb
from reconciler.diagnostics import Diagnostic, Severity, sorted_diagnostics
from reconciler.escape import escape
from reconciler.engine.execute import ExecutionReport, OutcomeStatus
from reconciler.planner.plan import Plan
from reconciler.planner.serialize import action_json

PLAN_FORMAT_VERSION = 1
MARKDOWN_LIMIT = 65_000
LIST_AT_MOST = 3  # same-verb actions of one resource beyond this are folded into one line
DESTRUCTIVE = "  [destructive]"

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
    if plan.unreadable:  # never "the backends match": some were not read at all
        names = ", ".join(escape(n) for n in plan.unreadable)
        return (f"{len(plan.unreadable)} backend(s) could not be read ({names}): nothing was planned for them, so "
                f"this plan is incomplete. " + _counted(plan))
    if not plan.actions and plan.pending:
        return (f"No action now, but {len(plan.pending)} change(s) pending: they happen without another commit "
                "(see pending).")
    if not plan.actions and plan.stranded_count:
        return (f"No changes. {plan.stranded_count} gateway(s) are stranded: their schedule window ended before "
                "they finished (see the warnings).")
    if not plan.actions:
        return "No changes. The backends match the declared state."
    return _counted(plan)


def _counted(plan: Plan) -> str:
    c = summary_counts(plan)
    pending = f" and {len(plan.pending)} pending" if plan.pending else ""
    return (f"Plan: {c['create']} to create, {c['change']} to change, {c['remove']} to remove, "
            f"{c['state']} state change(s) ({len(plan.actions)} actions{pending}).")


def _action_lines(actions: list[Action]) -> Iterable[tuple[str, str]]:
    """(symbol, text) per line; long runs of one verb are folded into a single line."""
    for verb, run in groupby(actions, key=lambda a: a.verb):
        items = list(run)
        if len(items) > LIST_AT_MOST:
            reasons = escape(Counter(a.reason for a in items).most_common(1)[0][0])
            mark = DESTRUCTIVE if any(a.destructive for a in items) else ""
            yield symbol(verb), f"{verb.value} x{len(items)}  ({reasons}, ...){mark}"
            continue
        for a in items:
            text = escape(f"{a.verb.value}{_detail(a)}") + (f"  ({escape(a.reason)})" if a.reason else "")
            yield symbol(verb), text + (DESTRUCTIVE if a.destructive else "")


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
        lines.append(escape(key))
        lines.extend("  " + paint(sym, text) for sym, text in _action_lines(by_key[key]))
    quiet = [n for n in plan.noops if not any(a.key == n.key for a in plan.actions)]
    for noop in quiet:
        lines.append(paint("=", escape(f"{noop.key}: {noop.reason}")))
    for noop in plan.noops:
        if noop not in quiet:
            lines.append(escape(f"  note on {noop.key}: {noop.reason}"))
    lines.extend(f"pending: {escape(p)}" for p in plan.pending)
    lines.extend(f"note: {escape(n)}" for n in plan.notes)
    lines.extend(f"unreadable: backend {escape(b)} could not be read; nothing was planned for it"
                 for b in plan.unreadable)
    lines.extend(d.format() for d in sorted_diagnostics(plan.diagnostics))
    lines.append(summary_line(plan))
    return "\n".join(lines)


def plan_json(plan: Plan, *, paths: list[str]) -> dict[str, Any]:
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "paths": paths,
        "summary": {**summary_counts(plan), "actions": len(plan.actions), "pending": len(plan.pending),
                    "unreadable": len(plan.unreadable), "has_errors": plan.has_errors,
                    "has_changes": plan.has_changes},
        "actions": [action_json(a) for a in plan.actions],
        "noops": [{"resource": str(n.key), "reason": n.reason} for n in plan.noops],
        "notes": list(plan.notes),
        "pending": list(plan.pending),
        "unreadable_backends": list(plan.unreadable),
        "stranded": [s.as_json() for s in plan.stranded],
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
    if plan.unreadable:
        head += [f"**{len(plan.unreadable)} backend(s) could not be read**: nothing was planned for "
                 + ", ".join(f"`{_md(b)}`" for b in plan.unreadable) + "; this plan is incomplete.", ""]
    problems = [f"- `{_md(d.format())}`" for d in sorted_diagnostics(plan.diagnostics)]
    if problems:
        head += ["**Problems and warnings**", "", *problems, ""]
    if plan.pending:
        head += ["**Pending** (happens without another commit)", "", *(f"- {_md(p)}" for p in plan.pending), ""]
    if plan.notes:
        head += [f"> {_md(n)}" for n in plan.notes] + [""]
    if plan.noops:  # held sends, rollout waves, stranded gateways, what is in sync: what text shows too
        head += [f"<details><summary>Nothing to do now ({len(plan.noops)})</summary>", "", "```",
                 *(_unfenced(escape(f"= {n.key}: {n.reason}")) for n in plan.noops), "```", "</details>", ""]
    body: list[str] = []
    by_key: dict[str, list[Action]] = defaultdict(list)
    for action in plan.actions:
        by_key[str(action.key)].append(action)
    budget = MARKDOWN_LIMIT - sum(len(line) + 1 for line in head) - 200
    shown = 0
    for key, actions in by_key.items():
        block = [f"<details><summary><code>{_md(key)}</code>: {len(actions)} action(s)</summary>", "", "```diff"]
        block += [_unfenced(f"{sym} {text}") for sym, text in _action_lines(actions)] + ["```", "</details>"]
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


def _md(text: str) -> str:
    """Text from outside in a Markdown line: escaped, and no backtick can close a code span."""
    return escape(text).replace("`", "'")


def _unfenced(line: str) -> str:
    """A line inside a fenced block that cannot end the block."""
    return line.replace("``" + "`", "` ` `")


def render_report(report: ExecutionReport) -> str:
    """The per-resource report after apply: what failed or was skipped, and totals."""
    lines = []
    for outcome in report.outcomes:
        if outcome.status is not OutcomeStatus.SUCCEEDED:
            lines.append(escape(f"{outcome.status.value.upper():9} {outcome.key} {outcome.action.verb.value}"
                                f"{_detail(outcome.action)}: {outcome.message}"))
    counts = Counter(o.status.value for o in report.outcomes)
    totals = ", ".join(f"{counts[s.value]} {s.value}" for s in OutcomeStatus if counts[s.value])
    lines.append(f"Applied in {report.seconds:.1f}s: {totals or 'nothing to do'}.")
    return "\n".join(lines)


def render_diagnostics(diagnostics: Iterable[Diagnostic]) -> str:
    return "\n".join(d.format() for d in sorted_diagnostics(diagnostics))


def count_errors(diagnostics: Iterable[Diagnostic]) -> int:
    return sum(1 for d in diagnostics if d.severity is Severity.ERROR)
