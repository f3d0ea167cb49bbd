"""The daemon's Prometheus metrics, in a registry of its own (no process-wide global state)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reconciler.engine.execute import ExecutionReport


class DaemonMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pass_seconds = Histogram("reconcile_pass_duration_seconds", "Duration of reconcile passes", registry=r,
                                      buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.passes = Counter("reconcile_passes_total", "Reconcile passes by result", ["result"], registry=r)
        self.actions = Counter("reconcile_actions_total", "Actions executed by verb and outcome",
                               ["verb", "outcome"], registry=r)
        self.requests = Counter("reconcile_backend_requests_total", "Backend requests by backend and status",
                                ["backend", "status"], registry=r)
        self.ledger = Gauge("reconcile_ledger_messages", "Send-ledger rows by campaign and state",
                            ["campaign", "state"], registry=r)
        self.drift = Counter("reconcile_drift_corrections_total",
                             "Passes that put back what was changed outside git (notify.drift's rule: not a send "
                             "going on, a rollout wave or an active period's edge)", registry=r)
        self.revision = Gauge("reconcile_applied_revision_info", "The git revision last applied", ["revision"],
                              registry=r)
        self.webhooks = Counter("reconcile_webhooks_total", "Webhook deliveries by source and result",
                                ["source", "result"], registry=r)
        self.takeovers = Counter("reconcile_lease_takeovers_total",
                                 "Writer leases taken from a writer that neither released nor renewed it",
                                 registry=r)
        self.role = Gauge("reconcile_writer_role", "1 for the daemon's current role (active, standby)", ["role"],
                          registry=r)
        self.stranded = Gauge("reconcile_stranded_gateways",
                              "IoT gateways whose schedule window ended before they finished that step",
                              ["backend", "campaign", "window"], registry=r)
        self.invalid = Counter("reconcile_invalid_declarations_total",
                               "Passes whose declarations did not validate (the last good state was kept)",
                               registry=r)

    def set_stranded(self, stranded: Mapping[str, Mapping[str, object]]) -> None:
        """Per campaign, ``StrandedGateways.as_json()`` as the last pass that visited it found it."""
        self.stranded.clear()
        for campaign, found in stranded.items():
            for window, count in dict(found.get("by_window") or {}).items():  # type: ignore[call-overload]
                self.stranded.labels(str(found.get("backend", "")), campaign, window).set(count)

    def set_role(self, role: str) -> None:
        for known in ("active", "standby"):
            self.role.labels(known).set(1 if known == role else 0)

    def record_report(self, report: ExecutionReport) -> None:
        for outcome in report.outcomes:
            self.actions.labels(outcome.action.verb.value, outcome.status.value).inc()

    def record_request(self, backend: str, method: str, status: str) -> None:
        self.requests.labels(backend, status).inc()

    def set_ledger(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        for campaign, states in counts.items():
            for state, n in states.items():
                self.ledger.labels(campaign, state).set(n)

    def set_revision(self, revision: str) -> None:
        self.revision.clear()
        self.revision.labels(revision).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
