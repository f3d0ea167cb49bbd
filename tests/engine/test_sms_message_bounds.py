"""Every size has a bound (issue 20): a message too long for its backend, or a request that cannot even be
built, fails for that recipient alone, as ``failed`` with the reason, before anything is sent; it never
aborts the apply and is never recorded as ``unknown`` (it provably never left).

Against the real simulators over loopback HTTP; the simulators' own records show what arrived.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from reconciler.backends.ogangi import adapter as ogangi
from reconciler.backends.sms_gateway import adapter as sms_gateway
from reconciler.backends import registry
from reconciler.backends.ogangi import sms as ogangi_sms
from reconciler.backends.protocol import ConnectContext, OutgoingSms, SmsFate
from reconciler.backends.sms_gateway import sms as gateway_sms
from reconciler.engine.sms import SmsCampaignRun
from reconciler.model import BackendLimits, DesiredState, Recipient, RecipientSource, SmsCampaignSpec
from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.ogangi.app import OgangiSimulator
from reconciler.sandbox.sms_gateway.app import SmsGatewaySimulator
from reconciler.sandbox.testing import SandboxControl, running_simulator
from reconciler.sandbox.tls import generate_tls_files
from reconciler.secrets import Redactor
from reconciler.state.ledger import SendState
from tests.backends.support import gateway_spec, ogangi_spec
from tests.ledgers import writer_ledger

NOON = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
#: a fresh store sending to Ogangi (which cannot be asked what it already got) must say it takes that risk
FIRST_SEND = {"risk_duplicates": True} if "risk_duplicates" in inspect.signature(SmsCampaignRun).parameters else {}
HUGE = "x" * 200_000  # the parameter that aborted a whole apply on Ogangi with "internal error: InvalidURL"
OGANGI_LIMITS = "1,000 characters, 2,000 UTF-8 bytes and 15 SMS segments per message"
GATEWAY_LIMITS = "1,500 characters, 1,500 UTF-8 bytes and 23 SMS segments per message"


@pytest.fixture(scope="module")
def og_server() -> Iterator[SandboxServer]:
    with running_simulator(OgangiSimulator(clock=SimClock(), seed=1), clock=SimClock()) as running:
        yield running


@pytest.fixture(scope="module")
def gw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    clock = SimClock()
    tls = generate_tls_files(tmp_path_factory.mktemp("tls"))
    with running_simulator(SmsGatewaySimulator(clock=clock, seed=1), clock=clock, tls=tls) as running:
        yield running


def ctx(tmp_path: Path) -> ConnectContext:
    return ConnectContext(root=tmp_path, environ={"OG_KEY": "sandbox-private", "GW_PASSWORD": "admin"},
                          redactor=Redactor())


def og_sender(server: SandboxServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    SandboxControl.of(server).reset()
    spec = ogangi_spec(server.url, limits=BackendLimits(max_retries=2))
    return ogangi.ADAPTER.sms_sender(spec, ctx(tmp_path))


def gw_sender(server: SandboxServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    SandboxControl.of(server).reset()
    spec = gateway_spec(server.url, limits=BackendLimits(max_retries=2, timeout_seconds=5.0))
    return sms_gateway.ADAPTER.sms_sender(spec, ctx(tmp_path))


def og_received(server: SandboxServer) -> list[dict]:
    return list(SandboxControl.of(server).state()["messages"])


def gw_received(server: SandboxServer) -> list[str]:
    return sorted(m["number"] for m in SandboxControl.of(server).state()["messages"])


def test_the_senders_check_the_bounds_the_loader_checks() -> None:
    """One source: each SMS sender checks its backend descriptor's bound, the one the loader checks."""
    assert ogangi_sms.BOUND is registry.descriptor_for("ogangi").message_bound
    assert gateway_sms.BOUND is registry.descriptor_for("sms-gateway").message_bound
    assert str(ogangi_sms.BOUND) + " per message" == OGANGI_LIMITS
    assert str(gateway_sms.BOUND) + " per message" == GATEWAY_LIMITS


