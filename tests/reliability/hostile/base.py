"""The valid repository every hostile case is made from, and the case type itself.

The base declares every kind on all four backends (pointing at a running sandbox, secrets by ``{env:}``),
with a package file, a gateways file, a recipients CSV and the sandbox's CA. A case is the base with
some files replaced, added or removed, plus symlinks or named pipes to create: it is written into a
fresh directory (its own repository root) by ``materialize``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DECL = "campaigns.d"
CSV = "recipients/notice.csv"
GATEWAYS = "fleets/munich.txt"
PACKAGE = "packages/fw.bin"
CA = "sandbox-ca.pem"
SECRET_ENV = {"IOT_PASSWORD": "admin", "YATE_SECRET": "sandbox-secret", "GW_PASSWORD": "admin",
              "OG_PRIVATE_KEY": "sandbox-private"}


@dataclass(frozen=True)
class HostileCase:
    """One broken repository. ``files`` maps paths (relative to the root) to bytes, None deletes a base
    file; ``positioned`` says the problem has a place in a file, so output must show ``FILE:LINE:COL``."""

    name: str
    files: Mapping[str, bytes | None] = field(default_factory=dict)
    symlinks: Mapping[str, str] = field(default_factory=dict)  # link (relative to the root) -> target
    fifos: tuple[str, ...] = ()  # named pipes to create (never opened by a correct loader)
    positioned: bool = True
    outside: Mapping[str, bytes] = field(default_factory=dict)  # files next to the root (targets of escapes)

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def needs_subprocess(self) -> bool:
        """A case that could block a broken reader forever is run in a process with a timeout."""
        return bool(self.fifos)


@dataclass(frozen=True)
class Urls:
    yateota: str
    iot: str
    ogangi: str
    sms_gateway: str


def base_documents(urls: Urls) -> dict[str, list[dict[str, Any]]]:
    """The valid declarations, by file name under ``campaigns.d/``, as data (cases mutate copies)."""
    def doc(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
        return {"apiVersion": "reconciler/v1", "kind": kind, "metadata": {"name": name, **metadata}, "spec": spec}

    return {
        "backends.yaml": [
            doc("Backend", "iot", {"type": "iot-campaigns", "url": urls.iot,
                                   "auth": {"username": "admin", "password": {"env": "IOT_PASSWORD"}},
                                   "limits": {"concurrency": 8, "timeoutSeconds": 5, "maxRetries": 2}},
                labels={"env": "sandbox"}),
            doc("Backend", "yate", {"type": "yateota", "url": urls.yateota, "auth": {"secret": {"env": "YATE_SECRET"}},
                                    "options": {"authHeader": "X-Authentication"}}),
            doc("Backend", "gw", {"type": "sms-gateway", "url": urls.sms_gateway,
                                  "auth": {"username": "admin", "password": {"env": "GW_PASSWORD"}},
                                  "tls": {"caFile": f"../{CA}"}}),
            doc("Backend", "og", {"type": "ogangi", "url": urls.ogangi,
                                  "auth": {"instanceId": "7", "publicKey": "sandbox-public",
                                           "privateKey": {"env": "OG_PRIVATE_KEY"}}}),
        ],
        "iot.yaml": [
            doc("Package", "fw", {"backend": "iot", "file": f"../{PACKAGE}", "description": "Firmware 2.4"}),
            doc("Campaign", "rollout", {"backend": "iot", "description": "Roll firmware 2.4", "packages": ["fw"],
                                        "settings": {"rebootPolicy": "graceful"}, "state": "running",
                                        "approval": "auto",
                                        "rollout": {"waves": ["10%", "100%"], "successThreshold": "95%",
                                                    "maxFailureRate": "5%"}},
                annotations={"owner": "edge-team"}),
            doc("GatewayAssignment", "rollout-berlin", {"campaign": "rollout", "gateways": ["gw-00001", "gw-00002"]}),
            doc("GatewayAssignment", "rollout-munich", {"campaign": "rollout", "gatewaysFile": f"../{GATEWAYS}"}),
            doc("Schedule", "rollout-nights", {
                "campaign": "rollout",
                "download": {"begin": "2027-03-01T01:00:00Z", "end": "2027-03-01T05:00:00Z"},
                "activation": {"begin": "2027-03-02T01:00:00+01:00", "end": "2027-03-02T03:00:00+01:00"}}),
        ],
        "sim.yaml": [
            doc("Campaign", "applet", {"backend": "yate", "campaignId": 147, "state": "running",
                                       "participants": {"retryFailed": {"maxAttempts": 3},
                                                        "cancel": {"msisdn": ["491700000001"]}}}),
            doc("Schedule", "applet-period", {"campaign": "applet",
                                              "active": {"from": "2027-01-10T00:00:00Z",
                                                         "until": "2027-03-31T00:00:00Z"}}),
        ],
        "sms.yaml": [
            doc("Campaign", "notice", {"backend": "gw", "text": "Maintenance tonight in #param#.",
                                       "recipients": {"file": f"../{CSV}"}, "state": "active",
                                       "rate": {"perSecond": 20}, "deliveryReports": True,
                                       "onUnknownOutcome": "skip", "encoding": "gsm-7bit"}),
            doc("GatewayAssignment", "notice-ports", {"campaign": "notice", "ports": [0, 1, 2, 3]}),
            doc("Schedule", "notice-hours", {"campaign": "notice",
                                             "quietHours": {"from": "21:00", "to": "08:00",
                                                            "timezone": "Europe/Berlin"}}),
            doc("Campaign", "welcome", {"backend": "og", "text": "Welcome, #param#!", "from": "12345",
                                        "recipients": {"inline": [{"number": "+584140000001", "params": ["Ana"]},
                                                                  "+584140000002"]}}),
        ],
    }


def dump(documents: list[dict[str, Any]]) -> bytes:
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, width=100_000).encode("utf-8")


CSV_TEXT = "number,area\n+491700000001,Mitte\n+491700000002,Pankow\n491700000003,Spandau\n"
GATEWAYS_TEXT = "# Munich\ngw-00006\ngw-00007   # rooftop\n\ngw-00008\n"


def base_files(urls: Urls, ca_pem: bytes) -> dict[str, bytes]:
    files = {f"{DECL}/{name}": dump(docs) for name, docs in base_documents(urls).items()}
    files[CSV] = CSV_TEXT.encode()
    files[GATEWAYS] = GATEWAYS_TEXT.encode()
    files[PACKAGE] = b"firmware 2.4\n" * 64
    files[CA] = ca_pem
    return files


def documents_copy(urls: Urls) -> dict[str, list[dict[str, Any]]]:
    return copy.deepcopy(base_documents(urls))


def materialize(case: HostileCase, base: Mapping[str, bytes], workdir: Path) -> Path:
    """Write ``base`` overlaid with the case into ``workdir/repo`` (a git work tree); return that root."""
    root = workdir / "repo"
    (root / ".git").mkdir(parents=True)
    for relative, data in {**base, **case.files}.items():
        if data is None:
            continue
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for relative, data in case.outside.items():
        (workdir / relative).write_bytes(data)
    for link, target in case.symlinks.items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).unlink(missing_ok=True)
        os.symlink(target, root / link)
    for fifo in case.fifos:
        (root / fifo).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(root / fifo)
    return root

