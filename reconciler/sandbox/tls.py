"""A throw-away certificate authority and server certificate for the HTTPS simulators.

Made with ``trustme`` at start, written as PEM files, so the SMS gateway simulator serves HTTPS like
the real (self-signed) gateways and clients can either trust ``ca_file`` or switch verification off.
"""

from __future__ import annotations

from pathlib import Path

import trustme

from reconciler.sandbox.harness import TlsFiles


def generate_tls_files(directory: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` into ``directory`` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*hosts)
    files = TlsFiles(
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
        ca_file=directory / "ca.pem",
    )
    server.cert_chain_pems[0].write_to_path(str(files.cert_file))
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(str(files.cert_file), append=True)
    server.private_key_pem.write_to_path(str(files.key_file))
    ca.cert_pem.write_to_path(str(files.ca_file))
    return files