async def test_ogangi_a_message_over_the_bound_fails_alone_and_is_never_sent(og_server: SandboxServer,
                                                                           tmp_path: Path) -> None:
    """The 200,000-character parameter: ``failed`` with the reason, no request; its neighbours are sent."""
    sender = og_sender(og_server, tmp_path)
    try:
        receipts = [r for key, params in ((1, ("a",)), (2, (HUGE,)), (3, ("c",)))
                    for r in await sender.send("Hi #param#", [OutgoingSms(key, f"58412000000{key}", params)],
                                               sender="12345", carrier=None, ports=(), encoding=None, reports=False)]
    finally:
        await sender.aclose()
    assert [(r.key, r.fate) for r in receipts] == [(1, SmsFate.ACCEPTED), (2, SmsFate.FAILED), (3, SmsFate.ACCEPTED)]
    assert receipts[1].reason == ("not sent: the message is 200,003 characters long; at most 1,000 fit on Ogangi "
                                  f"({OGANGI_LIMITS})")
    assert sorted(m["text"] for m in og_received(og_server)) == ["Hi a", "Hi c"]


@pytest.mark.parametrize(("text", "why"), [
    ("€" * 700, "is 2,100 UTF-8 bytes long; at most 2,000 fit"),
    ("😀" * 333 + "a" * 667, "takes 20 SMS segments; at most 15 fit"),
    ("bad \ud800 surrogate", "holds U+D800, a lone surrogate, which cannot be encoded as UTF-8"),
], ids=["bytes", "segments", "lone-surrogate"])
async def test_ogangi_bytes_segments_and_unencodable_text_are_bounded_too(og_server: SandboxServer, tmp_path: Path,
                                                                         text: str, why: str) -> None:
    sender = og_sender(og_server, tmp_path)
    try:
        (receipt,) = await sender.send(text, [OutgoingSms(1, "584120000001")], sender="12345", carrier=None,
                                       ports=(), encoding=None, reports=False)
    finally:
        await sender.aclose()
    assert receipt.fate is SmsFate.FAILED
    assert receipt.reason == f"not sent: the message {why} on Ogangi ({OGANGI_LIMITS})"
    assert og_received(og_server) == []


@pytest.mark.parametrize(("sender_code", "carrier", "reason"), [
    ("12345", "c" * 70_000, "not sent: the request cannot be built (InvalidURL: URL too long)"),
    ("12\udc8045", None, "not sent: the request cannot be built (UnicodeEncodeError: 'utf-8' codec can't encode "
                         "character '\\udc80' in position 2: surrogates not allowed)"),
], ids=["url-too-long", "unencodable-sender"])
async def test_ogangi_a_request_that_cannot_be_built_is_failed_not_unknown(og_server: SandboxServer, tmp_path: Path,
                                                                          sender_code: str, carrier: str | None,
                                                                          reason: str) -> None:
    """A short message whose request httpx refuses to build (or whose parts cannot be encoded): ``failed``."""
    sender = og_sender(og_server, tmp_path)
    try:
        (receipt,) = await sender.send("Hello", [OutgoingSms(1, "584120000001")], sender=sender_code,
                                       carrier=carrier, ports=(), encoding=None, reports=False)
    finally:
        await sender.aclose()
    assert (receipt.fate, receipt.reason) == (SmsFate.FAILED, reason)
    assert og_received(og_server) == []


