"""Ogangi's request signature as a sans-I/O ``httpx.Auth``.

The client builds a method's URL without its last two segments; ``OgangiSigner`` appends
``/{publicKey}/{signature}``, where the signature is the HMAC-SHA256 (keyed with the account's
private key, lowercase hex) of the method's own path parameters: everything between the method name
and ``{publicKey}``, joined with ``/``, exactly as they appear in the URL (Base64 and percent-encoded
values in their encoded form). For the POST form of fireMessage that is ``{instanceId}`` **[ours]**.
Signing the URL as sent, rather than the values the client meant, keeps the two from drifting apart.
The private key never travels and never appears in a repr.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Generator
from urllib.parse import quote

import httpx

from reconciler.secrets import SecretValue

API_ROOT = b"/rest/api/"
TOOLS = b"tools"


def ogangi_signature(private_key: str, signed_part: str) -> str:
    """HMAC-SHA256 of ``signed_part`` keyed with ``private_key``, lowercase hex."""
    return hmac.new(private_key.encode("utf-8"), signed_part.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_part(raw_path: bytes) -> str:
    """The method's parameters in ``.../rest/api/[tools/]METHOD/p1/p2/...``: ``p1/p2/...``."""
    _, found, tail = raw_path.partition(API_ROOT)
    if not found:
        raise ValueError("not an Ogangi API path (no /rest/api/)")
    segments = tail.split(b"/")
    if segments[0] == TOOLS:
        segments = segments[1:]
    return b"/".join(segments[1:]).decode("ascii")


class OgangiSigner(httpx.Auth):
    """Appends ``/{publicKey}/{signature}`` to every request's path."""

    def __init__(self, *, public_key: str, private_key: SecretValue) -> None:
        self._public_key = public_key
        self._private_key = private_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path, separator, query = request.url.raw_path.partition(b"?")
        signature = ogangi_signature(self._private_key.reveal(), signed_part(path))
        suffix = f"/{quote(self._public_key, safe='')}/{signature}".encode("ascii")
        request.url = request.url.copy_with(raw_path=path + suffix + separator + query)
        yield request

    def __repr__(self) -> str:
        return f"OgangiSigner(public_key={self._public_key!r}, private_key={self._private_key!r})"
