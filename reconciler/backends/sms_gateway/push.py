"""The SMS gateway's pushes as the daemon receives them (``/webhooks/sms-gateway/<token>``).

The gateway POSTs sending results (``sms_result``), delivery reports (``sms_deliver_status``) and incoming
SMS. Results carry our ``user_id`` (the ledger key) and settle ledger rows; the others carry none and are
left to polling, with a pass run at once. The gateway may report one message more than once (a result per
attempt, or per segment), in any order: within one push the most advanced result of a ``user_id`` counts,
in the gateway's own order (``SENDING`` < ``SENT_OK`` < ``FAILED`` < ``DELIVERED``, as for polling). The
ledger side (never moving a row off ``delivered``) is the engine's (``reconciler.engine.pushes``).
"""

from __future__ import annotations

import json

from reconciler.backends.descriptor import PushedFate, PushError, PushReport
from reconciler.backends.protocol import SmsFate
from reconciler.backends.sms_gateway.replies import GatewayPush, GatewayPushError, PushKind, SmsResult, parse_push
from reconciler.backends.sms_gateway.sms import PROGRESS, STATUS_FATE

MAX_KEY = 2**63 - 1  # ledger keys are SQLite integers; a larger user_id cannot be ours


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
        if current is None or PROGRESS.get(_fate(result), 0) >= PROGRESS.get(_fate(current), 0):
            best[key] = result
    return best


def parse_gateway_push(body: bytes) -> PushReport:
    """A push body: the fates its results report (one per ``user_id``), or a pass to run for the others."""
    try:
        push = parse_push(json.loads(body))
    except (ValueError, RecursionError, GatewayPushError) as exc:  # RecursionError: absurdly nested JSON
        raise PushError(str(exc)[:200]) from None
    if push.kind is not PushKind.RESULTS:
        return PushReport(fates=(), wake="sms-gateway push", log={"kind": push.kind.value})
    fates = tuple(PushedFate(key, _fate(result), f"gateway push: {result.status.value}")
                  for key, result in best_results(push).items())
    return PushReport(fates=fates, log={"kind": push.kind.value})
