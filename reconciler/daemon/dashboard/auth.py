"""Who may see the daemon's state: the dashboard, its event stream and ``/status``.

One token (``--ui-token-env`` / ``--ui-token-file``; ``--status-token-env`` is its older name) guards all
three. Without a token they are served on a loopback address only; on any other address they answer 403,
since they show every declaration and what was observed. With a token every address requires it, as
``Authorization: Bearer <token>`` (scripts, ``/status``) or as the session cookie the login form sets
(browsers: an ``EventSource`` cannot send a header). A token is never taken from the URL, where it would
land in access logs and browser history. Comparisons are constant-time (``hmac.compare_digest``).

The cookie holds no token: it is ``EXPIRY.HMAC-SHA256(token, EXPIRY)``, valid until EXPIRY, HttpOnly and
SameSite=Strict (no other site can make a browser send it), so a leaked cookie expires and does not reveal
the token (which also opens ``/status`` to scripts). Health, readiness, metrics, webhooks (which carry
their own token) and the static assets are public; everything else is guarded (deny by default).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from reconciler.daemon.dashboard.rendering import Pages

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "reconcile_ui"
SESSION_S = 12 * 3600
FORM_BYTES = 4096  # a login form is a token and a path
FAILED_LOGIN_DELAY_S = 0.5
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
PUBLIC_PREFIXES = ("/webhooks/", "/static/")
NO_TOKEN_HINT = ("start the daemon with --ui-token-env NAME (or --ui-token-file PATH; --status-token-env is the "
                 "older name of the same token) and send Authorization: Bearer <token>")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def session_value(token: bytes, expires: int) -> str:
    digest = hmac.new(token, f"reconcile-dashboard-session:{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{digest}"


def valid_session(token: bytes, value: str, now: float) -> bool:
    expires, _, _ = value.partition(".")
    if not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(value.encode(), session_value(token, int(expires)).encode())


def local_path(candidate: str) -> str:
    """Where to go after signing in: a path on this server only (never ``//host`` or a URL)."""
    if candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate \
            and not any(ord(c) < 32 for c in candidate):
        return candidate
    return "/"


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return b""


class AccessGuard:
    """ASGI middleware in front of the daemon's app: see the module docstring."""

    def __init__(self, app: ASGIApp, *, token: str | None, loopback: bool, pages: Pages | None = None) -> None:
        self.app = app
        self.token = token.encode("utf-8", "surrogatepass") if token else None
        self.loopback = loopback
        self.pages = pages or Pages()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in ("/login", "/logout"):
            await self._account(scope, receive, send, path)
            return
        if is_public(path) or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, path)

    def _allowed(self, scope: Scope) -> bool:
        if self.token is None:
            return self.loopback
        scheme, _, credentials = _header(scope, b"authorization").partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self.token):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(_header(scope, b"cookie").decode("latin-1"))
        except Exception:  # noqa: BLE001  (a malformed Cookie header is no session)
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and valid_session(self.token, morsel.value, time.time())

    async def _refuse(self, scope: Scope, send: Send, path: str) -> None:
        if self.token is None:
            what = "/status" if path.rstrip("/") == "/status" else "the dashboard"
            await _reply(send, 403, f"{what} is not served on a non-loopback address without a token: "
                                    f"{NO_TOKEN_HINT}", json_body=path.startswith("/status"))
            return
        if path.startswith("/status") or path.startswith("/events") \
                or b"text/html" not in _header(scope, b"accept"):
            await _reply(send, 401, f"{path.split('/')[1] or 'this page'} needs Authorization: Bearer "
                                    "<the UI token> (or the dashboard's sign-in cookie)",
                         json_body=path.startswith("/status"),
                         headers=[(b"www-authenticate", b'Bearer realm="reconcile"')])
            return
        await _reply(send, 401, self.pages.login(next_path=local_path(path), failed=False), html=True)

    async def _account(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        if self.token is None:
            await _redirect(send, "/")
            return
        if path == "/logout":
            await _redirect(send, "/", cookie=f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict")
            return
        if scope.get("method") != "POST":
            await _reply(send, 200, self.pages.login(next_path="/", failed=False), html=True)
            return
        form = await _read_form(receive, scope)
        given = (form.get("token") or [""])[0].encode("utf-8", "surrogatepass")
        target = local_path((form.get("next") or ["/"])[0])
        if not hmac.compare_digest(given, self.token):
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
            await _reply(send, 401, self.pages.login(next_path=target, failed=True), html=True)
            return
        expires = int(time.time()) + SESSION_S
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        await _redirect(send, target, cookie=f"{COOKIE}={session_value(self.token, expires)}; Max-Age={SESSION_S}; "
                                             f"Path=/; HttpOnly; SameSite=Strict{secure}")


async def _read_form(receive: Receive, scope: Scope) -> dict[str, list[str]]:
    """An urlencoded form of at most ``FORM_BYTES`` (a bigger one reads as empty: no login)."""
    if b"application/x-www-form-urlencoded" not in _header(scope, b"content-type"):
        return {}
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > FORM_BYTES:
            return {}
        if not message.get("more_body"):
            break
    return parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)


SECURITY_HEADERS = [
    (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                  b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
]


async def _reply(send: Send, status: int, text: str, *, json_body: bool = False, html: bool = False,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    if json_body:
        body, kind = json.dumps({"error": text}).encode(), b"application/json"
    elif html:
        body, kind = text.encode(), b"text/html; charset=utf-8"
    else:
        body, kind = (text + "\n").encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str, *, cookie: str | None = None) -> None:
    headers = [(b"location", location.encode("utf-8")), (b"content-length", b"0"), *SECURITY_HEADERS]
    if cookie is not None:
        headers.append((b"set-cookie", cookie.encode("latin-1")))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
