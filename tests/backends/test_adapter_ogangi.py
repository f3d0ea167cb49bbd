"""The Ogangi adapter against the sandbox over real loopback HTTP (MockTransport only for XML attacks); the
faults every adapter survives alike are proved in ``test_adapter_contract.py``."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.actions import Action, Verb
from reconciler.backends.ogangi.adapter import (
    ADAPTER,
    OgangiClient,
    RequestNotBuiltError,
    SendMethod,
    connect_client,
    search_string,
)
from reconciler.backends.ogangi.signing import OgangiSigner
from reconciler.backends.protocol import ConnectContext
from reconciler.errors import AuthError, BackendError, MalformedReplyError, PermanentBackendError, SecretError
from reconciler.model import BackendLimits, BackendSpec, DesiredState, Kind, ResourceKey
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.ogangi.app import OgangiSimulator
from reconciler.sandbox.ogangi.wire import parse_search
from reconciler.sandbox.testing import SandboxControl, running_simulator
from reconciler.secrets import Redactor, SecretRef, SecretValue

PRIVATE = "sandbox-private"
FAST = BackendLimits(max_retries=2, timeout_seconds=5.0)


class RecordingTransport(httpx.AsyncBaseTransport):
    """Forwards to the real network and remembers every URL that left."""

    def __init__(self, rewrite: tuple[str, str] | None = None) -> None:
        self.urls: list[str] = []
        self._rewrite = rewrite
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._rewrite is not None:
            request.url = httpx.URL(str(request.url).replace(*self._rewrite))
        self.urls.append(str(request.url))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def spec_for(url: str, *, limits: BackendLimits = FAST, public_key: str = "sandbox-public",
             instance_id: str = "7", **options: object) -> BackendSpec:
    return BackendSpec(
        name="og1",
        type="ogangi",
        url=url,
        auth={"instanceId": instance_id, "publicKey": public_key, "privateKey": SecretRef(env="OG1_KEY")},
        limits=limits,
        options=options,
    )


def context(tmp_path: Path, key: str = PRIVATE) -> ConnectContext:
    return ConnectContext(root=tmp_path, environ={"OG1_KEY": key}, redactor=Redactor())


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    clock = SimClock()
    with running_simulator(OgangiSimulator(clock=clock, seed=11), clock=clock) as server:
        yield server


@pytest.fixture
def server(sandbox: SandboxServer) -> SandboxServer:
    SandboxControl.of(sandbox).reset()
    return sandbox


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
async def client(
    server: SandboxServer, tmp_path: Path, transport: RecordingTransport
) -> AsyncIterator[OgangiClient]:
    client = connect_client(spec_for(server.url), context(tmp_path), transport=transport)
    yield client
    await client.aclose()


def connected(server: SandboxServer, tmp_path: Path, **kwargs: Any) -> OgangiClient:
    transport = kwargs.pop("transport", None)
    key = kwargs.pop("key", PRIVATE)
    return connect_client(spec_for(server.url, **kwargs), context(tmp_path, key), transport=transport)


# --- the signer alone --------------------------------------------------------------------------


def signed(path: str, private_key: str = "k3y") -> str:
    return OgangiSigner(public_key="pub lic", private_key=SecretValue(private_key)).sign(path)


def test_signer_appends_public_key_and_hmac_of_the_method_parameters() -> None:
    path = signed("rest/api/tools/sendSMS/7/null/OG%20X/MTIzNDU2Nzg=/aGk")
    expected = hmac.new(b"k3y", b"7/null/OG%20X/MTIzNDU2Nzg=/aGk", hashlib.sha256).hexdigest()
    assert path == f"rest/api/tools/sendSMS/7/null/OG%20X/MTIzNDU2Nzg=/aGk/pub%20lic/{expected}"


def test_signer_signs_only_the_instance_for_a_method_outside_tools() -> None:
    expected = hmac.new(b"k3y", b"7", hashlib.sha256).hexdigest()
    assert signed("rest/api/fireMessage/7") == f"rest/api/fireMessage/7/pub%20lic/{expected}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=st.text(max_size=24), text=st.text(max_size=160), sender=st.text(max_size=16),
       carrier=st.none() | st.text(max_size=12), padding=st.booleans(), method=st.sampled_from(list(SendMethod)))
def test_what_the_client_signs_is_what_reaches_the_server(
        sandbox: SandboxServer, tmp_path: Path, number: str, text: str, sender: str, carrier: str | None,
        padding: bool, method: SendMethod) -> None:
    """The client signs the path string before httpx builds the request; the simulator checks the signature
    against the path it received. For any number, text, sender and carrier the server never answers
    BAD_SIGNATURE: httpx sends every character the client signed as it is."""
    async def send() -> None:
        client = connect_client(spec_for(sandbox.url, base64Padding=padding, method=method.value),
                                context(tmp_path))
        try:
            await client.send(number, text, sender=sender, carrier=carrier)
        except RequestNotBuiltError:
            pass  # a value that cannot go into a URL: nothing was sent
        except AuthError as exc:
            raise AssertionError(f"the server refused the signature: {exc}") from exc
        except BackendError:
            pass  # signature accepted; the values refused (an invalid number) or echoed unreadably (a control
            # character in the sender, which XML 1.0 cannot carry): not what this test is about
        finally:
            await client.aclose()

    asyncio.run(send())


def test_signer_repr_hides_the_private_key() -> None:
    signer = OgangiSigner(public_key="pub", private_key=SecretValue("very-secret-key"))
    assert "very-secret-key" not in repr(signer)


# --- contract through the adapter --------------------------------------------------------------


async def test_send_sms_returns_the_accepted_message(client: OgangiClient) -> None:
    message = await client.send_sms("13056708084", "OGANGI TEST MESSAGE", sender="OGANGI")
    assert (message.recipient, message.text, message.status, message.carrier_name, message.refused) == (
        "13056708084", "OGANGI TEST MESSAGE", "SENT_TO_CARRIER", "Movistar", False
    )


async def test_send_sms_message_id_is_the_simulators_id(client: OgangiClient, server: SandboxServer) -> None:
    message = await client.send_sms("13056708084", "hello", sender="OGANGI")
    assert SandboxControl.of(server).state()["messages"][0]["id"] == message.id


async def test_base64_is_padded_by_default(client: OgangiClient, transport: RecordingTransport) -> None:
    await client.send_sms("13056708084", "hi", sender="OGANGI")
    assert "/aGk=/" in transport.urls[0]


async def test_base64_padding_false_sends_unpadded_values_the_sandbox_accepts(
    server: SandboxServer, tmp_path: Path
) -> None:
    transport = RecordingTransport()
    client = connected(server, tmp_path, transport=transport, base64Padding=False)
    message = await client.send_sms("13056708084", "hi", sender="OGANGI")
    await client.aclose()
    assert ("/aGk/" in transport.urls[0], "=" in transport.urls[0], message.text) == (True, False, "hi")


async def test_sender_with_spaces_is_percent_encoded_and_still_signed_correctly(
    client: OgangiClient, server: SandboxServer
) -> None:
    await client.send_sms("13056708084", "hi", sender="OG ANGI/1")
    assert SandboxControl.of(server).state()["messages"][0]["from"] == "OG ANGI/1"


async def test_send_mt_defaults_to_the_null_carrier_and_returns_no_message(
    client: OgangiClient, transport: RecordingTransport
) -> None:
    result = await client.send_mt("13056708084", "hello", sender="OGANGI")
    assert (result, "/sendMT/7/OGANGI/null/13056708084/" in transport.urls[0]) == (None, True)


async def test_send_mt_with_flags_delivers_the_flags(client: OgangiClient, server: SandboxServer) -> None:
    await client.send_mt("13056708084", "hello", sender="OGANGI", carrier="Digitel", flags="priority")
    sent = SandboxControl.of(server).state()["messages"][0]
    assert (sent["method"], sent["carrier"], sent["flags"]) == ("sendMT", "Digitel", "priority")


async def test_carrier_option_is_the_default_carrier(server: SandboxServer, tmp_path: Path) -> None:
    client = connected(server, tmp_path, carrier="Movilnet")
    await client.send_sms("13056708084", "hello", sender="OGANGI")
    await client.aclose()
    assert SandboxControl.of(server).state()["messages"][0]["carrier"] == "Movilnet"


async def test_send_uses_the_configured_method(server: SandboxServer, tmp_path: Path) -> None:
    client = connected(server, tmp_path, method="sendMT")
    await client.send("13056708084", "hello", sender="OGANGI")
    await client.aclose()
    assert SandboxControl.of(server).state()["messages"][0]["method"] == "sendMT"


async def test_send_pin_returns_the_pin_that_was_sent(client: OgangiClient, server: SandboxServer) -> None:
    pin = await client.send_pin("13056708084", "Your PIN", sender="OGANGI", length=6)
    assert (len(pin), SandboxControl.of(server).state()["messages"][0]["pin"]) == (6, pin)


async def test_bad_number_comes_back_as_a_refused_message(client: OgangiClient) -> None:
    message = await client.send_sms("12ab", "hello", sender="OGANGI")
    assert (message.status, message.refused) == ("BAD_TO", True)


async def test_fired_message_is_found_by_get_mo_messages(client: OgangiClient) -> None:
    text = "Test qa API fireMessage."
    fired = await client.fire_message("1200000001", text)
    records, messages = await client.get_mo_messages(1, 10, from_="1200000001")
    assert (fired.text, records, [m.text for m in messages]) == (text, 1, [text])


async def test_fired_post_message_is_found_by_carrier(client: OgangiClient) -> None:
    await client.fire_message_post({"mobileNumber": "1200000002", "text": "STOP", "carrier": "Claro"})
    records, messages = await client.get_mo_messages(1, 10, carrier="Claro")
    assert (records, messages[0].sender, messages[0].keyword) == (1, "1200000002", "STOP")


async def test_get_mo_messages_with_several_filters_keyword_regex_and_desc_order(
    client: OgangiClient,
) -> None:
    records, messages = await client.get_mo_messages(
        1, 10, from_=["58123456789", "584161112233"], keyword="^OGANGI ", order="desc"
    )
    assert (records, [m.text for m in messages]) == (2, ["OGANGI promo", "OGANGI TEST"])


async def test_get_mo_messages_pages_through_every_record(client: OgangiClient) -> None:
    pages = [await client.get_mo_messages(page, 3) for page in (1, 2)]
    assert [(records, len(messages)) for records, messages in pages] == [(4, 3), (4, 1)]


values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@given(senders=st.lists(values, min_size=1, max_size=3), carrier=values)
def test_search_string_values_reach_the_simulator_intact_whatever_their_characters(
    senders: list[str], carrier: str
) -> None:
    segment = search_string(from_=senders, to=None, carrier=carrier, keyword=None, order="desc")
    search = parse_search(segment)
    assert (search.senders, search.carriers, search.order.value) == (frozenset(senders), {carrier}, "desc")


# --- signature failures ------------------------------------------------------------------------


async def test_wrong_private_key_raises_auth_error_with_the_status_as_code(
    server: SandboxServer, tmp_path: Path
) -> None:
    client = connected(server, tmp_path, key="wrong-private-key")
    with pytest.raises(AuthError) as caught:
        await client.send_sms("13056708084", "hello", sender="OGANGI")
    await client.aclose()
    assert (caught.value.code, caught.value.message) == (
        "BAD_SIGNATURE", "BAD_SIGNATURE: Invalid signature, access denied"
    )


async def test_wrong_public_key_raises_auth_error(server: SandboxServer, tmp_path: Path) -> None:
    client = connected(server, tmp_path, public_key="someone-else")
    with pytest.raises(AuthError):
        await client.get_mo_messages(1, 10)
    await client.aclose()


async def test_tampered_parameter_raises_auth_error_and_sends_nothing(
    server: SandboxServer, tmp_path: Path
) -> None:
    tamper = RecordingTransport(rewrite=("/13056708084/", "/13056708085/"))
    client = connected(server, tmp_path, transport=tamper)
    with pytest.raises(AuthError):
        await client.send_mt("13056708084", "hello", sender="OGANGI")
    await client.aclose()
    assert SandboxControl.of(server).state()["messages"] == []


async def test_unknown_instance_raises_permanent_error_with_the_description(
    server: SandboxServer, tmp_path: Path
) -> None:
    client = connected(server, tmp_path, instance_id="8")
    with pytest.raises(PermanentBackendError) as caught:
        await client.send_mt("13056708084", "hello", sender="OGANGI")
    await client.aclose()
    assert (caught.value.code, "unknown instance" in caught.value.message) == ("ERROR", True)


# --- hardened XML (byte-level replies the sandbox cannot produce) -------------------------------

XML_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<response><input>getMOMessages</input><status>OK</status><description>&lol3;</description></response>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<response><input>getMOMessages</input><status>OK</status><description>&x;</description></response>"""


