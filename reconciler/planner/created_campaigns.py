"""Planning rules for campaigns this tool creates on a gateway fleet (the IoT campaign manager is one such
backend): packages, campaign creation, edits, replaces, approval, run state and pruning. What differs per
backend comes from its traits: the state names (``lifecycle``), which fields force a replace
(``replace_fields``) outside ``editable_states``, which need approval, and which are write-only.

Rules (each a golden test case):
- a package is uploaded once per content hash (its backend name carries the hash);
- a campaign missing from the backend is created, configured and then started, in dependency order;
- an edit is applied in place while the backend allows edits; in a state that refuses edits (started) a
  change of a replace-forcing field needs a replace (stop, archive under another name, create anew), gated by ``--allow-replace``;
- approval is given when the campaign says ``approval: auto`` and the backend asks for it;
- what was removed from git is left alone without ``--prune``, stopped with it, deleted with
  ``--prune=delete`` — and only if this tool created it (the inventory);
- under ``--prune`` a package this tool uploaded and git no longer declares is deleted only when nothing
  holds it: no campaign (declared or observed) and no gateway override of any campaign uses it. A campaign
  deleted in the same plan no longer holds it: the package goes in that same run, after the deletion.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath

from reconciler.actions import Action, Produced, Verb
from reconciler.model import Approval, IotCampaignSpec, IotRunState, Kind, ResourceKey
from reconciler.observed import BackendObservation, ObservedIotCampaign
from reconciler.planner import memory
from reconciler.planner.campaign_gateways import (
    CampaignId,
    CampaignScope,
    declared_gateways,
    first_by,
    gateways_by_id,
    plan_gateways,
    rollout_gateways,
)
from reconciler.planner.plan import PlanBuilder, PlanInput, PruneMode
from reconciler.planner.timing import outside_active_period


def plan_created_campaigns(inp: PlanInput, b: PlanBuilder, backend: str, observation: BackendObservation) -> None:
    package_ids, package_deps = _plan_packages(inp, b, backend, observation)
    campaigns = sorted((c for c in inp.desired.campaigns_of(backend) if isinstance(c, IotCampaignSpec)),
                       key=lambda c: c.name)
    program_names = {p.id: p.name for p in observation.iot_packages}
    for spec in campaigns:
        _plan_campaign(CampaignScope(inp, backend, spec, package_ids, package_deps, program_names), b, observation)
    _plan_prune(inp, b, backend, observation, {c.name for c in campaigns})


def _plan_packages(inp: PlanInput, b: PlanBuilder, backend: str,
                   observation: BackendObservation) -> tuple[dict[str, CampaignId], dict[str, str]]:
    by_name = first_by(observation.iot_packages, lambda p: p.name, lambda p: p.id)
    ids: dict[str, CampaignId] = {}
    deps: dict[str, str] = {}
    for spec in sorted((p for p in inp.desired.packages.values() if p.backend == backend), key=lambda p: p.name):
        key = ResourceKey(Kind.PACKAGE, spec.name)
        existing = by_name.get(spec.upload_name)
        if existing is not None:
            ids[spec.name] = existing.id
            b.noop(key, f"uploaded as {spec.upload_name}")
            continue
        if spec.program:  # an imported program: its file may be a placeholder, never upload it
            b.error(key, f"program {spec.program!r} (spec.program) does not exist on backend {backend}: put the real "
                         "package file in place and remove spec.program to upload it", spec.source)
            ids[spec.name] = spec.program  # never sent: a plan with an error applies nothing
            continue
        action_id = b.add(Action(
            f"{backend}/package/{spec.name}/upload-package", Verb.UPLOAD_PACKAGE, key, backend,
            {"file": str(_absolute(inp, spec.file)), "name": spec.upload_name, "description": spec.description},
            reason=f"content {spec.sha256[:12]} is not in the backend"))
        ids[spec.name] = Produced(action_id, "package_id")
        deps[spec.name] = action_id
    return ids, deps


def _absolute(inp: PlanInput, path: str) -> str:
    return path if PurePath(path).is_absolute() else str(PurePath(inp.desired.root) / path)


def _plan_campaign(scope: CampaignScope, b: PlanBuilder, observation: BackendObservation) -> None:
    spec = scope.spec
    matches = [c for c in observation.iot_campaigns if c.name == spec.name]
    if len(matches) > 1:
        b.error(scope.key, f"{len(matches)} campaigns named {spec.name!r} exist on backend {scope.backend}; "
                           "rename or delete all but one", spec.source)
        return
    observed = matches[0] if matches else None
    if observed is not None and not _managed(scope, b, observed):
        return
    seen = gateways_by_id(observed)
    rollout = rollout_gateways(scope, declared_gateways(scope), seen)
    hold = outside_active_period(scope.inp.desired, spec.name, scope.inp.now) or rollout.halt
    run = IotRunState.STOPPED if hold else spec.state
    if observed is None:
        _plan_create(scope, b, run, ())
    else:
        _plan_existing(scope, b, observed, run, rollout.gateways)
    stuck = sum(s.count for s in b.stranded if s.campaign == spec.name and s.backend == scope.backend)
    stranded = f"{stuck} gateway(s) stranded: their schedule window ended before they finished" if stuck else ""
    reasons = [r for r in (hold, rollout.reason, stranded) if r]
    if reasons:
        b.noop(scope.key, "; ".join(reasons))
    elif not b.has_actions_for(scope.key):
        b.noop(scope.key, "in sync")


def _managed(scope: CampaignScope, b: PlanBuilder, observed: ObservedIotCampaign) -> bool:
    """A same-named campaign this tool did not create is never taken over silently: with --adopt it is
    recorded in the inventory (``adopt-campaign``) and managed from then on; without, it is left alone and
    the plan says so. Without a store nothing can be told (a CI runner with no store plans as before)."""
    store = scope.inp.store
    if not store.available or store.owns(scope.backend, "campaign", observed.id):
        return True
    if scope.inp.options.adopt:
        b.add(Action(scope.action_id("adopt-campaign"), Verb.ADOPT_CAMPAIGN, scope.key, scope.backend,
                     {"campaign_id": observed.id, "name": observed.name},
                     reason=f"campaign {observed.id} exists in the backend, not created by this tool (--adopt)"))
        return True
    message = (f"campaign {observed.name!r} (id {observed.id}) exists in backend {scope.backend} but this tool did "
               "not create it (it is not in the state store's inventory): it is left alone; review it, then apply "
               "with --adopt to manage it as declared")
    b.warn(scope.key, message, scope.spec.source)
    b.noop(scope.key, f"~ adopt: {message}")
    return False


def _plan_create(scope: CampaignScope, b: PlanBuilder, run: IotRunState, after: tuple[str, ...]) -> None:
    spec = scope.spec
    packages, deps = scope.packages(spec.packages)
    create = b.add(Action(
        scope.action_id("create-campaign"), Verb.CREATE_CAMPAIGN, scope.key, scope.backend,
        {"name": spec.name, "description": spec.description, "packages": packages, "settings": dict(spec.settings)},
        after + deps, "declared in git, not in the backend"))
    campaign_id = Produced(create, "campaign_id")
    wanted = rollout_gateways(scope, declared_gateways(scope), {}).gateways
    steps = [create, *plan_gateways(scope, b, campaign_id, None, (create,), wanted)]
    if run is IotRunState.RUNNING:
        _plan_start(scope, b, campaign_id, scope.traits.lifecycle.created, tuple(steps), new=True)


def _plan_existing(scope: CampaignScope, b: PlanBuilder, observed: ObservedIotCampaign, run: IotRunState,
                   wanted: frozenset[str]) -> None:
    spec = scope.spec
    traits = scope.traits
    changes = _content_changes(scope, b, observed)
    started = observed.status == traits.lifecycle.started
    forcing = [c for c in changes if c in traits.replace_fields]
    if forcing and traits.refuses_edits(observed.status) and run is IotRunState.RUNNING:
        _plan_replace(scope, b, observed, changes)
        return
    steps: list[str] = []
    if started and run is IotRunState.STOPPED:
        steps.append(b.add(Action(scope.action_id("stop-campaign"), Verb.STOP_CAMPAIGN, scope.key, scope.backend,
                                  {"campaign_id": observed.id}, reason="declared stopped")))
    if changes:
        packages, deps = scope.packages(spec.packages)
        steps.append(b.add(Action(
            scope.action_id("update-campaign"), Verb.UPDATE_CAMPAIGN, scope.key, scope.backend,
            {"campaign_id": observed.id, "name": spec.name, "description": spec.description,
             "packages": packages, "settings": dict(spec.settings)},
            tuple(steps) + deps, "changed: " + ", ".join(changes))))
    steps += plan_gateways(scope, b, observed.id, observed, tuple(steps), wanted)
    if run is IotRunState.RUNNING and not started:
        _plan_start(scope, b, observed.id, observed.status, tuple(steps), new=False)


def _content_changes(scope: CampaignScope, b: PlanBuilder, observed: ObservedIotCampaign) -> list[str]:
    spec = scope.spec
    changes = []
    if spec.description != observed.description:
        changes.append("description")
    wanted = sorted(scope.inp.desired.packages[name].upload_name for name in spec.packages)
    # by name, not id: two uploads of the same content are the same package to us
    if wanted != sorted(scope.program_names.get(pid, pid) for pid in observed.packages):
        changes.append("packages")
    store = scope.inp.store
    if not scope.remembered("settings"):  # neither read back nor remembered: sent with every edit
        return changes
    remembered = store.last_applied(scope.backend, memory.SETTINGS, observed.id)
    if not store.available and spec.settings:
        b.note("campaign settings cannot be read back and no state store is available: they are not compared")
    elif remembered is not None and remembered != memory.settings_value(spec.settings):
        changes.append("settings")
    return changes


def _plan_replace(scope: CampaignScope, b: PlanBuilder, observed: ObservedIotCampaign, changes: list[str]) -> None:
    spec = scope.spec
    what = ", ".join(changes)
    if not scope.inp.options.allow_replace:
        b.error(scope.key, f"campaign {spec.name!r} is {observed.status} and the backend refuses edits ({what}) "
                           f"of a {observed.status} campaign; run with --allow-replace to stop it, keep it under "
                           "another name and create it anew, or declare `state: stopped` first", spec.source)
        return
    archived = f"{spec.name}-replaced-{observed.id[:8]}"
    stop = b.add(Action(scope.action_id("replace", "stop-campaign"), Verb.STOP_CAMPAIGN, scope.key, scope.backend,
                        {"campaign_id": observed.id}, reason=f"replace ({what} changed while started)",
                        destructive=True))
    rename = b.add(Action(scope.action_id("replace", "update-campaign"), Verb.UPDATE_CAMPAIGN, scope.key,
                          scope.backend, {"campaign_id": observed.id, "name": archived,
                                          "description": observed.description, "packages": list(observed.packages),
                                          "settings": {}},
                          (stop,), f"keep the replaced campaign as {archived}"))
    _plan_create(scope, b, spec.state, (rename,))


def _plan_start(scope: CampaignScope, b: PlanBuilder, campaign_id: CampaignId, status: str,
                after: tuple[str, ...], *, new: bool) -> None:
    traits = scope.traits
    needs_approval = status in traits.approval_states or (new and _approval_required(scope))
    if needs_approval and scope.spec.approval is Approval.MANUAL:
        b.noop(scope.key, "waiting for manual approval before it can start")
        return
    if needs_approval:
        after = after + (b.add(Action(scope.action_id("approve-campaign"), Verb.APPROVE_CAMPAIGN, scope.key,
                                      scope.backend, {"campaign_id": campaign_id}, after, "approval: auto")),)
    b.add(Action(scope.action_id("start-campaign"), Verb.START_CAMPAIGN, scope.key, scope.backend,
                 {"campaign_id": campaign_id}, after, f"declared running, is {status}"))


def _approval_required(scope: CampaignScope) -> bool:
    backend = scope.inp.desired.backends[scope.backend]
    return bool(backend.options.get("approvalRequired", False))


def _plan_prune(inp: PlanInput, b: PlanBuilder, backend: str, observation: BackendObservation,
                declared: set[str]) -> None:
    mode = inp.options.prune
    deleted: dict[str, str] = {}  # campaign id -> the action deleting it in this plan
    pruned: set[str] = set()  # ids of the campaigns --prune acts on
    for campaign in sorted(observation.iot_campaigns, key=lambda c: (c.name, c.id)):
        if campaign.name in declared or not inp.store.owns(backend, "campaign", campaign.id):
            continue
        pruned.add(campaign.id)
        key = ResourceKey(Kind.CAMPAIGN, campaign.name)
        if mode is PruneMode.OFF:
            b.noop(key, "no longer declared; --prune stops it, --prune=delete deletes it")
            continue
        base = f"{backend}/prune/{campaign.id}"
        after: tuple[str, ...] = ()
        if campaign.status == inp.traits[backend].lifecycle.started:
            after = (b.add(Action(f"{base}/stop-campaign", Verb.STOP_CAMPAIGN, key, backend,
                                  {"campaign_id": campaign.id}, reason="removed from git (--prune)",
                                  destructive=True)),)
        if mode is PruneMode.DELETE:
            deleted[campaign.id] = b.add(Action(
                f"{base}/delete-campaign", Verb.DELETE_CAMPAIGN, key, backend, {"campaign_id": campaign.id},
                after, "removed from git (--prune=delete)", destructive=True))
        elif not after:
            b.noop(key, "removed from git; already stopped")
    _plan_package_prune(inp, b, backend, observation, deleted, pruned)


def _plan_package_prune(inp: PlanInput, b: PlanBuilder, backend: str, observation: BackendObservation,
                        deleted: Mapping[str, str], pruned: set[str]) -> None:
    """Delete an owned package git no longer declares once nothing holds it. Holders: a declared package
    of the same upload name; every observed campaign, by its packages or its gateways' overrides (as read).
    A campaign this plan deletes (``deleted``: campaign id -> action id) holds nothing afterwards: the
    package goes in the same run, after that deletion (``depends_on``)."""
    if inp.options.prune is PruneMode.OFF:
        return
    wanted = {p.upload_name for p in inp.desired.packages.values() if p.backend == backend}
    users: dict[str, dict[str, str]] = {}  # package id -> {campaign id: how it uses the package}
    for campaign in sorted(observation.iot_campaigns, key=lambda c: (c.name, c.id)):
        for gateway in campaign.gateways:
            for pid in gateway.packages or ():
                users.setdefault(pid, {})[campaign.id] = f"{campaign.name} (gateway overrides)"
        for pid in campaign.packages:
            users.setdefault(pid, {})[campaign.id] = campaign.name
    for package in sorted(observation.iot_packages, key=lambda p: (p.name, p.id)):  # names may repeat
        if package.name in wanted or not inp.store.owns(backend, "package", package.id):
            continue
        key = ResourceKey(Kind.PACKAGE, package.name)
        using = users.get(package.id, {})
        holding = {cid for cid in using if cid not in deleted}
        if holding:
            kept = sorted(using[cid] for cid in holding)
            more = f" and {len(kept) - 3} more" if len(kept) > 3 else ""
            then = "; --prune=delete deletes them, then it" if holding <= pruned else ""
            b.noop(key, f"no longer declared, but still used by campaign(s) {', '.join(kept[:3])}{more}: kept"
                        f"{then}")
            continue
        after = tuple(sorted(deleted[cid] for cid in using))
        b.add(Action(f"{backend}/prune/{package.id}/delete-package", Verb.DELETE_PACKAGE, key, backend,
                     {"package_id": package.id}, after,
                     "no longer declared and no campaign uses it (--prune)" if not after else
                     "no longer declared; only campaign(s) deleted in this plan use it (--prune=delete)",
                     destructive=True))
