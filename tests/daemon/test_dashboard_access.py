"""Who may see the dashboard, its event stream and /status: loopback without a token; otherwise only with the
UI token, as a Bearer header or the sign-in cookie, never from the URL. The guard alone (``AccessGuard`` over a
small app), then a real daemon on all interfaces."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from reconciler.daemon.dashboard.auth import COOKIE, SESSION_S, AccessGuard, session_value
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls
from tests.daemon.daemon_process import DaemonProcess, eventually
from tests.daemon.test_status_guard import ListeningDaemon
from tests.engine import sandbox_repo as repo

TOKEN = "ui-token-for-tests-ü"
HTML = {"accept": "text/html"}


def app() -> Starlette:
    async def page(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("the overview")

    async def status(request):  # type: ignore[no-untyped-def]
        return JSONResponse({"resources": ["Campaign/rollout"]})

    return Starlette(routes=[Route("/", page), Route("/events/overview", page), Route("/status", status),
                             Route("/healthz", page), Route("/static/dashboard.css", page)])


def client(*, token: str | None, loopback: bool) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=AccessGuard(app(), token=token, loopback=loopback))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", follow_redirects=False)


async def test_on_loopback_without_a_token_everything_is_served() -> None:
    web = client(token=None, loopback=True)
    assert [(await web.get(p)).status_code for p in ("/", "/events/overview", "/status")] == [200, 200, 200]


async def test_on_another_address_without_a_token_only_the_public_paths_are_served() -> None:
    web = client(token=None, loopback=False)
    for path in ("/", "/events/overview", "/status", "/anything"):
        reply = await web.get(path, headers=HTML)
        assert reply.status_code == 403 and "--ui-token-env" in reply.text and "the overview" not in reply.text
    assert (await web.get("/status")).json()["error"].startswith("/status is not served")
    assert [(await web.get(p)).status_code for p in ("/healthz", "/static/dashboard.css")] == [200, 200]


async def test_with_a_token_the_bearer_header_opens_every_guarded_path() -> None:
    web = client(token=TOKEN, loopback=True)
    bearer = {"authorization": b"Bearer " + TOKEN.encode()}
    for path in ("/", "/events/overview", "/status"):
        assert (await web.get(path, headers=bearer)).status_code == 200  # type: ignore[arg-type]
        assert (await web.get(path, headers={"authorization": "Bearer wrong"})).status_code == 401
    assert (await web.get("/status")).headers["www-authenticate"].startswith("Bearer")


async def test_a_token_in_the_url_is_not_accepted() -> None:
    web = client(token="plain-token", loopback=False)
    for query in ("token=plain-token", "access_token=plain-token", "ui_token=plain-token"):
        assert (await web.get(f"/?{query}", headers=HTML)).status_code == 401
        assert (await web.get(f"/events/overview?{query}")).status_code == 401


async def test_a_browser_without_a_session_gets_the_sign_in_form_and_no_data() -> None:
    reply = await client(token=TOKEN, loopback=False).get("/campaigns/x", headers=HTML)
    assert reply.status_code == 401 and 'type="password"' in reply.text and "the overview" not in reply.text
    assert 'name="next" value="/campaigns/x"' in reply.text


async def sign_in(web: httpx.AsyncClient, token: str, next_path: str = "/") -> httpx.Response:
    return await web.post("/login", data={"token": token, "next": next_path})


async def test_signing_in_sets_an_httponly_strict_cookie_that_holds_no_token() -> None:
    web = client(token=TOKEN, loopback=False)
    reply = await sign_in(web, TOKEN, "/history")
    assert (reply.status_code, reply.headers["location"]) == (303, "/history")
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and f"Max-Age={SESSION_S}" in cookie
    assert TOKEN not in cookie and "ui-token" not in cookie
    assert (await web.get("/", headers=HTML)).text == "the overview"  # the client keeps the cookie
    assert (await web.get("/events/overview")).status_code == 200
    assert (await web.get("/logout")).status_code == 303
    web.cookies.clear()
    assert (await web.get("/", headers=HTML)).status_code == 401


async def test_a_wrong_token_a_forged_or_an_expired_cookie_opens_nothing() -> None:
    web = client(token=TOKEN, loopback=False)
    refused = await sign_in(web, "not-the-token")
    assert refused.status_code == 401 and "not the right one" in refused.text and "set-cookie" not in refused.headers
    expired = session_value(TOKEN.encode(), int(time.time()) - 1)
    forged = session_value(b"another-token", int(time.time()) + 3600)
    for value in (expired, forged, "9999999999.00", "garbage", ""):
        web.cookies.set(COOKIE, value)
        assert (await web.get("/", headers=HTML)).status_code == 401, value


async def test_after_signing_in_the_browser_only_goes_to_a_path_on_this_server() -> None:
    web = client(token=TOKEN, loopback=False)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "history"):
        assert (await sign_in(web, TOKEN, target)).headers["location"] == "/"


async def test_an_oversized_sign_in_form_is_refused() -> None:
    web = client(token=TOKEN, loopback=False)
    reply = await web.post("/login", data={"token": TOKEN, "padding": "x" * 5000})
    assert reply.status_code == 401 and "set-cookie" not in reply.headers


def test_naming_two_different_tokens_is_an_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "reconciler", "watch", "--ui-token-env", "A", "--status-token-env",
                             "B", "--state", f"sqlite:///{tmp_path}/s.db"], capture_output=True, text=True,
                            env={"A": "first-token-value", "B": "second-token-value", "PATH": "/usr/bin:/bin"}, timeout=60, cwd=tmp_path)
    assert result.returncode == 1 and "name different tokens" in result.stderr and "token-value" not in result.stderr


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=5, seed=8)) as running:
        SandboxControls.of(running).reset()
        yield running


def test_a_daemon_on_all_interfaces_serves_its_dashboard_only_with_the_ui_token(
        sandbox: RunningSandbox, tmp_path: Path) -> None:
    decl = repo.make_repo(tmp_path / "ops", sandbox)
    repo.write(decl, "rollout.yaml", repo.campaign_yaml("rollout", gateways=["gw-00001"]))
    daemon: DaemonProcess = ListeningDaemon(tmp_path, "0.0.0.0", str(decl), "--state", f"sqlite:///{tmp_path}/s.db",
                                            "--resync", "600", "--ui-token-env", "UI_TOKEN",
                                            env={**repo.SECRETS, "UI_TOKEN": TOKEN})
    try:
        eventually(lambda: daemon.get("/healthz").status_code == 200)  # the guard needs no pass, only the server
        assert httpx.get(daemon.url + "/", headers=HTML).status_code == 401
        assert httpx.get(daemon.url + "/status").status_code == 401
        bearer = {"authorization": b"Bearer " + TOKEN.encode()}
        page = httpx.get(daemon.url + "/", headers=bearer)  # type: ignore[arg-type]
        assert page.status_code == 200 and "<h1>Overview</h1>" in page.text
        assert "content-security-policy" in page.headers
        assert httpx.get(daemon.url + "/status", headers=bearer).status_code == 200  # type: ignore[arg-type]
        signed = httpx.post(daemon.url + "/login", data={"token": TOKEN, "next": "/"})
        assert httpx.get(daemon.url + "/", cookies=signed.cookies).status_code == 200
        assert TOKEN not in daemon.logs()
    finally:
        daemon.stop()