def mocked_client(tmp_path: Path, body: bytes) -> OgangiClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    spec = spec_for("http://ogangi.invalid", limits=BackendLimits(max_retries=0))
    return connect_client(spec, context(tmp_path), transport=transport)


@pytest.mark.parametrize("body", [XML_BOMB, EXTERNAL_ENTITY], ids=["entity-expansion", "external-entity"])
async def test_xml_entities_are_refused_as_a_malformed_reply(tmp_path: Path, body: bytes) -> None:
    client = mocked_client(tmp_path, body)
    with pytest.raises(MalformedReplyError):
        await client.get_mo_messages(1, 10)
    await client.aclose()


async def test_carrier_element_is_accepted_in_place_of_carrier_name(tmp_path: Path) -> None:
    body = (b"<response><input>sendSMS</input><status>OK</status><description>Completed</description>"
            b"<result><messages><message><id>4b1f</id><carrier>Digitel</carrier><status>SENT</status>"
            b"</message></messages></result></response>")
    client = mocked_client(tmp_path, body)
    message = await client.send_sms("13056708084", "hello", sender="OGANGI")
    await client.aclose()
    assert (message.id, message.carrier_name) == ("4b1f", "Digitel")


# --- secrets -----------------------------------------------------------------------------------


async def test_private_key_never_appears_in_a_url_sent(
    client: OgangiClient, transport: RecordingTransport
) -> None:
    await client.send_sms("13056708084", "hello", sender="OGANGI")
    await client.get_mo_messages(1, 10, keyword="^OGANGI")
    await client.fire_message_post({"mobileNumber": "1200000002", "text": "STOP"})
    assert len(transport.urls) == 3 and not any(PRIVATE in url for url in transport.urls)


