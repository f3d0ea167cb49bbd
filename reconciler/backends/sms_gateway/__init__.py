"""The sms_gateway backend: adapter (Reader, Writer, traits), its HTTP client, replies and auth.

``DESCRIPTOR`` is its registry entry: SMS sends on SIM ports (a campaign's assignments name the ports); its
pushes (sending results) reach ``/webhooks/sms-gateway/<token>``. Why its message bound: the gateway
refuses a ``text`` over 1,500 bytes (error_code 413, seed 003 / backends.md), and it gets the text with its
``#param#`` placeholders (it fills them itself); 1,500 bytes take at most 23 segments (1,500 UCS-2 units / 67)."""

from reconciler.backends.descriptor import (
    SMS_CAMPAIGN_FIELDS, SMS_SCHEDULE_FIELDS, BackendDescriptor, CampaignFamily, lazy_push, module_attribute,
)
from reconciler.backends.protocol import MessageBound

TYPE = "sms-gateway"  # what ``Backend.spec.type`` says
MESSAGE_BOUND = MessageBound(max_chars=1500, max_bytes=1500, max_segments=23, template_sent=True)

DESCRIPTOR = BackendDescriptor(
    type=TYPE,
    family=CampaignFamily.SMS,
    title="SMS gateway",
    campaign_label="SMS (gateway)",
    adapter=module_attribute("reconciler.backends.sms_gateway.adapter", "ADAPTER"),
    auth=("username", "password"),
    options=frozenset({"authScheme", "inFlight"}),
    campaign_fields=SMS_CAMPAIGN_FIELDS | {"encoding"},
    campaign_required=("text", "recipients"),
    campaign_states=("active", "paused", "stopped"),
    assignment_fields=frozenset({"ports"}),
    assignment_needs=("ports",),
    schedule_fields=SMS_SCHEDULE_FIELDS,
    message_bound=MESSAGE_BOUND,
    push=lazy_push("reconciler.backends.sms_gateway.push", "parse_gateway_push"),
)
