"""Applying the SMS gateway's pushed sending results to the send ledger (the daemon's receiver calls it;
polling does the same work when no push arrives)."""

from __future__ import annotations

from reconciler.backends.sms_gateway_sms import STATUS_FATE
from reconciler.backends.protocol import SmsFate
from reconciler.backends.sms_gateway_types import GatewayPush, PushKind
from reconciler.state.ledger import SendLedger, SendState

MAX_KEY = 2**63 - 1  # ledger keys are SQLite integers; a larger user_id cannot be ours
FATE_STATE = {SmsFate.SENT: SendState.SENT, SmsFate.DELIVERED: SendState.DELIVERED,
              SmsFate.FAILED: SendState.FAILED}


def apply_gateway_push(ledger: SendLedger, push: GatewayPush) -> int:
    """Settle ledger rows named by ``user_id`` in a results push; returns how many rows moved on.
    Results without a ``user_id`` (and delivery-status pushes, which carry none) are left to polling."""
    if push.kind is not PushKind.RESULTS:
        return 0
    keys = [r.user_id for r in push.results if r.user_id is not None and 0 < r.user_id <= MAX_KEY]
    known = {row.key: row for row in ledger.by_keys(keys)}
    updates = []
    for result in push.results:
        row = known.get(result.user_id) if result.user_id is not None else None
        state = FATE_STATE.get(STATUS_FATE.get(result.status, SmsFate.ACCEPTED))
        if row is None or state is None or row.state is state:
            continue
        updates.append((row.key, state, "", f"gateway push: {result.status.value}"))
    ledger.settle(updates)
    return len(updates)
