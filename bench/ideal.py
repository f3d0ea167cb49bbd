"""The ideal a converge of the standard fleet is measured against, and the fewest requests it needs.

``converge / ideal`` and ``requests / minimum`` (``measures.md``) only mean something if the ideal is
derived from what the backends' APIs allow, not from what our code happens to do. For each backend:

    ideal seconds = requests / parallel x latency + critical path x latency

- ``requests``: the fewest requests the API allows for this fleet, starting from empty backends:
  batch endpoints used wherever they exist, pages as large as the API allows, nothing read twice;
- ``parallel``: how many of them may be in flight at once: the backend's concurrency limit (16), or
  less where the product forces it (below);
- ``critical path``: the dependent steps that cannot overlap with the rest, one latency each.
  Campaigns of one backend run in parallel with each other; within a campaign the chain is sequential.

The largest backend sets the ideal (the four are independent and run at the same time).

IoT campaign manager (20 x 100 gateways, 3 packages, 2 windows per gateway, 10% overrides)
    reads:  1 login (token), 1 page of programs, 1 page of campaigns (both empty; page size 100);
    writes: 3 uploads, 20 creates, 20 "add gateways" (one batch of up to 1,000 ids per campaign),
            200 per-gateway package overrides and 4,000 schedule windows (the API has one PUT per
            gateway and window: no batch), 20 starts.
    => 4,266 requests / 16 x 10 ms = 2.67 s; critical path login -> list -> upload -> create -> add
       gateways -> schedule -> start = 7 steps = 0.07 s; ideal 2.74 s.
YateOTA (10 x 1,000 participants, 5% failed, retryFailed)
    reads:  1 query_campaigns (every campaign in one reply), 10 query_participants filtered on
            ``state: failed`` (50 per campaign, one page of up to 500);
    writes: 500 action_participant retries (one per participant: no batch form).
    => 511 / 16 x 10 ms = 0.32 s + 3 steps = 0.35 s.
SMS gateway (10,000 recipients on 8 ports)
    1 HTTP Digest challenge (the first request of a client is answered 401 with the nonce), 1
    get_port_info, ceil(10,000 / 128) = 79 send_sms (128 numbers per request, the API's limit).
    => 81 / 16 x 10 ms + 3 steps = 0.08 s. Reading delivery results is not needed to converge (and
    right after sending would read "queued"); the next pass reads them: ``query_sms_result`` by our
    keys takes 32 user ids per request, 313 requests for 10,000. (One query by port and time would
    return them in one reply, but with every other sender's messages, and unbounded in size: for a
    1,000,000-recipient campaign a reply of a million results.)
Ogangi (2,000 recipients)
    2,000 sendSMS, one message per request (the API has no batch) and nothing to read (the API cannot
    be asked about a sent message). The Ogangi sender keeps **one** message in flight by default:
    Ogangi cannot be asked what became of a message whose reply was lost, so every message in flight
    when the reconciler is killed becomes ``unknown`` for good; one in flight bounds that to one per
    crash (the crash test's pass criterion). So ``parallel`` is 1, not 16:
    => 2,000 x 10 ms = 20.0 s: Ogangi sets the ideal of the standard fleet, and every other backend
    fits inside it. With ``options: {inFlight: 16}`` on the Ogangi backend (trading up to 16
    ``unknown`` per crash for speed) it becomes 2,000 / 16 x 10 ms = 1.25 s, and the IoT manager
    (2.74 s) sets the ideal instead; ``converge.py --ogangi-in-flight 16`` measures that variant.

A second pass with nothing to do needs only reads: IoT 1 login + 1 + 1 pages + 20 gateway lists (one
page of 100 each) + 200 override reads (the gateway list does not carry per-gateway packages) = 223;
YateOTA 11; SMS gateway 1 challenge + 1 port info + 313 delivery-result reads = 315; Ogangi 0 (it
cannot be asked): 549 in all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleet import FleetSpec

IOT_PAGE = 100  # the IoT manager's largest page
IOT_GATEWAY_BATCH = 1_000  # gateway ids per "add gateways" request
IOT_WINDOWS = 2  # download + activation per gateway
YATE_PAGE = 500  # participants per query_participants page (the adapter's default page)
GATEWAY_SEND_BATCH = 128  # numbers per send_sms
GATEWAY_QUERY_BATCH = 32  # user ids per query_sms_result
OGANGI_DEFAULT_IN_FLIGHT = 1


@dataclass(frozen=True)
class BackendIdeal:
    """One backend's share of the ideal: fewest requests, how many may overlap, dependent steps."""

    backend: str
    requests: int
    parallel: int
    critical_path: int
    noop_reads: int

    def seconds(self, latency_s: float) -> float:
        return self.requests / self.parallel * latency_s + self.critical_path * latency_s


