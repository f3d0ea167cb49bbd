"""The executor turns any exception of an action into that action's outcome: the other actions are applied
and recorded in the (real, SQLite) state store, only the failed action's dependents are skipped, and the
log says what kind of exception it was without any secret. A lost lease and cancellation stop the run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from reconciler.actions import Action, Produced, Verb
from reconciler.engine.execute import Executor, OutcomeStatus
from reconciler.engine.store_access import open_writer
from reconciler.model import Kind, ResourceKey
from reconciler.planner.plan import Plan
from reconciler.secrets import Redactor, SecretValue
from reconciler.state.lease import LeaseLostError
from reconciler.state.store import Store

SECRET = "s3cret-token-of-this-run"


class CrashingWriter:
    """A writer that performs nothing remote: it records what it applied, and raises ``error`` for the
    action with id ``crash``."""

    def __init__(self, crash: str, error: BaseException) -> None:
        self.crash = crash
        self.error = error
        self.applied: list[str] = []

    async def apply(self, action: Action) -> Mapping[str, Any]:
        await asyncio.sleep(0)  # let the other actions interleave, as real requests do
        if action.id == self.crash:
            raise self.error
        self.applied.append(action.id)
        return {"campaign_id": 100 + len(self.applied)} if action.verb is Verb.CREATE_CAMPAIGN else {}

    async def aclose(self) -> None:
        return None


def action(id_: str, verb: Verb, campaign: str, *, depends_on: tuple[str, ...] = ()) -> Action:
    params: dict[str, Any] = {"name": campaign} if verb is Verb.CREATE_CAMPAIGN else {"campaign_id": 7}
    return Action(id_, verb, ResourceKey(Kind.CAMPAIGN, campaign), "iot", params, depends_on)


PLAN = Plan(actions=(
    action("create-alpha", Verb.CREATE_CAMPAIGN, "alpha"),
    action("update-beta", Verb.UPDATE_CAMPAIGN, "beta"),
    action("start-beta", Verb.START_CAMPAIGN, "beta", depends_on=("update-beta",)),
    action("create-gamma", Verb.CREATE_CAMPAIGN, "gamma"),
))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_writer(f"sqlite:///{tmp_path / 'state.db'}", base_dir=tmp_path, command="test")
    yield opened
    opened.close()


def executor(writer: CrashingWriter, store: Store) -> Executor:
    redactor = Redactor()
    redactor.register(SecretValue(SECRET))
    return Executor(writers={"iot": writer}, store=store.state, redactor=redactor)


async def test_an_unexpected_exception_fails_its_action_and_the_others_are_applied(store: Store) -> None:
    writer = CrashingWriter("update-beta", RuntimeError(f"unforeseen reply field, token={SECRET}"))
    with capture_logs() as logs:
        report = await executor(writer, store).run(PLAN)
    statuses = {o.action.id: o.status for o in report.outcomes}
    assert statuses == {"create-alpha": OutcomeStatus.SUCCEEDED, "update-beta": OutcomeStatus.FAILED,
                        "start-beta": OutcomeStatus.SKIPPED, "create-gamma": OutcomeStatus.SUCCEEDED}
    assert sorted(writer.applied) == ["create-alpha", "create-gamma"]
    assert {e.name for e in store.view().inventory} == {"alpha", "gamma"}  # recorded as they succeeded
    failed = next(o for o in report.outcomes if o.action.id == "update-beta")
    assert failed.message.startswith("unexpected RuntimeError: unforeseen reply field") and not failed.permanent
    crashed = [e for e in logs if e["event"] == "action.crashed"]
    assert len(crashed) == 1 and crashed[0]["error_type"] == "RuntimeError"
    assert crashed[0]["at"].startswith("test_executor.py:") and crashed[0]["at"].endswith(" in apply")
    assert SECRET not in repr(logs) and SECRET not in repr(report)


async def test_a_failure_to_resolve_what_an_earlier_action_produced_is_that_actions_outcome(store: Store) -> None:
    """A bug of the kind a ``Produced`` field the writer never returned would be (a KeyError)."""
    needs_missing = Action("start-alpha", Verb.START_CAMPAIGN, ResourceKey(Kind.CAMPAIGN, "alpha"), "iot",
                           {"campaign_id": Produced("create-alpha", "no_such_field")}, ("create-alpha",))
    writer = CrashingWriter("none", RuntimeError())
    report = await executor(writer, store).run(Plan(actions=(PLAN.actions[0], needs_missing, PLAN.actions[3])))
    assert [o.status for o in report.outcomes] == [OutcomeStatus.SUCCEEDED, OutcomeStatus.FAILED,
                                                   OutcomeStatus.SUCCEEDED]
    assert report.outcomes[1].message.startswith("unexpected KeyError")


@pytest.mark.parametrize("error", [LeaseLostError("another writer took the store over"), asyncio.CancelledError()],
                         ids=["lease-lost", "cancelled"])
async def test_a_lost_lease_or_cancellation_stops_the_run_instead_of_becoming_an_outcome(
    store: Store, error: BaseException
) -> None:
    writer = CrashingWriter("update-beta", error)
    with pytest.raises(type(error)):
        await executor(writer, store).run(PLAN)
