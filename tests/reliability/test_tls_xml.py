"""TLS and XML, end to end through the real ``reconcile`` entry point.

TLS: certificate verification is on unless a Backend turns it off or names a CA. A Backend for the
HTTPS SMS gateway simulator with the default ``tls`` fails with a clear message and without a retry
(a counting TCP relay in front of the simulator sees one connection); a CA that did not sign the
certificate fails the same way; ``tls: {caFile: ...}`` naming the sandbox's CA (inside the repository)
works, and so does ``tls: {verify: false}``.

XML: an Ogangi reply with entity expansion (billion laughs), an external entity (``http://`` or
``file://``), an external parameter entity or an external DTD is refused as a malformed reply, quickly,
and nothing it names is fetched or read: the little server that serves the hostile replies also serves
the entities, and counts who asks for them. The message's fate becomes ``unknown`` (the send may have
happened), never ``accepted`` on the word of such a reply.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from reconciler.cli.main import main
from reconciler.sandbox.run import RunningSandbox, SandboxOptions, running_sandbox
from reconciler.sandbox.testing import SandboxControls

CERTIFICATE_MESSAGE = "TLS certificate verification failed"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxOptions(port_base=0, gateway_count=10, seed=13)) as running:
        yield running


class CountingRelay:
    """A TCP relay on a free loopback port that forwards to ``target`` and counts connections."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self._server.close()


@pytest.fixture
def relay(sandbox: RunningSandbox) -> Iterator[CountingRelay]:
    running = CountingRelay(sandbox.servers["sms-gateway"].port)
    yield running
    running.close()


def gateway_repo(root: Path, url: str, tls: str | None) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    tls_line = f"\n  tls: {tls}" if tls else ""
    (root / "gw.yaml").write_text(f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: gw}}
spec:
  type: sms-gateway
  url: "{url}"
  auth: {{username: admin, password: {{env: GW_PASSWORD}}}}{tls_line}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: notice}}
spec: {{backend: gw, text: "Hello", recipients: {{inline: ["+491700000001"]}}, state: paused}}
""", encoding="utf-8")
    return root


def dry_run(root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, float]:
    monkeypatch.setenv("GW_PASSWORD", "admin")
    capsys.readouterr()
    started = time.monotonic()
    code = main(["--dry-run", str(root / "gw.yaml"), "--no-state"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err, time.monotonic() - started


def test_default_tls_refuses_the_self_signed_gateway_once_with_a_clear_message(
    sandbox: RunningSandbox, relay: CountingRelay, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``tls`` in the Backend: verification against the system roots fails, is reported as such, and
    the connection is not tried again."""
    SandboxControls.of(sandbox).reset()
    root = gateway_repo(tmp_path / "ops", f"https://127.0.0.1:{relay.port}", None)
    code, output, seconds = dry_run(root, capsys, monkeypatch)
    assert code == 1
    assert CERTIFICATE_MESSAGE in output and "caFile" in output
    assert relay.connections == 1
    assert SandboxControls.of(sandbox).total() == 0
    assert seconds < 10


