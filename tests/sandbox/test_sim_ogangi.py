"""The Ogangi simulator over real loopback HTTP, signed independently of the adapter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError, fromstring

import httpx
import pytest

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.ogangi.app import OgangiSimulator
from reconciler.sandbox.testing import SandboxControl, running_simulator

PRIVATE = "sandbox-private"
PUBLIC = "sandbox-public"
SEND_SMS_FIELDS = [
    "id", "carrierName", "from", "to", "text", "status", "statusDescription",
    "encoding", "date", "timezone", "clientId",
]


def b64(text: str, *, padded: bool = True) -> str:
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    return encoded if padded else encoded.rstrip("=")


def signed_url(base: str, method: str, params: str, *, key: str = PRIVATE, public: str = PUBLIC) -> str:
    signature = hmac.new(key.encode(), params.encode(), hashlib.sha256).hexdigest()
    return f"{base}/rest/api/{method}/{params}/{public}/{signature}"


def call(server: SandboxServer, method: str, params: str, **kwargs: str) -> Element:
    reply = httpx.get(signed_url(server.url, method, params, **kwargs))
    assert reply.status_code == 200
    return fromstring(reply.content)


def send_sms(
    server: SandboxServer, number: str = "13056708084", text: str = "OGANGI TEST MESSAGE"
) -> Element:
    return call(server, "tools/sendSMS", f"7/null/OGANGI/{b64(number)}/{b64(text)}")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    clock = SimClock()
    with running_simulator(OgangiSimulator(clock=clock, seed=7), clock=clock) as server:
        yield server


@pytest.fixture
def server(sandbox: SandboxServer) -> SandboxServer:
    SandboxControl.of(sandbox).reset()
    return sandbox


# --- contract ----------------------------------------------------------------------------------


def test_send_sms_reply_has_the_envelope_and_the_message_fields_in_seed_order(server: SandboxServer) -> None:
    reply = send_sms(server)
    message = reply.find("result/messages/message")
    assert [reply.findtext(t) for t in ("input", "status", "description")] == ["sendSMS", "OK", "Completed"]
    assert [child.tag for child in message] == SEND_SMS_FIELDS
    assert [message.findtext(t) for t in ("from", "to", "text", "status", "statusDescription")] == [
        "OGANGI", "13056708084", "OGANGI TEST MESSAGE", "SENT_TO_CARRIER", "Sent to Carrier"
    ]


def test_send_sms_ids_are_signed_64_bit_numbers(server: SandboxServer) -> None:
    ids = [int(send_sms(server).findtext("result/messages/message/id")) for _ in range(5)]
    assert all(-(2**63) <= i < 2**63 for i in ids) and len(set(ids)) == 5


def test_send_sms_date_is_iso_8601_with_offset_in_the_reply_timezone(server: SandboxServer) -> None:
    message = send_sms(server).find("result/messages/message")
    assert message.findtext("timezone") == "America/Caracas"
    assert message.findtext("date").endswith("-04:00")


def test_send_sms_accepts_unpadded_base64(server: SandboxServer) -> None:
    params = f"7/null/OGANGI/{b64('13056708084', padded=False)}/{b64('hi', padded=False)}"
    message = call(server, "tools/sendSMS", params).find("result/messages/message")
    assert (message.findtext("to"), message.findtext("text")) == ("13056708084", "hi")


def test_send_sms_with_null_carrier_gets_a_carrier_chosen(server: SandboxServer) -> None:
    message = send_sms(server).find("result/messages/message")
    assert message.findtext("carrierName") == "Movistar"


def test_send_sms_keeps_a_named_carrier(server: SandboxServer) -> None:
    params = f"7/Digitel/OGANGI/{b64('13056708084')}/{b64('hi')}"
    call(server, "tools/sendSMS", params)
    assert SandboxControl.of(server).state()["messages"][0]["carrier"] == "Digitel"


def test_send_mt_without_flags_answers_completed_with_an_empty_result(server: SandboxServer) -> None:
    reply = call(server, "sendMT", f"7/OGANGI/null/13056708084/{b64('hello')}")
    envelope = (reply.findtext("input"), reply.findtext("status"), len(reply.find("result")))
    assert envelope == ("sendMT", "OK", 0)


def test_send_mt_takes_the_number_in_clear_and_the_text_in_base64(server: SandboxServer) -> None:
    call(server, "sendMT", f"7/OGANGI/null/13056708084/{b64('hello')}")
    sent = SandboxControl.of(server).state()["messages"][0]
    recorded = (sent["method"], sent["to"], sent["text"], sent["flags"])
    assert recorded == ("sendMT", "13056708084", "hello", None)


def test_send_mt_with_flags_records_the_flags(server: SandboxServer) -> None:
    reply = call(server, "sendMT", f"7/OGANGI/null/13056708084/{b64('hello')}/priority")
    assert reply.findtext("status") == "OK"
    assert SandboxControl.of(server).state()["messages"][0]["flags"] == "priority"


def test_send_pin_returns_a_pin_of_the_requested_length(server: SandboxServer) -> None:
    params = f"7/null/OGANGI/13056708084/{b64('Your PIN')}/6"
    reply = call(server, "tools/sendSMSPinMobileNumberConfirm", params)
    pin = reply.findtext("result/PinSMSConfirmation/pin")
    assert pin.isdigit() and len(pin) == 6
    assert SandboxControl.of(server).state()["messages"][0]["pin"] == pin


def test_send_pin_refuses_a_length_over_twelve(server: SandboxServer) -> None:
    reply = call(server, "tools/sendSMSPinMobileNumberConfirm", f"7/null/OGANGI/13056708084/{b64('PIN')}/13")
    assert reply.findtext("status") == "ERROR"
    assert reply.findtext("description").startswith("Internal error, ")


def test_bad_number_is_a_bad_to_message_in_an_ok_reply(server: SandboxServer) -> None:
    reply = send_sms(server, number="12ab")
    assert reply.findtext("status") == "OK"
    assert reply.findtext("result/messages/message/status") == "BAD_TO"


def test_undecodable_base64_text_is_a_bad_encoding_message(server: SandboxServer) -> None:
    reply = call(server, "tools/sendSMS", f"7/null/OGANGI/{b64('13056708084')}/%21%21%21")
    assert reply.findtext("result/messages/message/status") == "BAD_ENCODING"


def test_unknown_instance_is_an_internal_error(server: SandboxServer) -> None:
    reply = call(server, "sendMT", f"8/OGANGI/null/13056708084/{b64('hello')}")
    verdict = (reply.findtext("status"), reply.findtext("description"))
    assert verdict == ("ERROR", "Internal error, unknown instance")


def test_fire_message_get_is_listed_by_get_mo_messages(server: SandboxServer) -> None:
    fired = call(server, "fireMessage", f"7/1200000001/{b64('Test qa API fireMessage.')}")
    listing = call(server, "tools/getMOMessages", "7/1/10/from=1200000001")
    assert fired.findtext("result/fireMessage/text") == "Test qa API fireMessage."
    assert listing.findtext("result/MOMessageList/MOMessage/text") == "Test qa API fireMessage."


def test_fire_message_post_takes_a_json_descriptor(server: SandboxServer) -> None:
    descriptor = {"mobileNumber": "1200000002", "text": "STOP please", "carrier": "Digitel"}
    reply = httpx.post(signed_url(server.url, "fireMessage", "7"), json=descriptor)
    listing = call(server, "tools/getMOMessages", "7/1/10/carrier=Digitel&from=1200000002")
    assert fromstring(reply.content).findtext("result/fireMessage/mobileNumber") == "1200000002"
    mo = listing.find("result/MOMessageList/MOMessage")
    assert [mo.findtext(t) for t in ("text", "keyword", "carrier")] == ["STOP please", "STOP", "Digitel"]


def test_get_mo_messages_lists_fields_in_seed_order(server: SandboxServer) -> None:
    mo = call(server, "tools/getMOMessages", "7/1/1/order=asc").find("result/MOMessageList/MOMessage")
    assert [child.tag for child in mo] == ["text", "from", "to", "encoding", "keyword", "carrier", "sendDate"]


def test_get_mo_messages_applies_several_filters_a_keyword_regex_and_desc_order(
    server: SandboxServer,
) -> None:
    search = "from=58123456789,584161112233&keyword=%5EOGANGI%20&order=desc"
    listing = call(server, "tools/getMOMessages", f"7/1/10/{search}").find("result/MOMessageList")
    assert listing.findtext("records") == "2"
    assert [mo.findtext("text") for mo in listing.findall("MOMessage")] == ["OGANGI promo", "OGANGI TEST"]


def test_get_mo_messages_pages_and_counts_every_match(server: SandboxServer) -> None:
    pages = [call(server, "tools/getMOMessages", f"7/{page}/3/order=asc") for page in (1, 2)]
    assert [p.findtext("result/MOMessageList/records") for p in pages] == ["4", "4"]
    assert [len(p.findall("result/MOMessageList/MOMessage")) for p in pages] == [3, 1]


def test_get_mo_messages_keyword_may_hold_an_encoded_slash(server: SandboxServer) -> None:
    call(server, "fireMessage", f"7/1200000003/{b64('price 1/2 off')}")
    listing = call(server, "tools/getMOMessages", "7/1/10/keyword=1%2F2")
    assert listing.findtext("result/MOMessageList/MOMessage/text") == "price 1/2 off"


def test_get_mo_messages_refuses_a_broken_regex(server: SandboxServer) -> None:
    reply = call(server, "tools/getMOMessages", "7/1/10/keyword=%28unclosed")
    assert reply.findtext("status") == "ERROR"


def test_get_mo_messages_refuses_an_unknown_search_field(server: SandboxServer) -> None:
    reply = call(server, "tools/getMOMessages", "7/1/10/colour=red")
    assert reply.findtext("status") == "ERROR"


# --- signature ---------------------------------------------------------------------------------


def test_wrong_private_key_is_a_bad_signature(server: SandboxServer) -> None:
    reply = call(server, "sendMT", f"7/OGANGI/null/13056708084/{b64('x')}", key="not-the-key")
    assert (reply.findtext("status"), reply.findtext("description")) == (
        "BAD_SIGNATURE", "Invalid signature, access denied"
    )


def test_wrong_public_key_is_a_bad_signature(server: SandboxServer) -> None:
    reply = call(server, "sendMT", f"7/OGANGI/null/13056708084/{b64('x')}", public="someone-else")
    assert reply.findtext("status") == "BAD_SIGNATURE"


def test_tampered_parameter_is_a_bad_signature_and_sends_nothing(server: SandboxServer) -> None:
    url = signed_url(server.url, "sendMT", f"7/OGANGI/null/13056708084/{b64('x')}")
    reply = httpx.get(url.replace("/13056708084/", "/13056708085/"))
    assert fromstring(reply.content).findtext("status") == "BAD_SIGNATURE"
    assert SandboxControl.of(server).state()["messages"] == []


def test_signature_covers_padding_as_sent(server: SandboxServer) -> None:
    url = signed_url(server.url, "tools/sendSMS", f"7/null/OGANGI/{b64('13056708084')}/{b64('hi')}")
    reply = httpx.get(url.replace("aGk=/", "aGk/"))
    assert fromstring(reply.content).findtext("status") == "BAD_SIGNATURE"


# --- lifecycle ---------------------------------------------------------------------------------


def test_sent_message_reaches_the_carrier_then_the_device_on_the_simulated_clock(
    server: SandboxServer,
) -> None:
    send_sms(server)
    control = SandboxControl.of(server)
    seen = [control.state()["messages"][0]["status"]]
    for seconds in (5, 25):
        control.advance(seconds)
        seen.append(control.state()["messages"][0]["status"])
    assert seen == ["SENT_TO_CARRIER", "DELIVERED_TO_CARRIER", "DELIVERED_TO_DEVICE"]


def test_failure_rate_one_ends_every_message_undelivered() -> None:
    clock = SimClock()
    with running_simulator(OgangiSimulator(clock=clock, seed=1, failure_rate=1.0), clock=clock) as server:
        send_sms(server)
        SandboxControl.of(server).advance(60)
        assert SandboxControl.of(server).state()["messages"][0]["status"] == "UNDELIVERED"


def test_bad_to_never_moves_on(server: SandboxServer) -> None:
    send_sms(server, number="123")
    SandboxControl.of(server).advance(60)
    assert SandboxControl.of(server).state()["messages"][0]["status"] == "BAD_TO"


def test_uuid_id_style_gives_uuid_ids() -> None:
    clock = SimClock()
    with running_simulator(OgangiSimulator(clock=clock, seed=1, id_style="uuid"), clock=clock) as server:
        message_id = send_sms(server).findtext("result/messages/message/id")
        assert uuid.UUID(message_id).version == 4


def test_same_seed_gives_the_same_ids_after_reset(server: SandboxServer) -> None:
    first = send_sms(server).findtext("result/messages/message/id")
    SandboxControl.of(server).reset()
    assert send_sms(server).findtext("result/messages/message/id") == first


# --- state, reset, persistence, faults ----------------------------------------------------------


def test_snapshot_lists_every_accepted_message_in_send_order_with_duplicates(server: SandboxServer) -> None:
    for text in ("one", "two", "one"):
        send_sms(server, text=text)
    assert [m["text"] for m in SandboxControl.of(server).state()["messages"]] == ["one", "two", "one"]


def test_reset_forgets_sent_messages_and_restores_the_mo_fixtures(server: SandboxServer) -> None:
    send_sms(server)
    call(server, "fireMessage", f"7/1200000001/{b64('hello')}")
    SandboxControl.of(server).reset()
    after = SandboxControl.of(server).state()
    assert (after["messages"], len(after["mo_messages"])) == ([], 4)


def test_restore_brings_back_what_snapshot_saved() -> None:
    clock = SimClock()
    original = OgangiSimulator(clock=clock, seed=3)
    with running_simulator(original, clock=clock) as server:
        send_sms(server)
        call(server, "fireMessage", f"7/1200000001/{b64('hello')}")
    copy = OgangiSimulator(clock=clock, seed=3)
    copy.restore(original.snapshot())
    assert copy.snapshot() == original.snapshot()


def test_malformed_reply_is_unparseable_xml() -> None:
    simulator = OgangiSimulator(clock=SimClock())
    body = b"<?xml version='1.0'?><response><input>x</input><status>OK</status></response>"
    with pytest.raises(ParseError):
        fromstring(simulator.malformed(body))


def test_stats_count_requests_by_route_template(server: SandboxServer) -> None:
    send_sms(server)
    stats = SandboxControl.of(server).stats()
    template = (
        "GET /rest/api/tools/sendSMS/{instanceId}/{carrier}/{from}/{mobileNumber}/{text}"
        "/{publicKey}/{signature}"
    )
    assert stats.requests == {template: 1}
