"""The Ogangi Mobile Engagement simulator: the seed's REST methods over signed GET paths (and the
POST form of fireMessage), XML replies, and message lifecycles on the simulated clock.

Every request is checked like the product does: a wrong public key or signature answers
``BAD_SIGNATURE``, an unknown instance ``ERROR``; both with HTTP 200. A bad destination number is
not an error of the call but of the message (status ``BAD_TO`` in an ``OK`` reply); undecodable
Base64 gives ``BAD_ENCODING`` **[ours]**. Accepted messages move ``SENT_TO_CARRIER`` ->
``DELIVERED_TO_CARRIER`` -> ``DELIVERED_TO_DEVICE`` (or ``UNDELIVERED`` at ``failure_rate``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.ogangi.records import (
    CLIENT_ID,
    DEFAULT_CARRIER,
    ENCODING,
    IdStyle,
    MessageStatus,
    MessageTiming,
    MORecord,
    SentMessage,
    fired_mo,
    fixture_mo_messages,
    is_mobile_number,
    iso_date,
    new_message_id,
)
from reconciler.sandbox.ogangi.wire import (
    RawPathRoute,
    ReplyStatus,
    RequestRefused,
    decode_base64_text,
    element,
    parse_search,
    positive_int,
    result_of,
    signature_matches,
    xml_reply,
)

Handler = Callable[[Request, Mapping[str, str]], Awaitable[Element]]
MAX_PIN_LENGTH = 12  # [ours]


@dataclass(frozen=True)
class Endpoint:
    """One seed method: its name (the reply's ``<input>``), URL prefix and signed path parameters."""

    method: str
    prefix: str
    params: tuple[str, ...]
    http_method: str = "GET"

    @property
    def template(self) -> str:
        names = "".join(f"/{{{name}}}" for name in self.params)
        return f"{self.prefix}{names}/{{publicKey}}/{{signature}}"


SEND_SMS = Endpoint("sendSMS", "/rest/api/tools/sendSMS",
                    ("instanceId", "carrier", "from", "mobileNumber", "text"))
SEND_MT = Endpoint("sendMT", "/rest/api/sendMT", ("instanceId", "from", "carrier", "mobileNumber", "text"))
SEND_MT_FLAGS = Endpoint("sendMT", "/rest/api/sendMT",
                         ("instanceId", "from", "carrier", "mobileNumber", "text", "flags"))
SEND_PIN = Endpoint("sendSMSPinMobileNumberConfirm", "/rest/api/tools/sendSMSPinMobileNumberConfirm",
                    ("instanceId", "carrier", "from", "mobileNumber", "text", "length"))
FIRE_MESSAGE = Endpoint("fireMessage", "/rest/api/fireMessage", ("instanceId", "mobileNumber", "text"))
FIRE_MESSAGE_POST = Endpoint("fireMessage", "/rest/api/fireMessage", ("instanceId",), http_method="POST")
GET_MO_MESSAGES = Endpoint("getMOMessages", "/rest/api/tools/getMOMessages",
                           ("instanceId", "page", "resultsPerPage", "parameters"))


class OgangiSimulator:
    """Ogangi's REST API with one account (instance, public and private key)."""

    name = "ogangi"

    def __init__(
        self,
        *,
        clock: SimClock,
        seed: int | None = None,
        instance_id: str = "7",
        public_key: str = "sandbox-public",
        private_key: str = "sandbox-private",
        failure_rate: float = 0.0,
        id_style: str = "int64",
        carrier_delay_s: float = 5.0,
        device_delay_s: float = 30.0,
        timezone: str = "America/Caracas",
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        self._clock = clock
        self._seed = seed
        self._instance_id = instance_id
        self._public_key = public_key
        self._private_key = private_key
        self._failure_rate = failure_rate
        self._id_style = IdStyle(id_style)
        self._timing = MessageTiming(carrier_delay_s=carrier_delay_s, device_delay_s=device_delay_s)
        self._timezone = timezone
        self._zone = ZoneInfo(timezone)
        self._now = clock.now()
        self._rng = random.Random(seed)
        self._messages: list[SentMessage] = []
        self._mo_messages: list[MORecord] = []
        self.reset()

    # --- Simulator protocol ----------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        handlers: list[tuple[Endpoint, Handler]] = [
            (SEND_SMS, self._send_sms),
            (SEND_MT, self._send_mt),
            (SEND_MT_FLAGS, self._send_mt),
            (SEND_PIN, self._send_pin),
            (FIRE_MESSAGE, self._fire_message),
            (FIRE_MESSAGE_POST, self._fire_message_post),
            (GET_MO_MESSAGES, self._get_mo_messages),
        ]
        return [
            RawPathRoute(endpoint.template, self._signed(endpoint, handler), methods=[endpoint.http_method])
            for endpoint, handler in handlers
        ]

    def advance(self, now: float) -> None:
        self._now = max(self._now, now)

    def reset(self) -> None:
        self._rng = random.Random(self._seed)
        self._messages = []
        self._mo_messages = fixture_mo_messages(self._clock.now())

    def snapshot(self) -> dict[str, Any]:
        return {
            "messages": [m.as_snapshot(self._now, self._timing, self._zone) for m in self._messages],
            "mo_messages": [mo.as_snapshot(self._zone) for mo in self._mo_messages],
        }

    def restore(self, data: dict[str, Any]) -> None:
        self._messages = [SentMessage.from_snapshot(m) for m in data["messages"]]
        self._mo_messages = [MORecord.from_snapshot(mo) for mo in data["mo_messages"]]

    def malformed(self, body: bytes) -> bytes:
        """Truncated XML: the root element is never closed."""
        return body[: len(body) // 2]

    # --- request checks --------------------------------------------------------------------------

    def _signed(self, endpoint: Endpoint, handle: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            raw: Mapping[str, str] = request.path_params
            signed = [raw[name] for name in endpoint.params]
            if unquote(raw["publicKey"]) != self._public_key or not signature_matches(
                self._private_key, signed, raw["signature"]
            ):
                return xml_reply(
                    endpoint.method, ReplyStatus.BAD_SIGNATURE, "Invalid signature, access denied"
                )
            if unquote(raw["instanceId"]) != self._instance_id:
                return xml_reply(endpoint.method, ReplyStatus.ERROR, "Internal error, unknown instance")
            try:
                result = await handle(request, raw)
            except RequestRefused as exc:
                return xml_reply(endpoint.method, ReplyStatus.ERROR, f"Internal error, {exc}")
            return xml_reply(endpoint.method, ReplyStatus.OK, "Completed", result)

        return serve

    # --- sends -----------------------------------------------------------------------------------

    async def _send_sms(self, request: Request, raw: Mapping[str, str]) -> Element:
        number = decode_base64_text(raw["mobileNumber"])
        message = self._accept("sendSMS", raw, number=number)
        return self._message_result(message)

    async def _send_mt(self, request: Request, raw: Mapping[str, str]) -> Element:
        flags = unquote(raw["flags"]) if "flags" in raw else None
        self._accept("sendMT", raw, number=unquote(raw["mobileNumber"]), flags=flags)
        return Element("result")

    async def _send_pin(self, request: Request, raw: Mapping[str, str]) -> Element:
        length = positive_int(raw["length"], "length")
        if length > MAX_PIN_LENGTH:
            raise RequestRefused(f"length must be at most {MAX_PIN_LENGTH}")
        pin = "".join(self._rng.choice("0123456789") for _ in range(length))
        self._accept("sendSMSPinMobileNumberConfirm", raw, number=unquote(raw["mobileNumber"]), pin=pin)
        return result_of(element("PinSMSConfirmation", [("pin", pin)]))

    def _accept(
        self,
        method: str,
        raw: Mapping[str, str],
        *,
        number: str | None,
        flags: str | None = None,
        pin: str | None = None,
    ) -> SentMessage:
        """Record one message; its fate is decided now (seeded), its status follows the clock."""
        text = decode_base64_text(raw["text"])
        carrier = unquote(raw["carrier"])
        message_id = new_message_id(self._rng, self._id_style)
        undelivered = self._rng.random() < self._failure_rate
        if number is None or text is None:
            fate = MessageStatus.BAD_ENCODING
        elif not is_mobile_number(number):
            fate = MessageStatus.BAD_TO
        else:
            fate = MessageStatus.UNDELIVERED if undelivered else MessageStatus.DELIVERED_TO_DEVICE
        message = SentMessage(
            id=message_id,
            method=method,
            to=number if number is not None else unquote(raw["mobileNumber"]),
            sender=unquote(raw["from"]),
            carrier=DEFAULT_CARRIER if carrier == "null" else carrier,
            text=text if text is not None else unquote(raw["text"]),
            accepted_at=self._now,
            fate=fate,
            flags=flags,
            pin=pin,
        )
        self._messages.append(message)
        return message

    def _message_result(self, message: SentMessage) -> Element:
        status = message.status_at(self._now, self._timing)
        fields = [
            ("id", message.id),
            ("carrierName", message.carrier),
            ("from", message.sender),
            ("to", message.to),
            ("text", message.text),
            ("status", status.value),
            ("statusDescription", status.description),
            ("encoding", ENCODING),
            ("date", iso_date(message.accepted_at, self._zone)),
            ("timezone", self._timezone),
            ("clientId", CLIENT_ID),
        ]
        messages = Element("messages")
        messages.append(element("message", fields))
        return result_of(messages)

    # --- MO messages -----------------------------------------------------------------------------

    async def _fire_message(self, request: Request, raw: Mapping[str, str]) -> Element:
        text = decode_base64_text(raw["text"])
        if text is None:
            raise RequestRefused("text is not Base64")
        return self._fire(unquote(raw["mobileNumber"]), text, carrier="")

    async def _fire_message_post(self, request: Request, raw: Mapping[str, str]) -> Element:
        try:
            descriptor = json.loads(await request.body())
        except ValueError:
            raise RequestRefused("the fire message descriptor is not JSON") from None
        if not isinstance(descriptor, dict) or not all(
            isinstance(descriptor.get(key), str) for key in ("mobileNumber", "text")
        ):
            raise RequestRefused("the fire message descriptor needs mobileNumber and text")
        carrier = descriptor.get("carrier", "")
        return self._fire(descriptor["mobileNumber"], descriptor["text"], carrier=str(carrier))

    def _fire(self, number: str, text: str, *, carrier: str) -> Element:
        self._mo_messages.append(fired_mo(number, text, carrier, self._now))
        fields = [("instanceId", self._instance_id), ("mobileNumber", number), ("text", text)]
        return result_of(element("fireMessage", fields))

    async def _get_mo_messages(self, request: Request, raw: Mapping[str, str]) -> Element:
        page = positive_int(raw["page"], "page")
        per_page = positive_int(raw["resultsPerPage"], "resultsPerPage")
        found = parse_search(raw["parameters"]).select(self._mo_messages)
        listing = element("MOMessageList", [("records", str(len(found)))])
        for mo in found[(page - 1) * per_page : page * per_page]:
            listing.append(element("MOMessage", [
                ("text", mo.text),
                ("from", mo.sender),
                ("to", mo.to),
                ("encoding", mo.encoding),
                ("keyword", mo.keyword),
                ("carrier", mo.carrier),
                ("sendDate", iso_date(mo.received_at, self._zone)),
            ]))
        return result_of(listing)
