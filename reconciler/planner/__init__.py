"""Pure planning: ``plan(PlanInput) -> Plan``. No I/O, no clock, no logging."""

from reconciler.planner.core import plan
from reconciler.planner.plan import Noop, Plan, PlanInput, PlanOptions, PruneMode, StrandedGateways

__all__ = ["Noop", "Plan", "PlanInput", "PlanOptions", "PruneMode", "StrandedGateways", "plan"]
