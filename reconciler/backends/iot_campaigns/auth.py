"""Bearer-token authentication for the IoT campaign manager, as a sans-I/O ``httpx.Auth`` flow.

The flow logs in with HTTP Basic at the token path when it holds no token, sends the request with
``Authorization: Bearer <token>``, and on a 401 logs in again once and resends. A refused login ends
the flow with the login's own reply, so ``BackendHttp`` reports it like any other 401/403/5xx.
Neither the password nor a token ever appears in a repr (both are ``SecretValue`` and registered
with the run's redactor).
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from reconciler.backends.iot_campaigns.replies import parse_token
from reconciler.errors import MalformedReplyError
from reconciler.secrets import Redactor, SecretValue

DEFAULT_TOKEN_PATH = "/api/tokens"


def token_url(base_url: str, token_path: str) -> httpx.URL:
    """The login URL: ``token_path`` under the backend's URL (or ``token_path`` itself if absolute)."""
    path = httpx.URL(token_path)
    if path.is_absolute_url:
        return path
    base = httpx.URL(base_url)
    joined = base.raw_path.split(b"?", 1)[0].rstrip(b"/") + b"/" + token_path.lstrip("/").encode("ascii")
    return base.copy_with(raw_path=joined)


class IotTokenAuth(httpx.Auth):
    """Basic login for a bearer token, reused until a 401 says it is no longer good."""

    requires_response_body = True

    def __init__(self, *, username: str, password: SecretValue, login_url: httpx.URL, redactor: Redactor,
                 backend: str) -> None:
        self._username = username
        self._password = password
        self._login_url = login_url
        self._redactor = redactor
        self._backend = backend
        self._token: SecretValue | None = None

    def __repr__(self) -> str:
        return f"IotTokenAuth(username={self._username!r}, login_url={str(self._login_url)!r})"

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def basic(self) -> httpx.BasicAuth:
        """The credentials of the login request."""
        return httpx.BasicAuth(self._username, self._password.reveal())

    def login_url(self) -> httpx.URL:
        return self._login_url

    def accept_token(self, token: str) -> None:
        self._token = self._redactor.register(SecretValue(token))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None:
            login = yield self._login_request()
            if not self._took_token(login):
                return
        used = self._token
        response = yield self._authorized(request)
        if response.status_code != 401:
            return
        if self._token is used:  # nobody else has logged in again meanwhile
            login = yield self._login_request()
            if not self._took_token(login):
                return
        yield self._authorized(request)

    def _login_request(self) -> httpx.Request:
        request = httpx.Request("POST", self._login_url, headers={"Accept": "application/json"})
        return next(self.basic().auth_flow(request))

    def _took_token(self, response: httpx.Response) -> bool:
        """Keep the token of a successful login; a failed login's reply becomes the call's reply."""
        if not response.is_success:
            return False
        try:
            self.accept_token(parse_token(response))
        except MalformedReplyError as exc:
            exc.backend, exc.operation, exc.not_processed = self._backend, "login", True
            raise
        return True

    def _authorized(self, request: httpx.Request) -> httpx.Request:
        assert self._token is not None
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        return request
