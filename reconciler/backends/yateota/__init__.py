"""The yateota backend: adapter (Reader, Writer, traits), its HTTP client, replies and auth.

``DESCRIPTOR`` is its registry entry: SIM OTA campaigns created elsewhere and adopted by ``campaignId``."""

from reconciler.backends.descriptor import ADOPTED_CAMPAIGN_FIELDS, BackendDescriptor, CampaignFamily, module_attribute

TYPE = "yateota"  # what ``Backend.spec.type`` says

DESCRIPTOR = BackendDescriptor(
    type=TYPE,
    family=CampaignFamily.ADOPTED,
    title="YateOTA",
    campaign_label="SIM OTA (YateOTA)",
    adapter=module_attribute("reconciler.backends.yateota.adapter", "ADAPTER"),
    auth=("secret",),
    options=frozenset({"authHeader", "pageSize", "path"}),
    campaign_fields=ADOPTED_CAMPAIGN_FIELDS,
    campaign_required=("campaignId",),
    campaign_states=("running", "paused", "stopped"),
)