def test_a_ca_that_did_not_sign_the_certificate_is_refused_the_same_way(
    sandbox: RunningSandbox, relay: CountingRelay, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """``caFile`` naming another CA: refused once, with the same message."""
    SandboxControls.of(sandbox).reset()
    root = gateway_repo(tmp_path / "ops", f"https://127.0.0.1:{relay.port}", "{caFile: other-ca.pem}")
    trustme.CA().cert_pem.write_to_path(str(root / "other-ca.pem"))
    code, output, _ = dry_run(root, capsys, monkeypatch)
    assert (code, CERTIFICATE_MESSAGE in output, relay.connections) == (1, True, 1)
    assert SandboxControls.of(sandbox).total() == 0


@pytest.mark.parametrize("tls", ["{caFile: sandbox-ca.pem}", "{verify: false}"], ids=["ca-file", "verify-off"])
def test_naming_the_ca_or_turning_verification_off_reaches_the_gateway(
    sandbox: RunningSandbox, relay: CountingRelay, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tls: str
) -> None:
    """The sandbox's CA copied into the repository and named by ``caFile`` (or verification turned off
    on purpose) lets the dry run read the gateway."""
    SandboxControls.of(sandbox).reset()
    root = gateway_repo(tmp_path / "ops", f"https://127.0.0.1:{relay.port}", tls)
    shutil.copyfile(sandbox.tls.ca_file, root / "sandbox-ca.pem")
    code, output, _ = dry_run(root, capsys, monkeypatch)
    assert code == 0, output
    assert CERTIFICATE_MESSAGE not in output
    assert SandboxControls.of(sandbox).total() > 0


# --- hostile XML from "Ogangi" -------------------------------------------------------------------

MARKER = "file-entity-marker-7f3a"


def hostile_replies(port: int, marker_file: Path) -> dict[str, bytes]:
    base = f"http://127.0.0.1:{port}"
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    envelope = "<response><input>sendSMS</input><status>OK</status><description>{}</description>" \
               "<result><messages><message><id>1</id><status>SENT</status><to>{}</to></message></messages>" \
               "</result></response>"
    return {
        "billion-laughs": f'<?xml version="1.0"?><!DOCTYPE response [<!ENTITY lol0 "lol">{lol}]>'
                          f'{envelope.format("&lol9;", "x")}'.encode(),
        "external-http-entity": f'<?xml version="1.0"?><!DOCTYPE response [<!ENTITY x SYSTEM "{base}/leak">]>'
                                f'{envelope.format("&x;", "&x;")}'.encode(),
        "external-file-entity": f'<?xml version="1.0"?><!DOCTYPE response [<!ENTITY x SYSTEM "file://{marker_file}">]>'
                                f'{envelope.format("&x;", "&x;")}'.encode(),
        "external-parameter-entity": f'<?xml version="1.0"?><!DOCTYPE response [<!ENTITY % p SYSTEM "{base}/dtd">'
                                     f'%p;]>{envelope.format("ok", "x")}'.encode(),
        "external-dtd": f'<?xml version="1.0"?><!DOCTYPE response SYSTEM "{base}/dtd">'
                        f'{envelope.format("ok", "x")}'.encode(),
    }


class HostileOgangi:
    """Answers every sendSMS with one hostile XML body; serves ``/leak`` and ``/dtd`` and counts requests."""

    def __init__(self, marker_file: Path) -> None:
        self.hits: Counter[str] = Counter()
        self.reply = b""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                kind = "leak" if self.path.startswith("/leak") else "dtd" if self.path.startswith("/dtd") else "api"
                outer.hits[kind] += 1
                body = {"leak": b"LEAKED", "dtd": b'<!ENTITY x SYSTEM "file:///etc/hostname">'}.get(kind, outer.reply)
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.replies = hostile_replies(self.port, marker_file)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def marker_file(tmp_path: Path) -> Path:
    path = tmp_path / "marker.txt"
    path.write_text(MARKER, encoding="utf-8")
    return path


@pytest.fixture
def hostile(marker_file: Path) -> Iterator[HostileOgangi]:
    server = HostileOgangi(marker_file)
    yield server
    server.close()


def ogangi_repo(root: Path, port: int) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "og.yaml").write_text(f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: og}}
spec:
  type: ogangi
  url: "http://127.0.0.1:{port}"
  auth: {{instanceId: "7", publicKey: sandbox-public, privateKey: {{env: OG_PRIVATE_KEY}}}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: welcome}}
spec: {{backend: og, text: "Welcome", from: "12345", recipients: {{inline: ["+584140000001"]}}}}
""", encoding="utf-8")
    return root


XML_CASES = ["billion-laughs", "external-http-entity", "external-file-entity", "external-parameter-entity",
             "external-dtd"]


def send_one(hostile: HostileOgangi, case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str, Path, float]:
    """Apply a one-recipient Ogangi campaign against the hostile server: (ledger fates, output, store, seconds)."""
    hostile.reply = hostile.replies[case]
    root = ogangi_repo(tmp_path / "ops", hostile.port)
    state = tmp_path / "state.db"
    monkeypatch.setenv("OG_PRIVATE_KEY", "sandbox-private")
    capsys.readouterr()
    started = time.monotonic()
    main([str(root / "og.yaml"), "--state", f"sqlite:///{state}", "--risk-duplicate-sms"])  # a new store
    seconds = time.monotonic() - started
    captured = capsys.readouterr()
    with sqlite3.connect(state) as db:
        fates = [row[0] for row in db.execute("SELECT state FROM send_ledger")]
    return fates, captured.out + captured.err, state, seconds


@pytest.mark.parametrize("case", XML_CASES)
def test_hostile_xml_from_ogangi_is_a_malformed_reply_and_nothing_is_fetched(
    hostile: HostileOgangi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    case: str
) -> None:
    """The send's reply is refused (its fate ``unknown``, never ``accepted``), within seconds, and no
    entity or DTD it names is requested or read."""
    fates, output, state, seconds = send_one(hostile, case, tmp_path, capsys, monkeypatch)
    assert (hostile.hits["api"], hostile.hits["leak"], hostile.hits["dtd"]) == (1, 0, 0)
    assert fates == ["unknown"], output
    assert "Traceback" not in output and "internal error" not in output
    assert MARKER not in output and b"LEAKED" not in state.read_bytes()
    assert MARKER.encode() not in state.read_bytes()
    assert seconds < 15
