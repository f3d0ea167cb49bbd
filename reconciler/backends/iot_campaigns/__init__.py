"""The iot_campaigns backend: adapter (Reader, Writer, traits), its HTTP client, replies and auth.

``DESCRIPTOR`` is its registry entry: campaigns this tool creates on a gateway fleet, with packages,
gateway assignments and per-gateway windows; its callbacks reach ``/webhooks/iot-campaigns/<token>``
(and ``/webhooks/iot/<token>``, the URL handed out before)."""

from reconciler.backends.descriptor import (
    CREATED_CAMPAIGN_FIELDS, GATEWAY_WINDOW_FIELDS, BackendDescriptor, CampaignFamily, module_attribute,
)
from reconciler.backends.iot_campaigns.push import parse_callback

TYPE = "iot-campaigns"  # what ``Backend.spec.type`` says

DESCRIPTOR = BackendDescriptor(
    type=TYPE,
    family=CampaignFamily.CREATED,
    title="IoT campaigns",
    campaign_label="OTA (IoT)",
    adapter=module_attribute("reconciler.backends.iot_campaigns.adapter", "ADAPTER"),
    auth=("username", "password"),
    options=frozenset({"tokenPath", "pageSize", "approvalRequired", "uploadMode"}),
    campaign_fields=CREATED_CAMPAIGN_FIELDS,
    campaign_states=("running", "stopped"),
    packages=True,
    assignment_fields=frozenset({"gateways", "gatewaysFile", "packages"}),
    assignment_needs=("gateways", "gatewaysFile"),
    schedule_fields=GATEWAY_WINDOW_FIELDS,
    push=parse_callback,
    push_paths=("iot",),
)
