"""What an IoT campaign manager has that git does not declare, as declarations (``reconcile import``).

- Programs (packages) whose name no declared Package of this backend has become Packages that name the
  program (``spec.program``): matched by that name, never uploaded. The seed's API has no download of a
  program's bytes (only its file-info), so ``file`` is always a placeholder saying so; the planner refuses
  to upload a package that names a program the backend no longer has. Programs of one name are one
  package to this tool (the planner matches by name), so they become one Package.
- Campaigns that no declared Campaign of this backend names become Campaigns of the *same* name (the
  planner matches IoT campaigns by name, so the name cannot change), with their packages, state
  (STARTED is ``running``, everything else ``stopped``) and distribution list, and a GatewayAssignment
  listing every gateway in the campaign. Settings, callbacks and schedules cannot be read back from this
  API and per-gateway package overrides would take one request per gateway: none is imported (the files
  say so). Each campaign takes three requests: Get Campaign, its gateways (every page), its list.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.backends.exported import Adoption, ExportedAttachment, ExportedResource, ExportRef, ExportResult
from reconciler.backends.iot_campaigns.client import IotCampaignsClient
from reconciler.backends.iot_campaigns.replies import DistributionListInfo
from reconciler.errors import NotFoundError
from reconciler.escape import escape
from reconciler.model import DesiredState, IotCampaignSpec, Kind
from reconciler.observed import BackendObservation, ObservedGateway, ObservedIotCampaign, ObservedIotPackage

#: the schemas' bounds (campaign.schema.json, package.schema.json, gateway-assignment.schema.json)
GATEWAY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")
MAX_CAMPAIGN_DESCRIPTION = 1024
MAX_PACKAGE_DESCRIPTION = 128
MAX_PROGRAM_NAME = 1024
MAX_INTERVAL_SECONDS = 31_536_000
STARTED = "STARTED"
NOT_READ = ("Not imported: settings, callbacks and schedules (this API cannot read them back) and per-gateway "
            "package overrides (one request per gateway). Declare them here if you need them.")


@dataclass(frozen=True)
class _CampaignDetail:
    """One undeclared campaign as read in full."""

    campaign: ObservedIotCampaign
    gateways: tuple[ObservedGateway, ...]
    distribution_list: DistributionListInfo


class IotCampaignsExporter:
    """Exports the programs and campaigns of one IoT campaign manager that ``desired`` does not declare."""

    def __init__(self, *, backend: str, client: IotCampaignsClient) -> None:
        self.backend = backend
        self.client = client

    def __repr__(self) -> str:
        return f"IotCampaignsExporter({self.client!r})"

    async def aclose(self) -> None:
        await self.client.aclose()

    async def export(self, desired: DesiredState, observation: BackendObservation) -> ExportResult:
        """Packages first (campaigns refer to them), then each campaign and its gateway assignment."""
        declared_programs = {p.upload_name: p.name for p in sorted(desired.packages.values(), key=lambda p: p.name)
                             if p.backend == self.backend}
        programs: dict[str, list[ObservedIotPackage]] = {}
        for program in sorted(observation.iot_packages, key=lambda p: (p.name, p.id)):
            programs.setdefault(program.name, []).append(program)
        resources: list[ExportedResource] = []
        skipped: list[str] = []
        for name, same_named in programs.items():
            if name not in declared_programs:
                self._add_package(name, same_named, resources, skipped)
        references: dict[str, str | ExportRef] = {r.name_from: ExportRef(r.ref) for r in resources}
        references.update(declared_programs)  # program name -> how a campaign names its package
        names = {p.id: p.name for p in observation.iot_packages}
        for detail in await self._read_campaigns(desired, observation, skipped):
            problem = _campaign_problem(detail, names, references)
            if problem:
                skipped.append(f"Campaign {detail.campaign.name!r} (id {detail.campaign.id}): {problem}")
                continue
            resources += self._campaign(detail, [references[names[pid]] for pid in detail.campaign.packages])
        return ExportResult(tuple(resources), tuple(skipped))

    # --- packages -------------------------------------------------------------------------------------

    def _add_package(self, name: str, same_named: Sequence[ObservedIotPackage], resources: list[ExportedResource],
                     skipped: list[str]) -> None:
        first = same_named[0]
        if not name or len(name) > MAX_PROGRAM_NAME:
            why = "has no name" if not name else f"has a name over {MAX_PROGRAM_NAME} characters"
            skipped.append(f"Package (program id {first.id}): {why}; this tool finds programs by name")
            return
        ids = ", ".join(p.id for p in same_named)
        comments = [f"Imported from backend {self.backend}: program {name!r} (id {ids}).",
                    "The API cannot download a program, so `file` is a placeholder, not the package. With `program:` "
                    "this package is that program, found by name and never uploaded.",
                    "To change it, put the real file in place, point `file:` at it and remove `program:`: the file "
                    "is then uploaded as a new program."]
        if len(same_named) > 1:
            comments.append(f"{len(same_named)} programs share this name: to this tool they are one package.")
        spec: dict[str, Any] = {"backend": self.backend, "file": None, "program": name}
        description = first.description[:MAX_PACKAGE_DESCRIPTION]
        if description:
            spec["description"] = description
        resources.append(ExportedResource(
            ref=_program_ref(name), kind=Kind.PACKAGE, name_from=name, spec=spec, fallback=f"package-{first.id[:8]}",
            comments=tuple(comments), summary=f"program {name!r} (placeholder file: the API cannot download it)",
            attachment=ExportedAttachment("file", _placeholder(self.backend, name, ids), placeholder=True),
            adoptions=tuple(Adoption("package", p.id, name) for p in same_named)))

    # --- campaigns ------------------------------------------------------------------------------------

    async def _read_campaigns(self, desired: DesiredState, observation: BackendObservation,
                              skipped: list[str]) -> list[_CampaignDetail]:
        """The undeclared campaigns in full, by name; a name that several campaigns share is skipped (the
        planner refuses such a name), and so is a campaign that vanished while being read."""
        declared = {c.name for c in desired.campaigns_of(self.backend) if isinstance(c, IotCampaignSpec)}
        by_name: dict[str, list[ObservedIotCampaign]] = {}
        for campaign in sorted(observation.iot_campaigns, key=lambda c: (c.name, c.id)):
            if campaign.name not in declared:
                by_name.setdefault(campaign.name, []).append(campaign)
        single = []
        for name, campaigns in by_name.items():
            if len(campaigns) > 1:
                ids = ", ".join(c.id for c in campaigns)
                skipped.append(f"Campaign {name!r}: {len(campaigns)} campaigns have this name (ids {ids}); rename or "
                               "delete all but one, then import again")
            else:
                single.append(campaigns[0])
        details = await asyncio.gather(*(self._read_campaign(c) for c in single))
        for campaign, detail in zip(single, details, strict=True):
            if detail is None:
                skipped.append(f"Campaign {campaign.name!r} (id {campaign.id}): deleted while being read")
        return [d for d in details if d is not None]

    async def _read_campaign(self, campaign: ObservedIotCampaign) -> _CampaignDetail | None:
        try:
            full, gateways, listed = await asyncio.gather(
                self.client.get_campaign(campaign.id), self.client.all_gateways(campaign.id),
                self._distribution_list(campaign.id))
        except NotFoundError:
            return None
        return _CampaignDetail(full, tuple(sorted(gateways, key=lambda g: g.gateway_id)), listed)

    async def _distribution_list(self, campaign_id: str) -> DistributionListInfo:
        """The campaign's list; none when the API answers 404 for a campaign without one (a vanished
        campaign is told by Get Campaign's own 404)."""
        try:
            return await self.client.get_distribution_list(campaign_id)
        except NotFoundError:
            return DistributionListInfo(None, None)

    def _campaign(self, detail: _CampaignDetail, packages: list[str | ExportRef]) -> list[ExportedResource]:
        campaign = detail.campaign
        started = campaign.status == STARTED
        spec: dict[str, Any] = {"backend": self.backend}
        if campaign.description:
            spec["description"] = campaign.description
        if packages:
            spec["packages"] = packages
        spec["state"] = "running" if started else "stopped"
        listed = detail.distribution_list
        if listed.list_id:
            spec["distributionList"] = {"id": listed.list_id}
            if listed.interval_seconds is not None and 1 <= listed.interval_seconds <= MAX_INTERVAL_SECONDS:
                spec["distributionList"]["reevaluationIntervalSeconds"] = listed.interval_seconds
        comments = [f"Imported from backend {self.backend}: campaign {campaign.name!r} (id {campaign.id}), "
                    f"{escape(campaign.status)}.", NOT_READ]
        if not started:
            comments.append(f"Declared stopped because it is {escape(campaign.status)}: `running` would start it.")
        ref = f"campaign/{campaign.id}"
        resources = [ExportedResource(
            ref=ref, kind=Kind.CAMPAIGN, name_from=campaign.name, spec=spec, exact=True, comments=tuple(comments),
            summary=f"campaign {campaign.name!r} ({escape(campaign.status)}, {len(detail.gateways)} gateway(s))",
            adoptions=(Adoption("campaign", campaign.id),))]
        if detail.gateways:
            closed = sum(1 for g in detail.gateways if g.closed)
            resources.append(ExportedResource(
                ref=f"{ref}/gateways", kind=Kind.GATEWAY_ASSIGNMENT, name_from=f"{campaign.name}-gateways",
                spec={"campaign": ExportRef(ref), "gateways": [g.gateway_id for g in detail.gateways]},
                fallback="gateways",
                comments=(f"Every gateway in campaign {campaign.name!r} on backend {self.backend} as read "
                          f"({len(detail.gateways)}, {closed} of them closed).",),
                summary=f"{len(detail.gateways)} gateway(s) of campaign {campaign.name!r}"))
        return resources


