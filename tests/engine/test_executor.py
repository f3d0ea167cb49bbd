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


class RecordingWriter:
    """Performs nothing remote; records the order actions start in and the most in flight at once."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.fail = fail
        self.started: list[str] = []
        self.in_flight = self.most_in_flight = 0

    async def apply(self, action: Action) -> Mapping[str, Any]:
        self.started.append(action.id)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if action.id in self.fail:
                raise RuntimeError("refused")
            return {"campaign_id": 1} if action.verb is Verb.CREATE_CAMPAIGN else {}
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        return None


def chain_plan(campaigns: int, gateways: int) -> Plan:
    """Per campaign: create -> add-gateways -> one schedule per gateway -> start (waits on all schedules)."""
    actions: list[Action] = []
    for c in range(campaigns):
        name = f"c{c}"
        create, add = f"{name}/create", f"{name}/add"
        schedules = [f"{name}/schedule/{g}" for g in range(gateways)]
        actions += [action(create, Verb.CREATE_CAMPAIGN, name),
                    action(add, Verb.ADD_GATEWAYS, name, depends_on=(create,)),
                    *(action(s, Verb.SCHEDULE_GATEWAY, name, depends_on=(add,)) for s in schedules),
                    action(f"{name}/start", Verb.START_CAMPAIGN, name, depends_on=(add, *schedules))]
    return Plan(actions=tuple(actions))


async def test_every_action_starts_after_all_it_depends_on_and_outcomes_keep_plan_order() -> None:
    writer, plan = RecordingWriter(), chain_plan(3, 5)
    report = await Executor(writers={"iot": writer}, store=None, redactor=Redactor()).run(plan)
    position = {id_: n for n, id_ in enumerate(writer.started)}
    assert all(position[dep] < position[a.id] for a in plan.actions for dep in a.depends_on)
    assert [o.action.id for o in report.outcomes] == [a.id for a in plan.actions] and report.ok


async def test_a_failure_skips_its_dependents_transitively_and_names_the_first_failed_dependency() -> None:
    writer = RecordingWriter(fail=frozenset({"c0/schedule/2"}))
    done: list[str] = []

    class Progress:
        def planned(self, actions: int, messages: int) -> None: ...
        def done(self, outcome: Any) -> None: done.append(outcome.action.id)
        def sent(self, messages: int) -> None: ...

    plan = chain_plan(2, 3)
    extra = action("c0/after-start", Verb.UPDATE_CAMPAIGN, "c0", depends_on=("c0/start",))
    plan = Plan(actions=(*plan.actions, extra))
    report = await Executor(writers={"iot": writer}, store=None, redactor=Redactor(), progress=Progress()).run(plan)
    by_id = {o.action.id: o for o in report.outcomes}
    assert by_id["c0/schedule/2"].status is OutcomeStatus.FAILED
    assert by_id["c0/start"].status is OutcomeStatus.SKIPPED
    assert by_id["c0/start"].message == "skipped: c0/schedule/2 did not succeed"
    assert by_id["c0/after-start"].message == "skipped: c0/start did not succeed"
    assert "c0/start" not in writer.started and "c0/after-start" not in writer.started
    assert all(by_id[f"c1/{s}"].status is OutcomeStatus.SUCCEEDED for s in ("create", "add", "start"))
    assert sorted(done) == sorted(a.id for a in plan.actions)  # progress hears of every action once


async def test_no_more_actions_of_a_backend_are_in_flight_than_its_workers() -> None:
    writer = RecordingWriter()
    report = await Executor(writers={"iot": writer}, store=None, redactor=Redactor(),
                            workers_per_backend=4).run(chain_plan(2, 50))
    assert report.ok and writer.most_in_flight == 4


async def test_a_large_plan_finishes_with_one_outcome_per_action() -> None:
    writer = RecordingWriter(fail=frozenset({"c3/add"}))
    plan = chain_plan(20, 1_000)
    report = await Executor(writers={"iot": writer}, store=None, redactor=Redactor()).run(plan)
    counts = {s: len(report.by_status(s)) for s in OutcomeStatus}
    assert len(report.outcomes) == len(plan.actions) == 20_060
    assert counts[OutcomeStatus.FAILED] == 1 and counts[OutcomeStatus.SKIPPED] == 1_001
    assert counts[OutcomeStatus.SUCCEEDED] == 20_060 - 1_002 and len(writer.started) == 20_060 - 1_001


async def test_a_dependency_cycle_or_an_unknown_dependency_is_refused_instead_of_waiting_forever() -> None:
    loop_plan = Plan(actions=(action("a", Verb.UPDATE_CAMPAIGN, "x", depends_on=("b",)),
                              action("b", Verb.UPDATE_CAMPAIGN, "x", depends_on=("a",))))
    with pytest.raises(ValueError, match="dependency cycle"):
        await Executor(writers={"iot": RecordingWriter()}, store=None, redactor=Redactor()).run(loop_plan)
    dangling = Plan(actions=(action("a", Verb.UPDATE_CAMPAIGN, "x", depends_on=("gone",)),))
    with pytest.raises(ValueError, match="gone"):
        await Executor(writers={"iot": RecordingWriter()}, store=None, redactor=Redactor()).run(dangling)


async def test_cancelling_the_run_cancels_the_actions_in_flight_and_leaves_no_worker_behind() -> None:
    """What SIGTERM does to a pass: its task is cancelled while actions wait on their backend."""
    entered, cancelled = asyncio.Event(), []

    class HangingWriter(RecordingWriter):
        async def apply(self, action: Action) -> Mapping[str, Any]:
            entered.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(action.id)
                raise
            return {}

    before = asyncio.all_tasks()
    run = asyncio.create_task(Executor(writers={"iot": HangingWriter()}, store=None, redactor=Redactor(),
                                       workers_per_backend=3).run(chain_plan(1, 10)))
    await entered.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert cancelled == ["c0/create"] and asyncio.all_tasks() == before