async def test_private_key_never_appears_in_reprs(server: SandboxServer, tmp_path: Path) -> None:
    ctx = context(tmp_path)
    reader, writer = ADAPTER.reader(spec_for(server.url), ctx), ADAPTER.writer(spec_for(server.url), ctx)
    shown = " ".join(repr(x) for x in (reader, writer, reader.client, reader.client.http.client.auth))
    await reader.aclose()
    await writer.aclose()
    assert PRIVATE not in shown


def test_missing_secret_names_the_reference_not_a_value(tmp_path: Path) -> None:
    ctx = ConnectContext(root=tmp_path, environ={}, redactor=Redactor())
    with pytest.raises(SecretError, match="OG1_KEY"):
        ADAPTER.reader(spec_for("http://ogangi.invalid"), ctx)


def test_private_key_written_in_clear_is_refused(tmp_path: Path) -> None:
    spec = BackendSpec(name="og1", type="ogangi", url="http://ogangi.invalid",
                       auth={"instanceId": "7", "publicKey": "p", "privateKey": "in-clear"})
    with pytest.raises(PermanentBackendError, match="privateKey"):
        ADAPTER.reader(spec, context(tmp_path))


def test_unknown_send_method_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PermanentBackendError, match="method"):
        ADAPTER.writer(spec_for("http://ogangi.invalid", method="sendPigeon"), context(tmp_path))


# --- reader, writer, traits --------------------------------------------------------------------


async def test_observe_is_readable_without_spending_a_request(server: SandboxServer, tmp_path: Path) -> None:
    reader = ADAPTER.reader(spec_for(server.url), context(tmp_path))
    observation = await reader.observe(DesiredState())
    await reader.aclose()
    assert (observation.backend, observation.readable, SandboxControl.of(server).total()) == ("og1", True, 0)


async def test_writer_refuses_every_verb_even_send_sms(server: SandboxServer, tmp_path: Path) -> None:
    writer = ADAPTER.writer(spec_for(server.url), context(tmp_path))
    action = Action(id="a1", verb=Verb.SEND_SMS, key=ResourceKey(Kind.CAMPAIGN, "c"), backend="og1")
    with pytest.raises(PermanentBackendError, match="send ledger"):
        await writer.apply(action)
    await writer.aclose()


def test_traits_declare_single_sms_sends() -> None:
    traits = ADAPTER.traits
    assert (traits.type, traits.verbs, traits.sms_queryable) == ("ogangi", frozenset({Verb.SEND_SMS}), False)
