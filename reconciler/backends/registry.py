"""Which adapter serves which ``Backend.spec.type``. Adding a backend adds one line here."""

from __future__ import annotations

import importlib

from reconciler.backends.protocol import BackendAdapter
from reconciler.model import BackendType

ADAPTER_MODULES: dict[BackendType, str] = {
    BackendType.YATEOTA: "reconciler.backends.yateota.adapter",
    BackendType.IOT_CAMPAIGNS: "reconciler.backends.iot_campaigns.adapter",
    BackendType.OGANGI: "reconciler.backends.ogangi.adapter",
    BackendType.SMS_GATEWAY: "reconciler.backends.sms_gateway.adapter",
}


def adapter_for(backend_type: BackendType) -> BackendAdapter:
    """The adapter of ``backend_type`` (imported on first use, so a dry run loads only what it needs)."""
    module = importlib.import_module(ADAPTER_MODULES[backend_type])
    adapter: BackendAdapter = module.ADAPTER
    return adapter
