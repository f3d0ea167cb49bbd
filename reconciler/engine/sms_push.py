"""Applying the SMS gateway's pushed sending results to the send ledger (the daemon's receiver calls it;
polling does the same work when no push arrives).

Pushes arrive in any order and the gateway may report one message more than once (a result per attempt,
or per segment). A delivery report is the only proof the handset has the message, so ``DELIVERED`` is
never undone: within one push the most advanced result of a ``user_id`` counts (the gateway's own order,
as for polling: ``SENDING`` < ``SENT_OK`` < ``FAILED`` < ``DELIVERED``), and a row that reached a final
state is moved again only to ``delivered`` (a later ``FAILED`` for a delivered row is ignored). The
ledger's ``settle`` already refuses to move a row back to an earlier stage; among final states it ranks
them equal, so this ordering is applied here.
"""

from __future__ import annotations

from reconciler.backends.protocol import SmsFate
from reconciler.backends.sms_gateway.sms import PROGRESS as RESULT_RANK
from reconciler.backends.sms_gateway.sms import STATUS_FATE
from reconciler.backends.sms_gateway.replies import GatewayPush, PushKind, SmsResult
from reconciler.state.ledger import FINAL_STATES, SendLedger, SendState

MAX_KEY = 2**63 - 1  # ledger keys are SQLite integers; a larger user_id cannot be ours
FATE_STATE = {SmsFate.SENT: SendState.SENT, SmsFate.DELIVERED: SendState.DELIVERED,
              SmsFate.FAILED: SendState.FAILED}


def _fate(result: SmsResult) -> SmsFate:
    return STATUS_FATE.get(result.status, SmsFate.ACCEPTED)


def best_results(push: GatewayPush) -> dict[int, SmsResult]:
    """Per ``user_id`` that can be a ledger key, the most advanced result in the push (ties: the last)."""
    best: dict[int, SmsResult] = {}
    for result in push.results:
        key = result.user_id
        if key is None or not 0 < key <= MAX_KEY:
            continue
        current = best.get(key)
        if current is None or RESULT_RANK.get(_fate(result), 0) >= RESULT_RANK.get(_fate(current), 0):
            best[key] = result
    return best


def may_move(was: SendState, to: SendState) -> bool:
    """Whether a pushed result may move a row from ``was`` to ``to``: never off ``delivered``, and from
    another final state only to ``delivered``."""
    if was is to or was is SendState.DELIVERED:
        return False
    return was not in FINAL_STATES or to is SendState.DELIVERED


def apply_gateway_push(ledger: SendLedger, push: GatewayPush) -> int:
    """Settle ledger rows named by ``user_id`` in a results push; returns how many rows moved on.
    Results without a ``user_id`` (and delivery-status pushes, which carry none) are left to polling."""
    if push.kind is not PushKind.RESULTS:
        return 0
    best = best_results(push)
    known = {row.key: row for row in ledger.by_keys(list(best))}
    updates = []
    for key, result in best.items():
        row = known.get(key)
        state = FATE_STATE.get(_fate(result))
        if row is None or state is None or not may_move(row.state, state):
            continue
        updates.append((row.key, state, "", f"gateway push: {result.status.value}"))
    ledger.settle(updates)
    return len(updates)
