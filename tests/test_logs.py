"""Log events are scrubbed of every secret the run knows, wherever the secret appears in the event."""

from __future__ import annotations

import io
import json

import structlog

from reconciler.logs import configure_logging
from reconciler.secrets import Redactor, SecretValue


def test_secrets_are_redacted_from_messages_fields_and_nested_values() -> None:
    redactor = Redactor()
    redactor.register(SecretValue("p4ss-w0rd-xyz"))
    out = io.StringIO()
    configure_logging(redactor=redactor, level="debug", stream=out, json=True)
    structlog.get_logger("t").error("login failed for p4ss-w0rd-xyz", detail={"auth": ["user", "p4ss-w0rd-xyz"]})
    line = out.getvalue()
    assert "p4ss-w0rd-xyz" not in line
    assert json.loads(line)["detail"] == {"auth": ["user", "***"]}


def test_events_below_the_level_are_not_written() -> None:
    out = io.StringIO()
    configure_logging(redactor=Redactor(), level="warning", stream=out, json=True)
    structlog.get_logger("t").info("quiet")
    structlog.get_logger("t").warning("loud")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["loud"]