async def test_ogangi_apply_goes_on_and_the_ledger_says_failed(og_server: SandboxServer, tmp_path: Path) -> None:
    """Through the send-ledger engine: the apply is not aborted, the row is ``failed`` (never ``unknown``)
    with the reason, and the other recipients get their message."""
    recipients = (Recipient("584120000001", ("Mitte",)), Recipient("584120000002", (HUGE,)),
                  Recipient("584120000003", ("Pankow",)))
    spec = SmsCampaignSpec(name="notice", backend="og", text="Outage in #param#", sender="12345",
                           recipients=RecipientSource(inline=recipients, count=3))
    ledger = writer_ledger(tmp_path / "state.db")
    sender = og_sender(og_server, tmp_path)
    try:
        report = await SmsCampaignRun(spec=spec, desired=DesiredState(campaigns={"notice": spec}, root=str(tmp_path)),
                                      sender=sender, ledger=ledger, ports=(), now=lambda: NOON,
                                      **FIRST_SEND).run()  # type: ignore[arg-type]
    finally:
        await sender.aclose()
    rows = {r.recipient: (r.state, r.reason) for r in ledger.rows("og", "notice")}
    assert rows["584120000002"] == (SendState.FAILED, "not sent: the message is 200,010 characters long; at most "
                                                      f"1,000 fit on Ogangi ({OGANGI_LIMITS})")
    assert {rows[n][0] for n in ("584120000001", "584120000003")} == {SendState.ACCEPTED}
    assert (report.failed, report.unknown, report.accepted) == (1, 0, 2)
    assert sorted(m["to"] for m in og_received(og_server)) == ["584120000001", "584120000003"]


async def test_gateway_a_message_over_the_bound_fails_alone_and_the_batch_is_sent(gw_server: SandboxServer,
                                                                                  tmp_path: Path) -> None:
    """One too-long row in a batch of three: ``failed`` for it alone (the gateway would refuse the whole
    batch with 413); the other two are queued in one request."""
    sender = gw_sender(gw_server, tmp_path)
    batch = [OutgoingSms(1, "4915100000001", ("a",)), OutgoingSms(2, "4915100000002", ("y" * 1_600,)),
             OutgoingSms(3, "4915100000003", ("c",))]
    try:
        receipts = await sender.send("Hi #param#", batch, sender=None, carrier=None, ports=(0,), encoding=None,
                                     reports=False)
    finally:
        await sender.aclose()
    fates = {r.key: (r.fate, r.reason) for r in receipts}
    assert fates[2] == (SmsFate.FAILED, "not sent: the message is 1,603 characters long; at most 1,500 fit on the "
                                        f"SMS gateway ({GATEWAY_LIMITS})")
    assert {fates[1][0], fates[3][0]} == {SmsFate.ACCEPTED}
    assert gw_received(gw_server) == ["4915100000001", "4915100000003"]


async def test_gateway_a_text_over_1500_bytes_fails_every_message_without_a_request(gw_server: SandboxServer,
                                                                                   tmp_path: Path) -> None:
    sender = gw_sender(gw_server, tmp_path)
    try:
        receipts = await sender.send("€" * 600, [OutgoingSms(1, "4915100000001"), OutgoingSms(2, "4915100000002")],
                                     sender=None, carrier=None, ports=(0,), encoding=None, reports=False)
    finally:
        await sender.aclose()
    assert {(r.fate, r.reason) for r in receipts} == {
        (SmsFate.FAILED, f"not sent: the text is 1,800 UTF-8 bytes long; at most 1,500 fit on the SMS gateway "
                         f"({GATEWAY_LIMITS})")}
    assert gw_received(gw_server) == []


async def test_gateway_a_request_that_cannot_be_built_fails_its_batch(gw_server: SandboxServer, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx refusing to build the request (here: made to refuse) fails the batch as ``failed``, not ``unknown``
    and not an exception out of the apply."""
    def refuse(*args: object, **kwargs: object) -> httpx.Request:
        raise httpx.InvalidURL("URL too long")

    sender = gw_sender(gw_server, tmp_path)
    monkeypatch.setattr(httpx.AsyncClient, "build_request", refuse)
    try:
        receipts = await sender.send("Hello", [OutgoingSms(1, "4915100000001")], sender=None, carrier=None,
                                     ports=(0,), encoding=None, reports=False)
    finally:
        monkeypatch.undo()
        await sender.aclose()
    assert [(r.fate, r.reason) for r in receipts] == [
        (SmsFate.FAILED, "not sent: the request cannot be built (InvalidURL: URL too long)")]
    assert gw_received(gw_server) == []
