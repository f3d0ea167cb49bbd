"""Settling the send ledger from what a backend pushed (the daemon's webhook receiver calls it; polling
does the same work when no push arrives).

The backend's push parser (its descriptor's ``push``) says which fate each ledger key reached; this decides
whether the row may move. A delivery report is the only proof the handset has the message, so ``delivered``
is never undone, and a row that reached another final state is moved again only to ``delivered`` (a later
``failed`` for a delivered row is ignored). The ledger's ``settle`` already refuses to move a row back to
an earlier stage; among final states it ranks them equal, so this ordering is applied here.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.backends.descriptor import PushedFate
from reconciler.backends.protocol import SmsFate
from reconciler.state.ledger import FINAL_STATES, SendLedger, SendState

MAX_KEY = 2**63 - 1  # ledger keys are SQLite integers
#: the fates a push can settle a row with (``accepted`` adds nothing to a row already accepted)
FATE_STATE = {SmsFate.SENT: SendState.SENT, SmsFate.DELIVERED: SendState.DELIVERED,
              SmsFate.FAILED: SendState.FAILED}


def may_move(was: SendState, to: SendState) -> bool:
    """Whether a pushed fate may move a row from ``was`` to ``to``: never off ``delivered``, and from
    another final state only to ``delivered``."""
    if was is to or was is SendState.DELIVERED:
        return False
    return was not in FINAL_STATES or to is SendState.DELIVERED


def settle_pushed(ledger: SendLedger, fates: Sequence[PushedFate]) -> int:
    """Settle the ledger rows ``fates`` name (one fate per key: the parser picks the most advanced);
    returns how many rows moved on. Keys this ledger does not hold are ignored."""
    wanted = {f.key: f for f in fates if 0 < f.key <= MAX_KEY and f.fate in FATE_STATE}
    known = {row.key: row for row in ledger.by_keys(list(wanted))}
    updates = []
    for key, pushed in wanted.items():
        row = known.get(key)
        state = FATE_STATE[pushed.fate]
        if row is None or not may_move(row.state, state):
            continue
        updates.append((row.key, state, "", pushed.note))
    ledger.settle(updates)
    return len(updates)
