"""HTTP authentication as the SMS gateways do it: Digest (MD5, ``qop=auth``, realm ``Web Server``) and
Basic, for the simulator.

Digest is implemented for real, because clients (``curl --anyauth``, ``httpx.DigestAuth``) must work
unchanged against the sandbox: nonces are issued per challenge and expire on the simulated clock; a
request's response hash is verified; each nonce count (``nc``) is accepted once per nonce, in any order
(concurrent requests overtake each other); a correct response on an expired or unknown nonce gets a
fresh challenge marked ``stale=true`` so the client retries without asking for the password again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from urllib.request import parse_http_list, parse_keqv_list

REALM = "Web Server"
MAX_NONCES = 4096


class AuthVerdict(Enum):
    """What the credentials of one request amount to."""

    ACCEPTED = "accepted"
    MISSING = "missing"
    REFUSED = "refused"
    STALE = "stale"


@dataclass
class _IssuedNonce:
    issued_at: float
    used_counts: set[int] = field(default_factory=set)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class GatewayAuthenticator:
    """Checks ``Authorization`` headers and writes ``WWW-Authenticate`` challenges."""

    def __init__(
        self,
        *,
        username: str,
        password: str,
        now: Callable[[], float],
        rng: random.Random,
        nonce_ttl_s: float = 300.0,
    ) -> None:
        self._username = username
        self._password = password
        self._now = now
        self._rng = rng
        self._nonce_ttl_s = nonce_ttl_s
        self._nonces: OrderedDict[str, _IssuedNonce] = OrderedDict()

    def forget_nonces(self) -> None:
        """Invalidate every issued nonce (clients get a ``stale`` challenge and carry on)."""
        self._nonces.clear()

    def challenge_headers(self, *, stale: bool) -> list[str]:
        """The ``WWW-Authenticate`` values of a 401: a fresh Digest challenge, then Basic."""
        nonce = f"{self._rng.getrandbits(128):032x}"
        self._nonces[nonce] = _IssuedNonce(issued_at=self._now())
        while len(self._nonces) > MAX_NONCES:
            self._nonces.popitem(last=False)
        digest = f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'
        if stale:
            digest += ", stale=true"
        return [digest, f'Basic realm="{REALM}"']

    def check(self, *, method: str, target: str, authorization: str | None) -> AuthVerdict:
        """Judge one request; ``target`` is its path with the query string, as the client sent it."""
        if not authorization:
            return AuthVerdict.MISSING
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            return self._check_basic(credentials.strip())
        if scheme.lower() == "digest":
            return self._check_digest(method, target, credentials)
        return AuthVerdict.REFUSED

    def _check_basic(self, token: str) -> AuthVerdict:
        try:
            user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return AuthVerdict.REFUSED
        if hmac.compare_digest(user, self._username) and hmac.compare_digest(password, self._password):
            return AuthVerdict.ACCEPTED
        return AuthVerdict.REFUSED

    def _check_digest(self, method: str, target: str, credentials: str) -> AuthVerdict:
        try:
            fields = parse_keqv_list(parse_http_list(credentials))
            nonce, nc, cnonce, response = fields["nonce"], fields["nc"], fields["cnonce"], fields["response"]
            count = int(nc, 16)
            well_formed = (
                fields["username"] == self._username
                and fields["realm"] == REALM
                and fields["uri"] == target
                and fields["qop"] == "auth"
                and fields.get("algorithm", "MD5").upper() == "MD5"
            )
        except (KeyError, ValueError):
            return AuthVerdict.REFUSED
        expected = self._expected_response(method, fields["uri"], nonce, nc, cnonce)
        if not well_formed or not hmac.compare_digest(expected, response.lower()):
            return AuthVerdict.REFUSED
        issued = self._nonces.get(nonce)
        if issued is None or self._now() - issued.issued_at > self._nonce_ttl_s:
            return AuthVerdict.STALE
        if count in issued.used_counts:
            return AuthVerdict.REFUSED
        issued.used_counts.add(count)
        return AuthVerdict.ACCEPTED

    def _expected_response(self, method: str, uri: str, nonce: str, nc: str, cnonce: str) -> str:
        ha1 = _md5(f"{self._username}:{REALM}:{self._password}")
        ha2 = _md5(f"{method}:{uri}")
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