def backend_ideals(spec: FleetSpec) -> dict[str, BackendIdeal]:
    """Per simulator name (as in ``/_sandbox/stats``), the ideal for a converge from empty backends."""
    return {ideal.backend: ideal for ideal in (_iot(spec), _yateota(spec), _sms_gateway(spec), _ogangi(spec))}


def _iot(spec: FleetSpec) -> BackendIdeal:
    campaigns = spec.iot_campaigns
    reads = 1 + 1 + max(1, math.ceil(campaigns / IOT_PAGE))  # login, programs page, campaigns pages
    per_campaign = (1 + math.ceil(spec.gateways_per_campaign / IOT_GATEWAY_BATCH) + spec.overrides_per_campaign
                    + spec.gateways_per_campaign * IOT_WINDOWS + 1)  # create, add, overrides, windows, start
    noop = reads + campaigns * (math.ceil(spec.gateways_per_campaign / IOT_PAGE) + spec.overrides_per_campaign)
    return BackendIdeal("iot-campaigns", reads + 3 + campaigns * per_campaign, spec.concurrency, 7, noop)


def _yateota(spec: FleetSpec) -> BackendIdeal:
    pages = max(1, math.ceil(spec.failed_per_campaign / YATE_PAGE))
    if spec.failed_per_campaign % YATE_PAGE == 0:
        pages += 1  # a full last page needs one more (empty) page to prove it was the last
    reads = 1 + spec.yate_campaigns * pages
    return BackendIdeal("yateota", reads + spec.yate_campaigns * spec.failed_per_campaign, spec.concurrency, 3,
                        reads)


def _sms_gateway(spec: FleetSpec) -> BackendIdeal:
    sends = math.ceil(spec.sms_recipients / GATEWAY_SEND_BATCH)
    results = math.ceil(spec.sms_recipients / GATEWAY_QUERY_BATCH)
    return BackendIdeal("sms-gateway", 2 + sends, spec.concurrency, 3, 2 + results)


def _ogangi(spec: FleetSpec) -> BackendIdeal:
    parallel = spec.ogangi_in_flight or OGANGI_DEFAULT_IN_FLIGHT
    return BackendIdeal("ogangi", spec.ogangi_recipients, min(parallel, spec.concurrency), 0, 0)


def ideal_seconds(spec: FleetSpec, latency_s: float) -> tuple[float, str]:
    """The ideal converge time and the backend that sets it."""
    ideals = backend_ideals(spec)
    name = max(ideals, key=lambda n: ideals[n].seconds(latency_s))
    return ideals[name].seconds(latency_s), name


def minimum_requests(spec: FleetSpec) -> int:
    return sum(ideal.requests for ideal in backend_ideals(spec).values())


def minimum_noop_reads(spec: FleetSpec) -> int:
    return sum(ideal.noop_reads for ideal in backend_ideals(spec).values())


if __name__ == "__main__":
    standard = FleetSpec()
    for ideal in backend_ideals(standard).values():
        print(f"{ideal.backend}: {ideal.requests} requests, {ideal.seconds(0.010):.2f} s")
    seconds, by = ideal_seconds(standard, 0.010)
    print(f"ideal: {seconds:.2f} s (set by {by}); minimum requests: {minimum_requests(standard)}")
