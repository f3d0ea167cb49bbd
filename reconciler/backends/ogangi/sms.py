"""Ogangi's side of SMS sending for the send-ledger engine.

Ogangi cannot be asked what became of a message sent with our key, so every message whose reply was
lost is ``unknown`` for good. To keep that to at most one message per crash, messages go one request
at a time by default (``options.inFlight`` raises it, trading unknowns after a crash for speed).

A message that cannot be sent at all (over the backend's ``MessageBound``, or a request that cannot be
built) fails for that recipient alone, as ``failed`` with the reason: it provably never left.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.backends.ogangi import MESSAGE_BOUND
from reconciler.backends.ogangi.adapter import TRAITS, OgangiClient
from reconciler.backends.protocol import OutgoingSms, SmsFate, SmsReceipt
from reconciler.backends.sms_text import render_text
from reconciler.errors import AuthError, BackendError, TemporaryBackendError, UnknownOutcomeError


def ogangi_number(number: str) -> str:
    """Ogangi takes the digits of the international number, without the leading ``+``."""
    return number.removeprefix("+")


BOUND = MESSAGE_BOUND  # the descriptor's: the loader checks every message against it too


class OgangiSmsSender:
    max_batch = 1
    can_query = TRAITS.sms_queryable

    def __init__(self, client: OgangiClient, *, in_flight: int = 1) -> None:
        self.client = client
        self.in_flight = max(1, in_flight)

    async def send(self, text: str, batch: Sequence[OutgoingSms], *, sender: str | None, carrier: str | None,
                   ports: tuple[int, ...], encoding: str | None, reports: bool) -> list[SmsReceipt]:
        return [await self._send_one(text, message, sender or "", carrier) for message in batch]

    async def _send_one(self, text: str, message: OutgoingSms, sender: str, carrier: str | None) -> SmsReceipt:
        rendered = render_text(text, message.params)
        too_long = BOUND.problem(rendered)
        if too_long is not None:  # checked when loading too; a request is never even built for it
            return SmsReceipt(message.key, SmsFate.FAILED,
                              reason=f"not sent: the message {too_long} on Ogangi ({BOUND} per message)")
        try:
            reply = await self.client.send(ogangi_number(message.number), rendered, sender=sender, carrier=carrier)
        except UnknownOutcomeError as exc:
            return SmsReceipt(message.key, SmsFate.UNKNOWN, reason=exc.message)
        except (AuthError, TemporaryBackendError) as exc:  # refused before anything was sent
            return SmsReceipt(message.key, SmsFate.NOT_SENT, reason=exc.message)
        except BackendError as exc:  # RequestNotBuiltError included: refused, or never sent at all
            return SmsReceipt(message.key, SmsFate.FAILED, reason=exc.message)
        if reply is None:
            return SmsReceipt(message.key, SmsFate.ACCEPTED)
        if reply.refused:
            return SmsReceipt(message.key, SmsFate.FAILED, reply.id, f"{reply.status}: {reply.status_description}")
        return SmsReceipt(message.key, SmsFate.ACCEPTED, reply.id)

    async def query(self, keys: Sequence[int]) -> list[SmsReceipt]:
        return []  # no query by our key exists

    async def stop_tasks(self, task_ids: Sequence[str]) -> None:
        return None  # nothing is queued on Ogangi's side that could be stopped

    async def aclose(self) -> None:
        await self.client.aclose()
