"""IoT campaign manager auth: the token flow against the sandbox (expiry, refused credentials, missing
permissions, bad configuration) and the password and tokens never showing in reprs, errors or logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from reconciler.actions import Action, Verb
from reconciler.backends.iot_campaigns.adapter import ADAPTER, IotCampaignsWriter, connect
from reconciler.errors import AuthError, PermanentBackendError, SecretError
from reconciler.model import BackendSpec, Kind, ResourceKey
from reconciler.sandbox.harness import SandboxServer
from reconciler.sandbox.testing import SandboxControl
from reconciler.secrets import SecretRef
from tests.backends.test_adapter_iot_campaigns_support import (
    PASSWORD,
    VIEWER,
    VIEWER_PASSWORD,
    backend_spec,
    connect_context,
    iot_sandbox,
)

CREATE = Action("t/create", Verb.CREATE_CAMPAIGN, ResourceKey(Kind.CAMPAIGN, "c"), "b1",
                {"name": "c", "description": "", "packages": [], "settings": {}})
WRONG_PASSWORD = "wrong-but-secret-password"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with iot_sandbox() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(server: SandboxServer) -> None:
    SandboxControl.of(server).reset()


async def test_expired_token_is_renewed_once_and_the_call_succeeds(server: SandboxServer, tmp_path: Path) -> None:
    writer = ADAPTER.writer(backend_spec(server.url), connect_context(tmp_path))
    await writer.apply(CREATE)
    SandboxControl.of(server).advance(3601)
    produced = await writer.apply(CREATE)
    await writer.aclose()
    assert bool(produced["campaign_id"])
    sandbox = SandboxControl.of(server)
    assert (sandbox.requests("POST /api/tokens"), sandbox.requests("POST /api/campaigns")) == (2, 3)


async def test_token_is_reused_while_it_is_valid(server: SandboxServer, tmp_path: Path) -> None:
    writer = ADAPTER.writer(backend_spec(server.url), connect_context(tmp_path))
    for _ in range(3):
        await writer.apply(CREATE)
    await writer.aclose()
    assert SandboxControl.of(server).requests("POST /api/tokens") == 1


async def test_wrong_password_is_an_auth_error_and_nothing_is_created(server: SandboxServer,
                                                                      tmp_path: Path) -> None:
    writer = ADAPTER.writer(backend_spec(server.url), connect_context(tmp_path, password=WRONG_PASSWORD))
    with pytest.raises(AuthError) as raised:
        await writer.apply(CREATE)
    await writer.aclose()
    created = SandboxControl.of(server).state()["campaigns"]
    assert (raised.value.status, raised.value.operation, created) == (401, "login", [])


async def test_missing_permission_is_an_auth_error_naming_it(server: SandboxServer, tmp_path: Path) -> None:
    writer = ADAPTER.writer(backend_spec(server.url, user=VIEWER), connect_context(tmp_path, password=VIEWER_PASSWORD))
    with pytest.raises(AuthError, match="Create Campaign") as raised:
        await writer.apply(CREATE)
    await writer.aclose()
    assert raised.value.status == 403


def test_unset_password_variable_is_a_secret_error(server: SandboxServer, tmp_path: Path) -> None:
    context = connect_context(tmp_path)
    with pytest.raises(SecretError, match="B1_SECRET"):
        ADAPTER.reader(backend_spec(server.url), type(context)(tmp_path, {}, context.redactor))


def test_password_from_a_file_is_resolved_against_the_root(server: SandboxServer, tmp_path: Path) -> None:
    (tmp_path / "iot.pw").write_text(PASSWORD + "\n")
    spec = BackendSpec("b1", "iot-campaigns", server.url,
                       auth={"username": "ops", "password": SecretRef(file="iot.pw")})
    context = connect_context(tmp_path)
    ADAPTER.reader(spec, context)
    assert PASSWORD in context.redactor.values


@pytest.mark.parametrize("auth", [{"password": SecretRef(env="B1_SECRET")}, {"username": "ops", "password": PASSWORD}])
def test_incomplete_auth_is_refused(server: SandboxServer, tmp_path: Path, auth: dict[str, Any]) -> None:
    spec = BackendSpec("b1", "iot-campaigns", server.url, auth=auth)
    with pytest.raises(PermanentBackendError, match="auth"):
        ADAPTER.reader(spec, connect_context(tmp_path))


def test_page_size_option_must_be_a_positive_number(server: SandboxServer, tmp_path: Path) -> None:
    with pytest.raises(PermanentBackendError, match="pageSize"):
        ADAPTER.reader(backend_spec(server.url, options={"pageSize": 0}), connect_context(tmp_path))


# --- secrets stay secret ---------------------------------------------------------------------------


async def test_neither_password_nor_token_appears_in_any_repr(server: SandboxServer, tmp_path: Path) -> None:
    context = connect_context(tmp_path)
    writer: IotCampaignsWriter = ADAPTER.writer(backend_spec(server.url), context)
    reader = ADAPTER.reader(backend_spec(server.url), context)
    await writer.apply(CREATE)
    token = SandboxControl.of(server).state()["tokens"][0]["token"]
    shown = " ".join(repr(x) for x in (writer, reader, writer.client, writer.client.http.client.auth))
    await writer.aclose()
    await reader.aclose()
    assert PASSWORD not in shown and token not in shown


async def test_refused_login_error_does_not_show_the_password(server: SandboxServer, tmp_path: Path) -> None:
    writer = ADAPTER.writer(backend_spec(server.url), connect_context(tmp_path, password=WRONG_PASSWORD))
    with capture_logs() as logs, pytest.raises(AuthError) as raised:
        await writer.apply(CREATE)
    await writer.aclose()
    assert WRONG_PASSWORD not in f"{raised.value} {raised.value.message} {logs!r}"


async def test_tokens_are_registered_with_the_redactor(server: SandboxServer, tmp_path: Path) -> None:
    context = connect_context(tmp_path)
    client = connect(backend_spec(server.url), context)
    await client.ensure_token()
    await client.aclose()
    token = SandboxControl.of(server).state()["tokens"][0]["token"]
    assert context.redactor.scrub(f"token={token}") == "token=***"
