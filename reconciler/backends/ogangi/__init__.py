"""The ogangi backend: adapter (Reader, Writer, traits), its HTTP client, replies and auth.

``DESCRIPTOR`` is its registry entry: SMS sends. Why its message bound: the text travels Base64-encoded in
the request path; 1,000 characters and 2,000 UTF-8 bytes (2,668 Base64 characters) keep the whole URL well
under the 8 KiB many servers and proxies accept, and 15 segments is what 1,000 UCS-2 characters take."""

from reconciler.backends.descriptor import (
    SMS_CAMPAIGN_FIELDS, SMS_SCHEDULE_FIELDS, BackendDescriptor, CampaignFamily, module_attribute,
)
from reconciler.backends.protocol import MessageBound

TYPE = "ogangi"  # what ``Backend.spec.type`` says
MESSAGE_BOUND = MessageBound(max_chars=1000, max_bytes=2000, max_segments=15)

DESCRIPTOR = BackendDescriptor(
    type=TYPE,
    family=CampaignFamily.SMS,
    title="Ogangi",
    campaign_label="SMS (Ogangi)",
    adapter=module_attribute("reconciler.backends.ogangi.adapter", "ADAPTER"),
    auth=("instanceId", "publicKey", "privateKey"),
    options=frozenset({"base64Padding", "carrier", "method", "inFlight"}),
    campaign_fields=SMS_CAMPAIGN_FIELDS | {"from", "carrier"},
    campaign_required=("text", "recipients", "from"),
    campaign_states=("active", "paused", "stopped"),
    schedule_fields=SMS_SCHEDULE_FIELDS,
    message_bound=MESSAGE_BOUND,
)
