"""The SMS gateway's side of SMS sending for the send-ledger engine.

Up to 128 messages per ``send_sms``, each carrying its ledger key as ``user_id``; the gateway can be
asked about those ``user_id``s (``query_sms_result``), so a lost reply is resolved exactly rather than
guessed: found means queued or sent, absent means it never arrived and may be sent again.

A message over the gateway's ``MessageBound`` fails alone (``failed`` with the reason) and the rest of
its batch is sent; a request that cannot be built fails its batch as ``failed``: it provably never left.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from reconciler.backends.protocol import OutgoingSms, SmsFate, SmsReceipt
from reconciler.backends.sms_gateway import MESSAGE_BOUND
from reconciler.backends.sms_gateway.adapter import TRAITS
from reconciler.backends.sms_text import render_text
from reconciler.backends.sms_gateway.client import SmsGatewayClient
from reconciler.backends.sms_gateway.replies import OutgoingSms as GatewaySms
from reconciler.backends.sms_gateway.replies import SmsResult, SmsStatus
from reconciler.errors import AuthError, BackendError, NotFoundError, TemporaryBackendError, UnknownOutcomeError

SEND_LIMIT = 128
BOUND = MESSAGE_BOUND  # the descriptor's: the loader checks every message against it too
STATUS_FATE = {SmsStatus.SENDING: SmsFate.ACCEPTED, SmsStatus.SENT_OK: SmsFate.SENT,
               SmsStatus.DELIVERED: SmsFate.DELIVERED, SmsStatus.FAILED: SmsFate.FAILED}
PROGRESS = {SmsFate.ACCEPTED: 0, SmsFate.SENT: 1, SmsFate.FAILED: 2, SmsFate.DELIVERED: 3}


class SmsGatewaySmsSender:
    max_batch = SEND_LIMIT
    can_query = TRAITS.sms_queryable

    def __init__(self, client: SmsGatewayClient, *, in_flight: int = 4) -> None:
        self.client = client
        self.in_flight = max(1, in_flight)

    async def send(self, text: str, batch: Sequence[OutgoingSms], *, sender: str | None, carrier: str | None,
                   ports: tuple[int, ...], encoding: str | None, reports: bool) -> list[SmsReceipt]:
        too_long = BOUND.problem(text, encoding)  # the gateway gets the text with its #param# (413 over 1,500 bytes)
        if too_long is not None:
            return self._all(batch, SmsFate.FAILED, f"not sent: the text {too_long} on the SMS gateway ({BOUND} "
                                                    "per message)")
        refused: list[SmsReceipt] = []
        sendable: list[OutgoingSms] = []
        for message in batch:  # checked when loading too; one message too long must not sink its batch
            problem = BOUND.problem(render_text(text, message.params), encoding)
            if problem is None:
                sendable.append(message)
            else:
                refused.append(SmsReceipt(message.key, SmsFate.FAILED, reason=f"not sent: the message {problem} on "
                                          f"the SMS gateway ({BOUND} per message)"))
        if not sendable:
            return refused
        return await self._send(text, sendable, ports, encoding, reports) + refused

    async def _send(self, text: str, batch: Sequence[OutgoingSms], ports: tuple[int, ...], encoding: str | None,
                    reports: bool) -> list[SmsReceipt]:
        messages = [GatewaySms(number=m.number, user_id=m.key, text_param=m.params) for m in batch]
        try:
            receipt = await self.client.send_sms(messages, text=text, ports=list(ports) or None,
                                                 encoding=encoding, request_status_report=reports)
        except UnknownOutcomeError as exc:
            return self._all(batch, SmsFate.UNKNOWN, exc.message)
        except TemporaryBackendError as exc:
            return self._all(batch, SmsFate.NOT_SENT if exc.not_processed else SmsFate.UNKNOWN, exc.message)
        except AuthError as exc:
            return self._all(batch, SmsFate.NOT_SENT, exc.message)
        except BackendError as exc:  # 400 / 413: refused as a whole, nothing queued
            return self._all(batch, SmsFate.FAILED, exc.message)
        except (httpx.InvalidURL, ValueError) as exc:
            # the request could not be built (httpx builds the URL and encodes the JSON body before any byte
            # is sent; replies that cannot be read surface as MalformedReplyError, a BackendError): a certain
            # failure of this batch, never an unknown outcome and never an abort of the whole apply
            detail = str(exc).splitlines()[0][:120] if str(exc) else ""
            return self._all(batch, SmsFate.FAILED, f"not sent: the request cannot be built "
                                                    f"({exc.__class__.__name__}{': ' + detail if detail else ''})")
        return [SmsReceipt(m.key, SmsFate.ACCEPTED, str(receipt.task_id)) for m in batch]

    @staticmethod
    def _all(batch: Sequence[OutgoingSms], fate: SmsFate, reason: str) -> list[SmsReceipt]:
        return [SmsReceipt(m.key, fate, reason=reason) for m in batch]

    async def query(self, keys: Sequence[int]) -> list[SmsReceipt]:
        best: dict[int, SmsReceipt] = {}
        for result in await self.client.query_sms_result(user_ids=list(keys)):
            receipt = _receipt(result)
            if receipt is None:
                continue
            current = best.get(receipt.key)
            if current is None or PROGRESS.get(receipt.fate, 0) > PROGRESS.get(current.fate, 0):
                best[receipt.key] = receipt
        return list(best.values())

    async def stop_tasks(self, task_ids: Sequence[str]) -> None:
        for task in task_ids:
            try:
                await self.client.stop_sms(int(task))
            except NotFoundError:
                continue  # finished or forgotten by the gateway: nothing left to stop

    async def aclose(self) -> None:
        await self.client.aclose()


def _receipt(result: SmsResult) -> SmsReceipt | None:
    if result.user_id is None:
        return None
    fate = STATUS_FATE.get(result.status, SmsFate.ACCEPTED)
    return SmsReceipt(result.user_id, fate, reason="" if fate is not SmsFate.FAILED else "gateway: FAILED")
