"""Users, bearer tokens and permissions of the IoT campaign manager sandbox.

``POST /api/tokens`` with HTTP Basic issues an opaque token that expires on the simulated clock; every
other endpoint wants ``Authorization: Bearer <token>`` (401 otherwise) and the permission the seed
names for it (403 otherwise).
"""

from __future__ import annotations

import base64
import binascii
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox.iot_campaigns.model import ALL_PERMISSIONS, ApiError, Permission


@dataclass(frozen=True)
class SimUser:
    name: str
    password: str
    permissions: frozenset[str]


@dataclass(frozen=True)
class IssuedToken:
    value: str
    user: str
    expires_at: float


def users_from_option(users: Mapping[str, tuple[str, frozenset[str]]] | None) -> dict[str, SimUser]:
    """The ``users`` option (name -> (password, permissions)); default: ``admin``/``admin`` with all."""
    if users is None:
        return {"admin": SimUser("admin", "admin", ALL_PERMISSIONS)}
    known = set(ALL_PERMISSIONS)
    result = {}
    for name, (password, permissions) in users.items():
        unknown = sorted(set(permissions) - known)
        if unknown:
            raise ValueError(f"user {name}: unknown permissions {unknown}; known: {sorted(known)}")
        result[name] = SimUser(name, password, frozenset(permissions))
    return result


class TokenBook:
    """Issues and checks bearer tokens."""

    def __init__(self, *, users: Mapping[str, SimUser], ttl_s: float, rng: random.Random) -> None:
        self._users = dict(users)
        self._ttl_s = ttl_s
        self._rng = rng
        self._tokens: dict[str, IssuedToken] = {}

    def login(self, authorization: str | None, now: float) -> IssuedToken:
        """Check HTTP Basic credentials and issue a token (401 for anything else)."""
        name, password = _basic_credentials(authorization)
        user = self._users.get(name)
        if user is None or user.password != password:
            raise ApiError(401, "invalid user name or password")
        self._forget_expired(now)
        token = IssuedToken(f"iot-{self._rng.getrandbits(128):032x}", user.name, now + self._ttl_s)
        self._tokens[token.value] = token
        return token

    def authorize(self, authorization: str | None, now: float, permission: Permission) -> SimUser:
        """The user behind a valid bearer token who holds ``permission`` (401 / 403 otherwise)."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "a bearer token is required (POST /api/tokens)")
        token = self._tokens.get(value.strip())
        if token is None:
            raise ApiError(401, "unknown token")
        if token.expires_at <= now:
            del self._tokens[token.value]
            raise ApiError(401, "token expired")
        user = self._users.get(token.user)
        if user is None:
            raise ApiError(401, "unknown token")
        if permission.value not in user.permissions:
            raise ApiError(403, f"user {user.name} lacks the permission {permission.value!r}")
        return user

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def _forget_expired(self, now: float) -> None:
        for value in [v for v, t in self._tokens.items() if t.expires_at <= now]:
            del self._tokens[value]

    def clear(self) -> None:
        self._tokens.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        return [{"token": t.value, "user": t.user, "expiresAt": t.expires_at} for t in self._tokens.values()]

    def restore(self, data: list[dict[str, Any]]) -> None:
        self._tokens = {
            d["token"]: IssuedToken(d["token"], d["user"], float(d["expiresAt"])) for d in data
        }


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        raise ApiError(401, "HTTP Basic credentials are required")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(401, "unreadable HTTP Basic credentials") from None
    name, sep, password = decoded.partition(":")
    if not sep:
        raise ApiError(401, "unreadable HTTP Basic credentials")
    return name, password
