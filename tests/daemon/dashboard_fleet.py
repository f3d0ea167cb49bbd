"""A daemon's state built by hand, for the dashboard's view tests and its load benchmark: IoT rollouts
over a gateway fleet, SMS campaigns mid-send and a YateOTA campaign, with no backend and no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.backends.registry import adapter_for
from reconciler.daemon.dashboard.snapshot import DaemonSnapshot, PassRecord, RequestTally, SeriesPoint, ActionRecord
from reconciler.model import (BackendSpec, DesiredState, GatewayAssignmentSpec, IotCampaignSpec,
                              RecipientSource, Rollout, SimCampaignSpec, SmsCampaignSpec)
from reconciler.observed import BackendObservation, ObservedGateway, ObservedIotCampaign, ObservedSimCampaign
from reconciler.planner.plan import SmsOutlook

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
#: the states a gateway of the fleet is in, in turn (one in twenty-five failed: under a 5% limit)
CYCLE = ("ACTIVATION_COMPLETE",) * 14 + ("DOWNLOADING", "EXECUTING", "WAITING_FOR_DOWNLOAD") * 3 + (
    "INSTANTIATED",) * 1 + ("DOWNLOAD_FAILED",)


def backends() -> dict[str, BackendSpec]:
    return {"iot": BackendSpec("iot", "iot-campaigns", "http://iot.invalid"),
            "yate": BackendSpec("yate", "yateota", "http://yate.invalid"),
            "gw": BackendSpec("gw", "sms-gateway", "https://gw.invalid")}


def fleet_snapshot(*, iot_campaigns: int = 2, gateways: int = 40, sms_campaigns: int = 1, recipients: int = 2000,
                   handed_over: int = 800, failed_gateways: int | None = None,
                   members: float = 0.3) -> DaemonSnapshot:
    """``iot_campaigns`` rollouts sharing ``gateways`` gateways, ``members`` of each in its campaign (0.3: wave 1
    full and wave 2 half in);
    ``sms_campaigns`` sends of ``recipients`` with ``handed_over`` handed over; one YateOTA campaign."""
    campaigns: dict[str, object] = {}
    assignments: dict[str, GatewayAssignmentSpec] = {}
    iot: list[ObservedIotCampaign] = []
    per_campaign = max(gateways // max(iot_campaigns, 1), 1)
    for c in range(iot_campaigns):
        name = f"fw-rollout-{c:03d}"
        ids = tuple(f"gw-{c * per_campaign + g + 1:05d}" for g in range(per_campaign))
        campaigns[name] = IotCampaignSpec(name=name, backend="iot", description=f"Firmware 2.{c}", packages=("fw",),
                                          rollout=Rollout(waves=(0.1, 0.5, 1.0), success_threshold=0.95,
                                                          max_failure_rate=0.05))
        assignments[f"{name}-gws"] = GatewayAssignmentSpec(name=f"{name}-gws", campaign=name, gateways=ids)
        inside = ids[: int(per_campaign * members)]
        states = [CYCLE[i % len(CYCLE)] for i in range(len(inside))]
        if failed_gateways is not None:
            states = ["DOWNLOAD_FAILED" if i < failed_gateways else "ACTIVATION_COMPLETE" for i in range(len(inside))]
        iot.append(ObservedIotCampaign(id=f"c{c}", name=name, status="STARTED",
                                       gateways=tuple(ObservedGateway(g, s) for g, s in zip(inside, states))))
    counts: dict[str, dict[str, int]] = {}
    series: dict[str, tuple[SeriesPoint, ...]] = {}
    sms: dict[str, SmsOutlook] = {}
    for s in range(sms_campaigns):
        name = f"notice-{s:03d}"
        campaigns[name] = SmsCampaignSpec(name=name, backend="gw", text="Maintenance tonight in #param#",
                                          recipients=RecipientSource(file="recipients.csv", count=recipients),
                                          rate_per_second=20.0)
        delivered, failed = handed_over // 2, handed_over // 20
        counts[name] = {"dispatching": 10, "accepted": handed_over - delivered - failed, "delivered": delivered,
                        "failed": failed}
        sms[name] = SmsOutlook(recipients=recipients, to_send=recipients, counts={})
        series[name] = tuple(SeriesPoint(at=NOW.timestamp() - 40 + i, handed_over=handed_over * i // 40,
                                         delivered=delivered * i // 40, failed=failed * i // 40) for i in range(41))
    campaigns["applet"] = SimCampaignSpec(name="applet", backend="yate", campaign_id=147)
    sim = ObservedSimCampaign(campaign_id=147, name="applet", state="started",
                              counts={"participants": 300, "pending_send": 40, "finished": 250, "failed": 10})
    desired = DesiredState(backends=backends(), campaigns=campaigns, assignments=assignments)  # type: ignore[arg-type]
    observed = {"iot": BackendObservation("iot", iot_campaigns=tuple(iot)),
                "yate": BackendObservation("yate", sim_campaigns=(sim,)), "gw": BackendObservation("gw")}
    return DaemonSnapshot(
        taken_at=NOW, role="active", ready=True, passes=12, revision="0123456789abcdef0123", desired=desired,
        lifecycles={n: adapter_for(b.type).traits.lifecycle for n, b in desired.backends.items()},
        observed=observed, sms=sms, ledger_counts=counts, sending=frozenset(counts), series=series,
        requests={"iot": RequestTally(100, 2, 50, 1), "yate": RequestTally(10, 0, 0, 0), "gw": RequestTally(5, 0, 5, 0)},
        passes_log=(PassRecord(at=NOW - timedelta(seconds=30), reasons=("resync",), backends=None, seconds=0.4,
                               ok=True, actions=(ActionRecord("start-campaign", "Campaign/fw-rollout-000",
                                                              "succeeded", drift=True),)),
                    PassRecord(at=NOW - timedelta(seconds=90), reasons=("files",), backends=("iot",), seconds=0.2,
                               ok=True)),
        changed_at={name: NOW - timedelta(seconds=5) for name in campaigns})
