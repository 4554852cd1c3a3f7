"""A deliberately weak STARTTLS server for TLS audits: TLS 1.0 to 1.2, every suite OpenSSL still has at security
level 0 (3DES, anonymous DH, CBC), and a leaf sent without its intermediate (an incomplete chain)."""

from __future__ import annotations

import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

import trustme

from runner.tools.server import EmbeddedServer, ServerTls


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
    from cryptography import x509

    subject = x509.load_pem_x509_certificate(middle.cert_pem.bytes()).subject.rfc4514_string()
    return WeakServer(EmbeddedServer(tls=ServerTls(context)).start(), folder / "root.pem", subject)
