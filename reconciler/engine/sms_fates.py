"""What became of SMS handed to backends by earlier passes, asked after a pass applies and by ``reconcile
status``. Those fates only move ledger counts on: a backend failing to say must not throw away a pass
already applied, so the failure comes back as a note and the counts stay as they were."""

from __future__ import annotations

from collections.abc import Callable

from reconciler.backends.protocol import SmsSender
from reconciler.engine.sms import refresh_deliveries
from reconciler.errors import BackendError
from reconciler.model import DesiredState
from reconciler.secrets import Redactor
from reconciler.state.ledger import DeliveryLedger


async def read_fates(desired: DesiredState, ledger: DeliveryLedger, senders: Callable[[str], SmsSender | None],
                     redactor: Redactor, *, up_to: int | None = None) -> str:
    """Refresh the ledger from what backends say became of sent messages; '' or why that failed."""
    try:
        await refresh_deliveries(desired, ledger, senders, up_to=up_to)
    except BackendError as exc:
        return redactor.scrub(f"delivery results could not be read from backend {exc.backend or '?'} ({exc}); "
                              "the send ledger's counts stay as they were")
    return ""
