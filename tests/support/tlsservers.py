"""A deliberately weak STARTTLS server for TLS audits: TLS 1.0 to 1.2, every suite OpenSSL still has at security
level 0 (3DES, anonymous DH, CBC), DHE with a 1536-bit prime (RFC 3526 group 5), and a leaf sent without its
intermediate (an incomplete chain). `offer_step` runs a plan of one tls_offer step against a server."""

from __future__ import annotations

import json
import ssl
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import trustme

from runner.tools.server import EmbeddedServer, ServerTls
from tests.support.cli import run, write_plan

WEAK_DH = "modp_1536"  # RFC 3526 group 5: under the 2048 bits Mozilla's intermediate profile asks


@dataclass(frozen=True)
class WeakServer:
    server: EmbeddedServer
    cafile: Path  # the root CA: the intermediate between it and the leaf is not sent
    intermediate: str  # the intermediate's subject, as RFC 4514 writes it


def weak_server(folder: Path) -> WeakServer:
    """Started; stop it with .server.stop()."""
    root = trustme.CA(key_type=trustme.KeyType.RSA)
    middle = root.create_child_ca(key_type=trustme.KeyType.RSA)
    leaf = middle.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.RSA)
    root.cert_pem.write_to_path(str(folder / "root.pem"))
    leaf_only = folder / "leaf-only.pem"  # the key and the leaf, not the chain trustme would add
    leaf_only.write_bytes(leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS 1.0 is deprecated: offering it is what this server is for
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version, context.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(str(leaf_only))
    context.load_dh_params(str(_dh_params(folder)))
    from cryptography import x509

    subject = x509.load_pem_x509_certificate(middle.cert_pem.bytes()).subject.rfc4514_string()
    return WeakServer(EmbeddedServer(tls=ServerTls(context)).start(), folder / "root.pem", subject)


def _dh_params(folder: Path) -> Path:
    """The well-known 1536-bit group as PEM, from the openssl command (scripts/test-env.sh installs it)."""
    path = folder / "dh1536.pem"
    subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", f"group:{WEAK_DH}",
                    "-out", str(path)], check=True, capture_output=True, timeout=30)
    return path


def offer_step(folder: Path, port: int, options: str, cafile: str) -> tuple[int, dict, str]:
    """Run a plan of one tls_offer step against 127.0.0.1:port: the exit status, the step's details, the output."""
    plan = write_plan(folder, f"""
target: {{host: 127.0.0.1, port: {port}, cafile: "{cafile}", server_name: localhost}}
cases:
  - name: offer
    steps:
      - expect: 220
      - send: EHLO client.example.com
        expect: 250
      - tls_offer: {options}
        timeout: 60
""")
    code, out, err = run(plan, "--json", str(folder / "r.json"), "--no-report", "-v")
    step = json.loads((folder / "r.json").read_text())["plans"][0]["cases"][0]["steps"][2]
    return code, step.get("details") or {}, out + err


@dataclass(frozen=True)
class SniServer:
    server: EmbeddedServer
    cafile: Path  # the CA of its certificate, valid for localhost, 127.0.0.1 and mail.smtprun.test
    names: list[str | None]  # the SNI name of each handshake, in order; None when the client sent none


def sni_server(folder: Path, implicit: bool = False) -> SniServer:
    """A STARTTLS (or, `implicit`, TLS-on-connect) server that records the SNI each client sends. Started;
    stop it with .server.stop()."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "sni-ca.pem"))
    leaf = ca.issue_cert("localhost", "127.0.0.1", "mail.smtprun.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    names: list[str | None] = []
    context.sni_callback = lambda _sslobj, name, _ctx: names.append(name)  # None: go on with this context
    server = EmbeddedServer(tls=ServerTls(context, implicit)).start()
    names.clear()  # the handshake of the check that it is ready
    return SniServer(server, folder / "sni-ca.pem", names)
