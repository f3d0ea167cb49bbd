"""Delivery to a real HTTP receiver on loopback: signed, each event once, retried with backoff on 5xx, 429
and a dead receiver, refused for good on other 4xx; secrets never in a log or a row."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from reconciler.engine.store_access import open_writer
from reconciler.model import DesiredState, NotificationEvent, NotificationFormat, NotificationSpec
from reconciler.backends.http import RetryPolicy
from reconciler.notify.deliver import Deliverer, DeliveryPolicy
from reconciler.notify.payload import signature_matches
from reconciler.secrets import Redactor, SecretRef
from reconciler.state.outbox import NewDelivery, Outbox
from reconciler.state.store import Store
from tests.daemon.daemon_process import free_port
from tests.notify.receiver import Receiver, running_receiver

SECRET = "whsec-Signing-Key-9f2c"
ENV = {"HOOK_SECRET": SECRET}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_writer(f"sqlite:///{tmp_path / 'state.db'}", base_dir=tmp_path, command="test")
    yield opened
    opened.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def notification(url: str | SecretRef, *, format: NotificationFormat = NotificationFormat.JSON,  # noqa: A002
                 timeout: float = 5.0) -> DesiredState:
    spec = NotificationSpec("ops", url, frozenset(NotificationEvent), format=format,
                            signing_secret=SecretRef(env="HOOK_SECRET"), timeout_seconds=timeout)
    return DesiredState(notifications={"ops": spec})


def queue(store: Store, clock: Clock, *ids: str) -> None:
    rows = [NewDelivery("ops", i, "rollout.halted", json.dumps({"id": i, "event": "rollout.halted",
                                                                  "summary": f"rollout of fw halted ({i})",
                                                                  "severity": "error"})) for i in ids]
    Outbox(store.db).enqueue(rows, now=clock())


def deliverer(store: Store, desired: DesiredState, clock: Clock, redactor: Redactor | None = None) -> Deliverer:
    return Deliverer(db=store.db, lease=store.lease, desired=lambda: desired, environ=ENV,
                     redactor=redactor or Redactor(), clock=clock, rng=random.Random(1),
                     policy=DeliveryPolicy(RetryPolicy(base_delay=2.0, max_delay=60.0, max_retry_after=3600.0),
                                           max_age=3600.0))


async def test_each_event_arrives_once_signed_with_its_id(store: Store, receiver: Receiver) -> None:
    clock = Clock()
    queue(store, clock, "ev-1", "ev-2")
    sender = deliverer(store, notification(receiver.url), clock)
    try:
        assert await sender.deliver_due() == 2
        queue(store, clock, "ev-1", "ev-3")  # ev-1 again: the same occurrence, seen by a later pass
        assert await sender.deliver_due() == 1
        assert await sender.deliver_due() == 0
    finally:
        await sender.aclose()
    assert receiver.deliveries() == ["ev-1", "ev-2", "ev-3"]
    for request in receiver.requests:
        assert signature_matches(SECRET, request.body, request.headers["x-reconciler-signature"])
        assert not signature_matches("another-key", request.body, request.headers["x-reconciler-signature"])
        assert request.headers["x-reconciler-event"] == "rollout.halted"
        assert request.json()["id"] == request.delivery
    assert Outbox(store.db).counts() == {"delivered": 3}


async def test_a_5xx_is_retried_later_with_the_same_delivery_id(store: Store, receiver: Receiver) -> None:
    clock = Clock()
    queue(store, clock, "ev-1")
    receiver.reply(503, b"busy")
    sender = deliverer(store, notification(receiver.url), clock)
    try:
        assert await sender.deliver_due() == 0
        due = Outbox(store.db).next_due()
        assert due is not None and clock() + 1.0 <= due <= clock() + 2.0  # backoff: half to full of 2 s
        assert await sender.deliver_due() == 0  # not due yet: nothing sent
        clock.now = due
        assert await sender.deliver_due() == 1
    finally:
        await sender.aclose()
    assert receiver.deliveries() == ["ev-1", "ev-1"]


async def test_retry_after_of_a_429_is_honoured(store: Store, receiver: Receiver) -> None:
    clock = Clock()
    queue(store, clock, "ev-1")
    receiver.reply(429, Retry_After="120")
    sender = deliverer(store, notification(receiver.url), clock)
    try:
        await sender.deliver_due()
    finally:
        await sender.aclose()
    assert Outbox(store.db).next_due() == clock() + 120


async def test_a_4xx_is_permanent_marked_failed_and_never_retried(store: Store, receiver: Receiver) -> None:
    clock = Clock()
    queue(store, clock, "ev-1")
    receiver.reply(400, b'{"error": "bad payload"}')
    sender = deliverer(store, notification(receiver.url), clock)
    try:
        with capture_logs() as logs:
            await sender.deliver_due()
        clock.now += 10 * 3600
        assert await sender.deliver_due() == 0
    finally:
        await sender.aclose()
    assert receiver.deliveries() == ["ev-1"]
    assert Outbox(store.db).counts() == {"failed": 1}
    [failed] = [entry for entry in logs if entry["event"] == "notification.failed"]
    assert "HTTP 400" in failed["detail"] and failed["delivery"] == "ev-1"


async def test_a_dead_receiver_is_retried_and_the_secrets_never_reach_a_log_or_the_row(store: Store) -> None:
    """The URL is a secret reference here (as a Slack webhook's is): neither it nor the signing key shows."""
    clock = Clock()
    secret_url = f"http://127.0.0.1:{free_port()}/services/T0/B0/XoXoSecretPath"
    queue(store, clock, "ev-1")
    redactor = Redactor()
    sender = Deliverer(db=store.db, lease=store.lease, desired=lambda: notification(SecretRef(env="HOOK_URL")),
                       environ={**ENV, "HOOK_URL": secret_url}, redactor=redactor, clock=clock)
    try:
        with capture_logs() as logs:
            assert await sender.deliver_due() == 0
    finally:
        await sender.aclose()
    [retry] = [entry for entry in logs if entry["event"] == "notification.retry"]
    with store.db.read() as tx:
        [(state, error)] = tx.rows("SELECT state, last_error FROM notify_outbox")
    assert state == "pending" and "ConnectError" in error
    shown = redactor.scrub(json.dumps(logs, default=str)) + json.dumps(logs, default=str) + error
    assert "XoXoSecretPath" not in shown and SECRET not in shown


async def test_a_slow_receiver_times_out_and_is_tried_again(store: Store) -> None:
    import socket

    clock = Clock()
    queue(store, clock, "ev-1")
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        sender = deliverer(store, notification(url, timeout=0.5), clock)
        try:
            assert await sender.deliver_due() == 0
        finally:
            await sender.aclose()
    with store.db.read() as tx:
        [(state, error)] = tx.rows("SELECT state, last_error FROM notify_outbox")
    assert state == "pending" and "0.5 s" in error


async def test_slack_gets_text_and_a_removed_notification_drops_its_rows(store: Store, receiver: Receiver) -> None:
    clock = Clock()
    queue(store, clock, "ev-1")
    sender = deliverer(store, notification(receiver.url, format=NotificationFormat.SLACK), clock)
    try:
        await sender.deliver_due()
    finally:
        await sender.aclose()
    assert receiver.requests[0].json() == {"text": ":red_circle: *rollout.halted* rollout of fw halted (ev-1)"}
    queue(store, clock, "ev-2")
    gone = deliverer(store, DesiredState(), clock)
    try:
        await gone.deliver_due()
    finally:
        await gone.aclose()
    assert receiver.deliveries() == ["ev-1"] and Outbox(store.db).counts() == {"delivered": 1, "failed": 1}


async def test_a_huge_error_reply_is_not_read_whole(store: Store, receiver: Receiver) -> None:
    clock = Clock()
    queue(store, clock, "ev-1")
    receiver.reply(500, b"x" * (4 * 1024 * 1024))
    sender = deliverer(store, notification(receiver.url), clock)
    try:
        assert await sender.deliver_due() == 0
    finally:
        await sender.aclose()
    with store.db.read() as tx:
        [(error,)] = tx.rows("SELECT last_error FROM notify_outbox")
    assert error.startswith("HTTP 500: xxx") and len(error) < 300


async def test_a_referenced_url_that_is_not_http_is_not_sent_nor_shown(store: Store) -> None:
    clock = Clock()
    queue(store, clock, "ev-1")
    sender = Deliverer(db=store.db, lease=store.lease, desired=lambda: notification(SecretRef(env="HOOK_URL")),
                       environ={**ENV, "HOOK_URL": "ftp://files.example.net/XoXoSecretPath"}, redactor=Redactor(),
                       clock=clock)
    try:
        assert await sender.deliver_due() == 0
    finally:
        await sender.aclose()
    with store.db.read() as tx:
        [(state, error)] = tx.rows("SELECT state, last_error FROM notify_outbox")
    assert state == "pending" and error == "the URL of Notification ops is not an http:// or https:// URL"
