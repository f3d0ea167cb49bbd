"""Checks within one document that a schema cannot express, and the files documents name.

Time windows begin before they end and quiet hours name a real time zone; rollout waves increase to
100%; inline lists hold no repeats; packages, recipient lists, gateway lists, CA and secret files
exist inside the root, recipient and gateway files are checked row by row, and a CA file must hold PEM
certificates (it is read only when connecting, where a bad one was an OpenSSL error without a position). What these checks
learn on the way (hashes, counts, gateway ids, resolved paths) is kept in ``Facts`` for the model.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, available_timezones

from reconciler.load.declared import Declared, Report
from reconciler.load.gateways import GatewayScan, scan_gateway_file
from reconciler.load.notifications import check_notification
from reconciler.load.recipients import RecipientScan, ScanMemo, dedupe_key, scan_recipients
from reconciler.load.repo_files import RepoFile, resolve_repo_file, sha256_of
from reconciler.load.schema_check import SECRET_KEYS, URL_CREDENTIALS_MESSAGE, did_you_mean, dotted
from reconciler.load.positions import Path_
from reconciler.model import Kind

WINDOWS = ("download", "activation", "execution")
MAX_LIST_PROBLEMS = 50


@dataclass
class Facts:
    """What the checks found out, for building the model."""

    files: dict[tuple[Declared, Path_], RepoFile] = field(default_factory=dict)
    hashes: dict[Path, tuple[str, int]] = field(default_factory=dict)  # by real path
    recipient_scans: dict[Path, RecipientScan] = field(default_factory=dict)  # by real path
    gateway_scans: dict[Path, GatewayScan] = field(default_factory=dict)  # by real path
    gateway_files: dict[Declared, tuple[list[str], list[int]]] = field(default_factory=dict)  # ids and lines
    recipient_counts: dict[Declared, int] = field(default_factory=dict)


def parse_moment(text: str) -> datetime:
    """An RFC 3339 date-time (already checked by the schema) as an aware datetime."""
    return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))


def percent(text: str) -> float:
    """``"25%"`` -> 0.25."""
    return float(text.rstrip("%")) / 100.0


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError, OSError...: all mean "not a zone"
        return f"unknown time zone `{name[:60]}`{did_you_mean(name, _known_zones())}; expected an IANA name such as Europe/Berlin"
    return None


MAX_CA_FILE_BYTES = 10 * 1024 * 1024
_PEM_CERTIFICATE = (b"-----BEGIN CERTIFICATE-----", b"-----BEGIN TRUSTED CERTIFICATE-----")


@lru_cache(maxsize=64)
def _ca_file_problem(path: Path, size: int, mtime_ns: int) -> str | None:
    """What is wrong with ``path`` as a CA file (``ssl`` reads it when connecting, and the error then,
    OpenSSL's "PEM lib", names neither the file nor the field), or None. Cached per file version."""
    if size > MAX_CA_FILE_BYTES:
        return f"is {size:,} bytes; a PEM file of CA certificates is far smaller (at most {MAX_CA_FILE_BYTES:,})"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    expected = "expected a PEM file of CA certificates (`-----BEGIN CERTIFICATE-----` blocks)"
    if not data.strip():
        return f"is empty; {expected}"
    if not any(marker in data for marker in _PEM_CERTIFICATE):
        if data[:1] == b"\x30":
            return (f"looks like a DER (binary) certificate; {expected}: convert it with "
                    "`openssl x509 -inform der -in FILE -out FILE.pem`")
        if b"PRIVATE KEY-----" in data:
            return f"holds a private key and no certificate; {expected} (never put a key in the repository)"
        return f"holds no PEM certificate; {expected}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or "a certificate block does not decode"
        return f"is not a valid PEM file of CA certificates: {str(reason).replace('_', ' ').lower()}"
    if not context.cert_store_stats().get("x509"):
        return f"holds no certificate; {expected}"
    return None


def ca_file_problem(path: Path) -> str | None:
    try:
        stat = path.stat()
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    return _ca_file_problem(path, stat.st_size, stat.st_mtime_ns)


class DocumentRules:
    """Runs the per-document checks; one instance per load (it caches file scans)."""

    def __init__(self, *, root: Path, report: Report, scans: ScanMemo | None = None) -> None:
        self.root = root
        self.report = report
        self.facts = Facts()
        self._scan = scans.scan if scans is not None else scan_recipients  # a daemon keeps scans between loads
        self._resolved: dict[tuple[str, str, str], RepoFile | str] = {}  # many documents name the same file

    def check(self, item: Declared) -> None:
        if not item.checkable:
            return
        if item.kind is Kind.BACKEND:
            self._backend(item)
        elif item.kind is Kind.PACKAGE:
            self._package(item)
        elif item.kind is Kind.CAMPAIGN:
            self._campaign(item)
        elif item.kind is Kind.GATEWAY_ASSIGNMENT:
            self._assignment(item)
        elif item.kind is Kind.SCHEDULE:
            self._schedule(item)
        elif item.kind is Kind.NOTIFICATION:
            check_notification(self, item)

    def repo_file(self, item: Declared, path: Path_) -> RepoFile | None:
        raw = item.get(*path)
        if not isinstance(raw, str):
            return None
        key = (str(item.file_path.parent), os.path.dirname(item.doc.file), raw)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = resolve_repo_file(raw, yaml_file=item.file_path,
                                                            yaml_display=item.doc.file, root=self.root)
        if isinstance(found, str):
            self.report.error(item, path, f"{dotted(path)}: {found}")
            return None
        self.facts.files[(item, path)] = found
        return found

    def _backend(self, item: Declared) -> None:
        url = item.get("spec", "url")
        if isinstance(url, str) and "@" in urlsplit(url).netloc:
            self.report.error(item, ("spec", "url"), "spec.url: " + URL_CREDENTIALS_MESSAGE)
        auth = item.get("spec", "auth")
        for key in SECRET_KEYS:
            if isinstance(auth, dict) and isinstance(auth.get(key), dict) and "file" in auth[key]:
                self.repo_file(item, ("spec", "auth", key, "file"))
        if "caFile" in (item.get("spec", "tls") or {}):
            found = self.repo_file(item, ("spec", "tls", "caFile"))
            problem = ca_file_problem(found.real) if found is not None else None
            if problem is not None:
                raw = item.get("spec", "tls", "caFile")
                self.report.error(item, ("spec", "tls", "caFile"), f"spec.tls.caFile: file `{raw}` {problem}")

    def _package(self, item: Declared) -> None:
        found = self.repo_file(item, ("spec", "file"))
        if found is not None and found.real not in self.facts.hashes:
            try:
                self.facts.hashes[found.real] = sha256_of(found.real)
            except OSError as exc:
                self.report.error(item, ("spec", "file"), f"spec.file: cannot be read: {exc.strerror or exc}")

    def _campaign(self, item: Declared) -> None:
        waves = item.get("spec", "rollout", "waves")
        if isinstance(waves, list):
            previous = 0.0
            for index, wave in enumerate(waves):
                share = percent(wave)
                path = ("spec", "rollout", "waves", index)
                if share <= previous:
                    self.report.error(item, path, f"{dotted(path)}: `{wave}` is not above the previous wave; waves are "
                                      "cumulative shares of the fleet and must increase (above 0%)")
                previous = max(previous, share)
            if waves and percent(waves[-1]) != 1.0:
                path = ("spec", "rollout", "waves", len(waves) - 1)
                self.report.error(item, path, f"{dotted(path)}: the last wave is `{waves[-1]}`; it must be 100% so the "
                                  "rollout reaches every gateway")
        inline = item.get("spec", "recipients", "inline")
        if isinstance(inline, list):
            self._inline_recipients(item, inline)
        if isinstance(item.get("spec", "recipients"), dict) and "file" in item.spec["recipients"]:
            found = self.repo_file(item, ("spec", "recipients", "file"))
            if found is not None:
                scan = self.facts.recipient_scans.get(found.real)
                if scan is None:
                    scan = self.facts.recipient_scans[found.real] = self._scan(found.real, display=found.display)
                    for diagnostic in scan.diagnostics:
                        self.report.add(diagnostic)
                if scan.count == 0 and not scan.diagnostics:
                    self.report.error(item, ("spec", "recipients", "file"), "spec.recipients.file: the file lists no "
                                      "recipient")
                self.facts.recipient_counts[item] = scan.count

    def _inline_recipients(self, item: Declared, inline: list[Any]) -> None:
        first: dict[int, int] = {}
        repeats: list[tuple[Path_, str]] = []
        for index, entry in enumerate(inline):
            number = entry.get("number") if isinstance(entry, dict) else entry
            if not isinstance(number, str) or not item.usable("spec", "recipients", "inline", index):
                continue
            key = dedupe_key(number)
            if key in first:
                repeats.append((("spec", "recipients", "inline", index), f"duplicate recipient `{number}` (also item "
                                                                          f"{first[key]})"))
            else:
                first[key] = index
        self._report_capped(item, repeats)

    def _report_capped(self, item: Declared, problems: list[tuple[Path_, str]]) -> None:
        """Report problems found in one inline list, the first ``MAX_LIST_PROBLEMS`` of them."""
        for path, message in problems[:MAX_LIST_PROBLEMS]:
            self.report.error(item, path, f"{dotted(path)}: {message}")
        if len(problems) > MAX_LIST_PROBLEMS:
            path = problems[MAX_LIST_PROBLEMS][0]
            self.report.error(item, path, f"{dotted(path)}: ... and {len(problems) - MAX_LIST_PROBLEMS} more problems "
                              f"in this list (only the first {MAX_LIST_PROBLEMS} are shown)")

    def _assignment(self, item: Declared) -> None:
        spec = item.spec
        if "gateways" in spec and "gatewaysFile" in spec:
            self.report.error(item, ("spec", "gatewaysFile"), "spec.gatewaysFile: use either `gateways` or "
                              "`gatewaysFile`, not both", at_key=True)
        gateways = item.get("spec", "gateways")
        first: dict[str, int] = {}
        repeats: list[tuple[Path_, str]] = []
        for index, gateway in enumerate(gateways if isinstance(gateways, list) else ()):
            if gateway in first:
                repeats.append((("spec", "gateways", index), f"duplicate gateway `{gateway}` (also item {first[gateway]})"))
            else:
                first[gateway] = index
        self._report_capped(item, repeats)
        if "gatewaysFile" in spec:
            found = self.repo_file(item, ("spec", "gatewaysFile"))
            if found is not None:
                scan = self.facts.gateway_scans.get(found.real)
                if scan is None:
                    scan = self.facts.gateway_scans[found.real] = scan_gateway_file(found.real, display=found.display)
                    for diagnostic in scan.diagnostics:
                        self.report.add(diagnostic)
                if not scan.ids and not scan.diagnostics:
                    self.report.error(item, ("spec", "gatewaysFile"), "spec.gatewaysFile: the file names no gateway")
                self.facts.gateway_files[item] = (scan.ids, scan.lines)

    def _schedule(self, item: Declared) -> None:
        spec = item.spec
        if not any(name in spec for name in (*WINDOWS, "active", "quietHours")):
            self.report.error(item, ("spec",), "spec: a schedule needs at least one of download, activation, "
                              "execution, active or quietHours", at_key=True)
        for name, begin, end in [(w, "begin", "end") for w in WINDOWS] + [("active", "from", "until")]:
            start, stop = item.get("spec", name, begin), item.get("spec", name, end)
            if isinstance(start, str) and isinstance(stop, str) and parse_moment(start) >= parse_moment(stop):
                path = ("spec", name, begin)
                self.report.error(item, path, f"{dotted(path)}: `{start}` is not before {end} `{stop}`; a window "
                                  f"must begin before it ends")
        zone = item.get("spec", "quietHours", "timezone")
        if isinstance(zone, str):
            problem = zone_problem(zone)
            if problem is not None:
                self.report.error(item, ("spec", "quietHours", "timezone"), f"spec.quietHours.timezone: {problem}")
        start, stop = item.get("spec", "quietHours", "from"), item.get("spec", "quietHours", "to")
        if isinstance(start, str) and start == stop:
            self.report.error(item, ("spec", "quietHours", "to"), f"spec.quietHours.to: quiet hours from `{start}` to "
                              f"`{stop}` are empty; to send nothing, set the campaign's state to paused")
