"""The redactor scrubs every form a secret takes in an echo of a request (``scrub``), and text a backend
sent back also by the names that carry credentials (``scrub_reply``), without eating ordinary error text."""

from __future__ import annotations

import asyncio
import base64
import html
import json
from urllib.parse import quote, quote_plus

import pytest

from reconciler.backends.http import BackendHttp
from reconciler.errors import PermanentBackendError
from reconciler.model import BackendLimits
from reconciler.secrets import REDACTED, Redactor, SecretValue

SECRET = "Pa55/w0rd+with=odd&chars~é"
USER = "ops-admin"


@pytest.fixture
def redactor() -> Redactor:
    redactor = Redactor()
    redactor.register(SecretValue(SECRET), user=USER)
    redactor.register(SecretValue("plain-secret-value"))
    return redactor


def b64(data: str, *, urlsafe: bool = False, pad: bool = True) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data.encode()).decode()
    return text if pad else text.rstrip("=")


ENCODINGS = {
    "raw": SECRET,
    "base64": b64(SECRET),
    "base64-unpadded": b64(SECRET, pad=False),
    "base64-urlsafe": b64(SECRET, urlsafe=True),
    "base64-urlsafe-unpadded": b64(SECRET, urlsafe=True, pad=False),
    "basic": b64(f"{USER}:{SECRET}"),
    "basic-unpadded": b64(f"{USER}:{SECRET}", pad=False),
    "basic-urlsafe": b64(f"{USER}:{SECRET}", urlsafe=True),
    "quote": quote(SECRET, safe=""),
    "quote-slash-safe": quote(SECRET),
    "quote-lower-hex": quote(SECRET, safe="").lower().replace("pa55", "Pa55"),
    "quote-plus": quote_plus(SECRET),
    "every-byte": "".join(f"%{b:02X}" for b in SECRET.encode()),
    "every-byte-lower": "".join(f"%{b:02x}" for b in SECRET.encode()),
    "json": json.dumps(SECRET)[1:-1],
    "html": html.escape(SECRET),
}


@pytest.mark.parametrize("form", sorted(ENCODINGS))
def test_every_encoding_of_a_secret_is_scrubbed(redactor: Redactor, form: str) -> None:
    text = f"before {ENCODINGS[form]} after"
    assert redactor.scrub(text) == f"before {REDACTED} after"


@pytest.mark.parametrize("user", ["someone-else", "a", "ab", "abc", "x" * 17])
def test_basic_credentials_of_any_user_name_are_scrubbed(redactor: Redactor, user: str) -> None:
    """Base64 of ``user:secret`` for a user we never registered: the stretch the secret becomes at any
    offset inside Base64 is scrubbed, and what is left cannot give the secret back."""
    encoded = b64(f"{user}:{SECRET}")
    scrubbed = redactor.scrub(f"Basic {encoded}")
    before, _, after = scrubbed.removeprefix("Basic ").partition(REDACTED)
    assert encoded.startswith(before) and encoded.endswith(after)
    # what is left: the user name's groups and at most the one group that mixes it with the secret's first
    # bytes, and the secret's last group (at most 2 bytes of the secret at each end)
    assert len(before) <= 4 * (len(user) + 1 + 2) // 3 + 4 and len(after) <= 4


@pytest.mark.parametrize(("reply", "kept"), [
    ("Host: x Authorization: Basic Zm9vOmJhcg== Accept: */*", "Host: x Authorization: *** Accept: */*"),
    ("Proxy-Authorization: Bearer abc.def\nCookie: sid=1; theme=dark\nUser-Agent: t",
     "Proxy-Authorization: ***\nCookie: ***\nUser-Agent: t"),
    ("X-Authentication: s3\tMobile-API-Secret: s4", "X-Authentication: ***\tMobile-API-Secret: ***"),
    ("X-Api-Key: k1 X-Auth-Token: t1 X-Session-Id: 9", "X-Api-Key: *** X-Auth-Token: *** X-Session-Id: ***"),
    ('{"authorization": "Basic Zm9v", "host": "h", "x-api-key": ["k"], "password": "p"}',
     '{"authorization": "***", "host": "h", "x-api-key": ["***"], "password": "***"}'),
    ("{'Authorization': 'Digest username=\"u\", response=\"r\"', 'Host': 'h'}", "{'Authorization': '***', 'Host': 'h'}"),
    ("GET /login?user=u&password=p1&token=t2&page=3", "GET /login?user=u&password=***&token=***&page=3"),
    ("<e><password>p</password><apiKey>k</apiKey><m>bad</m></e>", "<e><password>***</password><apiKey>***</apiKey><m>bad</m></e>"),
    ("X-Yate-Pass: s9", "X-Yate-Pass: ***"),
    ("My-Custom-Header: c1", "My-Custom-Header: ***"),
], ids=["basic", "proxy-cookie", "yate-headers", "token-key-headers", "json", "python-repr", "query", "xml",
        "pass-header", "registered-header"])
def test_credential_named_values_in_a_reply_are_scrubbed(redactor: Redactor, reply: str, kept: str) -> None:
    redactor.register_header("My-Custom-Header")
    assert redactor.scrub_reply(reply) == kept


@pytest.mark.parametrize("text", [
    "BAD_SIGNATURE: Invalid signature, access denied",
    "error_code 400: request format is not valid (bad)",
    "campaign ota-001: not found; state: STARTED",
    "reply is not JSON (application/json)",
    "TOKEN_EXPIRED: log in again",
])
def test_ordinary_error_text_is_left_alone(redactor: Redactor, text: str) -> None:
    assert redactor.scrub_reply(text) == text


def test_scrub_leaves_plans_alone_where_only_a_name_suggests_a_secret(redactor: Redactor) -> None:
    """Plans and logs are scrubbed by value only: a declared setting called ``apiToken`` stays readable."""
    text = 'settings: {"apiToken": "declared-value"} token=abc'
    assert redactor.scrub(text) == text


async def test_an_error_body_is_scrubbed_before_it_is_cut_short() -> None:
    """The client keeps 200 characters of a text error body: cutting first left half a secret behind."""
    secret = "cut-here-secret-0123456789"
    body = ("x" * 190 + " " + secret + " tail").encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 400 Bad\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    redactor = Redactor()
    redactor.register(SecretValue(secret))
    http = BackendHttp(backend="b1", base_url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}",
                       limits=BackendLimits(max_retries=0), redactor=redactor)
    try:
        with pytest.raises(PermanentBackendError) as caught:
            await http.call("GET", "/x", operation="get", idempotent=True, parse=lambda r: r)
    finally:
        await http.aclose()
        server.close()
    assert "cut-here" not in str(caught.value) and REDACTED in str(caught.value)
