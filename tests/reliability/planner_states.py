"""Hypothesis strategies for the planner: desired and observed states built directly as model objects.

Desired states respect what the loader guarantees (unique names, references that resolve, a gateway in
at most one assignment per campaign, windows that end after they begin, waves that grow to 100%);
everything else is free: observed campaigns with any status (known or not), gateways in any state,
duplicate names in a backend, unreadable backends, a store that remembers anything, or nothing.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from reconciler.backends import registry
from reconciler.backends.registry import adapter_for
from reconciler.model import (
    Approval,
    BackendSpec,
    Callback,
    CallbackKind,
    DesiredState,
    DistributionList,
    GatewayAssignmentSpec,
    IotCampaignSpec,
    IotRunState,
    PackageSpec,
    QuietHours,
    Recipient,
    RecipientSource,
    Rollout,
    ScheduleSpec,
    SimCampaignSpec,
    SimRunState,
    SmsCampaignSpec,
    SmsRunState,
    TimeWindow,
)
from reconciler.observed import (
    BackendObservation,
    ObservedGateway,
    ObservedIotCampaign,
    ObservedIotPackage,
    ObservedParticipant,
    ObservedSimCampaign,
    ObservedSmsPort,
    ObservedState,
)
from reconciler.planner import PlanInput, PlanOptions, PruneMode
from reconciler.planner.plan import SmsOutlook
from reconciler.state.store import InventoryEntry, StoreView

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
TRAITS = {d.type: d.adapter().traits for d in registry.BUILT_IN}  # imported once, outside any example
BACKENDS = {"iot": "iot-campaigns", "iot2": "iot-campaigns", "yate": "yateota",
            "gw": "sms-gateway", "og": "ogangi"}
GATEWAYS = tuple(f"gw-{i:05d}" for i in range(1, 11))
IOT_STATUSES = ("CREATED", "APPROVAL_NEEDED", "APPROVED", "STARTED", "STOPPED", "PAUSED", "", "started")
GATEWAY_STATES = ("INSTANTIATED", "SCHEDULED_DOWNLOAD", "DOWNLOADING", "ACTIVATION_COMPLETE", "DOWNLOAD_FAILED",
                  "ACTIVATION_FAILED", "SOMETHING_NEW")
SIM_STATES = ("started", "paused", "stopped", "finished", "", "STARTED")
PARTICIPANT_STATES = ("pending_build", "pending_send", "waiting_por", "finished", "failed", "canceled", "odd")
MSISDNS = ("491700000001", "491700000002", "491700000003")
HASHES = ("a" * 64, "b" * 64, "c" * 64)
TIMEZONES = ("Europe/Berlin", "America/Caracas", "UTC", "Asia/Kathmandu")

BOOL = st.booleans()
SUBSET = st.sets(st.integers(0, 9), max_size=4)  # indexes into a dynamic list (taken modulo its length)


def names(options: tuple[Any, ...] | list[Any]) -> st.SearchStrategy[Any]:
    return _names(tuple(options))


@functools.lru_cache(maxsize=None)
def _names(options: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(options)


def pick(draw: st.DrawFn, options: list[Any] | tuple[Any, ...], *, at_least: int = 0,
         at_most: int = 4) -> tuple[Any, ...]:
    """A subset of ``options`` (in their order), drawn as indexes so the strategy is built once."""
    if not options:
        return ()
    chosen = sorted({i % len(options) for i in draw(SUBSET)})[:at_most]
    if len(chosen) < at_least:
        chosen = list(range(min(at_least, len(options))))
    return tuple(options[i] for i in chosen)


WINDOW = st.tuples(st.integers(-72, 72), st.integers(1, 48)).map(
    lambda t: TimeWindow(NOW + timedelta(hours=t[0]), NOW + timedelta(hours=t[0] + t[1])))
MAYBE_WINDOW = st.none() | WINDOW
WAVES = st.sets(st.sampled_from((0.05, 0.1, 0.25, 0.5, 0.75)), max_size=3)
ROLLOUT = st.none() | st.builds(
    lambda steps, success, failure: Rollout(tuple(sorted(steps)) + (1.0,), success, failure),
    WAVES, st.sampled_from((0.5, 0.95, 1.0)), st.sampled_from((0.0, 0.05, 0.5)))
DISTRIBUTION = st.none() | st.builds(DistributionList, st.sampled_from(("dl-1", "dl-2")),
                                     st.none() | st.integers(60, 3600))
SETTINGS = st.dictionaries(st.sampled_from(("rebootPolicy", "mode")), st.sampled_from(("graceful", "now")), max_size=2)
QUIET = st.none() | st.builds(QuietHours, st.sampled_from(("21:00", "08:00", "00:00")),
                              st.sampled_from(("07:30", "23:59", "12:00")), st.sampled_from(TIMEZONES))
SMALL = st.integers(0, 4)
COUNTS = st.dictionaries(st.sampled_from(("dispatching", "accepted", "failed", "unknown")), st.integers(0, 3))


@st.composite
def desired_states(draw: st.DrawFn) -> DesiredState:
    backends = {name: BackendSpec(name, kind, f"http://127.0.0.1:{8700 + i}",
                                  options={"approvalRequired": draw(BOOL)} if kind == "iot-campaigns"
                                  else {})
                for i, (name, kind) in enumerate(BACKENDS.items())}
    packages = {}
    for name in pick(draw, ("p1", "p2", "p3")):
        packages[name] = PackageSpec(name, draw(names(("iot", "iot2"))), f"packages/{name}.bin",
                                     draw(names(("", "Firmware"))), draw(names(HASHES)), 100)
    campaigns: dict[str, Any] = {}
    assignments: dict[str, GatewayAssignmentSpec] = {}
    schedules: dict[str, ScheduleSpec] = {}
    for name in pick(draw, ("c1", "c2", "c3", "c4")):
        backend = draw(names(("iot", "iot2")))
        own = sorted(p for p, spec in packages.items() if spec.backend == backend)
        callbacks = {kind: Callback(draw(names(("hook-a", "hook-b"))), pick(draw, GATEWAY_STATES, at_most=2))
                     for kind in pick(draw, list(CallbackKind), at_most=2)}
        campaigns[name] = IotCampaignSpec(
            name, backend, draw(names(("", "Rollout"))), pick(draw, own), draw(SETTINGS),
            draw(names(tuple(IotRunState))), draw(names(tuple(Approval))), draw(DISTRIBUTION), callbacks, draw(ROLLOUT))
        pool = list(GATEWAYS)
        for index in range(draw(SMALL) % 3):
            taken = pick(draw, pool, at_least=1, at_most=5)
            pool = [g for g in pool if g not in taken]
            name_a = f"{name}-a{index}"
            assignments[name_a] = GatewayAssignmentSpec(name_a, name, taken, pick(draw, own, at_most=1))
        mine = [a.name for a in assignments.values() if a.campaign == name]
        for index in range(draw(SMALL) % 3):
            schedules[f"{name}-s{index}"] = ScheduleSpec(
                f"{name}-s{index}", name, draw(st.none() | names(mine)) if mine else None,
                draw(MAYBE_WINDOW), draw(MAYBE_WINDOW), draw(MAYBE_WINDOW), draw(MAYBE_WINDOW) if index == 0 else None)
    for name in pick(draw, ("s1", "s2"), at_most=2):
        campaigns[name] = SimCampaignSpec(name, "yate", draw(names((142, 144, 147, 999))),
                                          draw(names(tuple(SimRunState))), draw(st.none() | names((1, 2, 3, 4))),
                                          pick(draw, MSISDNS, at_most=2), (), pick(draw, MSISDNS, at_most=1))
        if draw(BOOL):
            schedules[f"{name}-period"] = ScheduleSpec(f"{name}-period", name, active=draw(WINDOW))
    for name, backend in (("m1", "gw"), ("m2", "og")):
        if not draw(BOOL):
            continue
        count = draw(SMALL)
        campaigns[name] = SmsCampaignSpec(
            name, backend, "Hello #param#",
            RecipientSource(inline=tuple(Recipient(f"+49170000{i:04d}") for i in range(count)), count=count),
            "12345" if backend == "og" else None, None, draw(names(tuple(SmsRunState))),
            draw(st.none() | names((0.5, 20.0))))
        if draw(BOOL):
            schedules[f"{name}-hours"] = ScheduleSpec(f"{name}-hours", name, active=draw(MAYBE_WINDOW),
                                                      quiet_hours=draw(QUIET))
    return DesiredState(backends, packages, campaigns, assignments, schedules, root="/repo")


@st.composite
def observations(draw: st.DrawFn, desired: DesiredState) -> ObservedState:
    ids = iter(range(10_000))
    uploads = tuple(p.upload_name for p in desired.packages.values()) + ("foreign-1", "foreign-2")
    campaign_names = tuple(sorted(desired.campaigns)) + ("old-1", "old-2")
    observed = {}
    for name, spec in desired.backends.items():
        roll = draw(st.integers(0, 9))
        if roll == 0:
            continue  # not observed at all
        readable = roll > 2
        base = BackendObservation(name, readable, "" if readable else "HTTP 503")
        if spec.type == "iot-campaigns":
            packages = tuple(ObservedIotPackage(f"pkg-{next(ids)}", draw(names(uploads))) for _ in range(draw(SMALL)))
            package_ids = [p.id for p in packages]
            campaigns = []
            for _ in range(draw(st.integers(0, 5))):
                gateways = tuple(ObservedGateway(g, draw(names(GATEWAY_STATES)), draw(BOOL),
                                                 tuple(package_ids[:1]) if draw(BOOL) else None)
                                 for g in pick(draw, GATEWAYS, at_most=5))
                campaigns.append(ObservedIotCampaign(
                    f"camp-{next(ids)}", draw(names(campaign_names)), draw(names(IOT_STATUSES)),
                    draw(names(("", "Rollout"))), pick(draw, package_ids), gateways,
                    draw(st.none() | names(("dl-1", "dl-2"))), draw(st.none() | names((60, 3600)))))
            base = dataclasses.replace(base, iot_packages=packages, iot_campaigns=tuple(campaigns))
        elif spec.type == "yateota":
            sims = []
            for campaign_id in pick(draw, (142, 144, 147)):
                participants = tuple(ObservedParticipant(pid, campaign_id, draw(names(PARTICIPANT_STATES)),
                                                         draw(names(MSISDNS)), attempts=draw(SMALL))
                                     for pid in range(campaign_id * 100, campaign_id * 100 + draw(SMALL)))
                sims.append(ObservedSimCampaign(campaign_id, f"sim-{campaign_id}", draw(names(SIM_STATES)),
                                                participants=participants))
            base = dataclasses.replace(base, sim_campaigns=tuple(sims))
        elif spec.type == "sms-gateway":
            ports = tuple(ObservedSmsPort(p, draw(BOOL)) for p in range(draw(SMALL)))
            base = dataclasses.replace(base, sms_ports=ports)
        observed[name] = base
    return ObservedState(observed)


def _outlook(**values: Any) -> SmsOutlook:
    known = {f.name for f in dataclasses.fields(SmsOutlook)}
    return SmsOutlook(**{k: v for k, v in values.items() if k in known})


@st.composite
def stores(draw: st.DrawFn, observed: ObservedState) -> StoreView:
    if not draw(BOOL):
        return StoreView(available=False)
    owned = set()
    applied = {}
    for name, observation in observed.backends.items():
        for campaign in observation.iot_campaigns:
            if draw(BOOL):
                owned.add(InventoryEntry(name, "campaign", campaign.name, campaign.id))
            for gateway in campaign.gateways:
                if draw(SMALL) == 0:
                    applied[(name, "schedule", f"{campaign.id}/{gateway.gateway_id}/download")] = draw(
                        names(('{"begin_ms":1,"end_ms":2}', "garbage")))
        for package in observation.iot_packages:
            if draw(BOOL):
                owned.add(InventoryEntry(name, "package", package.name, package.id))
    attempts = {("yate", f"{cid}/{pid}"): draw(SMALL)
                for cid in (142, 144, 147) for pid in range(cid * 100, cid * 100 + 2) if draw(BOOL)}
    return StoreView(True, frozenset(owned), applied, attempts)


@st.composite
def plan_inputs(draw: st.DrawFn) -> PlanInput:
    desired = draw(desired_states())
    observed = draw(observations(desired))
    sms = {}
    for name, spec in desired.campaigns.items():
        if isinstance(spec, SmsCampaignSpec) and draw(BOOL):
            sms[name] = _outlook(recipients=spec.recipients.count, to_send=draw(SMALL) % (spec.recipients.count + 1),
                                 counts=draw(COUNTS), open_tasks=pick(draw, ("7", "8"), at_most=2),
                                 backend=spec.backend)
    for name, backend in (("gone-1", "gw"), ("gone-2", "og")):
        if draw(BOOL):
            sms[name] = _outlook(counts={"accepted": 2}, open_tasks=("9",), backend=backend, declared=False)
    return PlanInput(
        desired=desired, observed=observed,
        traits={name: TRAITS[spec.type] for name, spec in desired.backends.items()},
        store=draw(stores(observed)), now=NOW,
        options=PlanOptions(prune=draw(names(tuple(PruneMode))), allow_replace=draw(BOOL)),
        sms=sms)