def _program_ref(name: str) -> str:
    return f"program/{name}"


def _campaign_problem(detail: _CampaignDetail, names: Mapping[str, str],
                      references: Mapping[str, str | ExportRef]) -> str:
    """Why the campaign cannot be declared as it is ('' when it can)."""
    campaign = detail.campaign
    missing = [pid for pid in campaign.packages if pid not in names or names[pid] not in references]
    if missing:
        return f"uses package id(s) {', '.join(missing[:3])} that no imported or declared package is"
    used = [names[pid] for pid in campaign.packages]
    if len(set(used)) != len(used):
        return "uses two programs of the same name; this tool tells programs apart by name only"
    if len(campaign.description) > MAX_CAMPAIGN_DESCRIPTION:
        return f"its description is over {MAX_CAMPAIGN_DESCRIPTION} characters"
    bad = [g.gateway_id for g in detail.gateways if not GATEWAY_ID.match(g.gateway_id)]
    if bad:
        return f"gateway id {bad[0]!r} is not one a declaration can hold"
    return ""


def _placeholder(backend: str, name: str, ids: str) -> bytes:
    """The text written where the package file would be: what it is, why, and what to do."""
    return (
        "PLACEHOLDER written by `reconcile import`: this is NOT the package file.\n\n"
        f"The IoT campaign manager's API cannot download a program, so the bytes of program {name!r}\n"
        f"(id {ids}) on backend {backend} could not be fetched. The Package that names this file declares\n"
        "`program:`: it is that existing program, found by name, and this file is never uploaded.\n"
        "To change the package, put the real file in place, point `file:` at it and remove `program:`.\n"
    ).encode("utf-8")
