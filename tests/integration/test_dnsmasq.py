"""runner.net.dns against a real dnsmasq on loopback: what a mail admin's own DNS server would answer."""

from __future__ import annotations

import asyncio
import hashlib
import ssl

import pytest
import trustme

from runner.net.dns import (
    DnsError,
    Exchanger,
    ResolverConfig,
    ptr_check,
    resolve_mx,
    txt_present,
)
from runner.net.dnssec import validated
from runner.net.x509 import subject_public_key_info
from tests.support.dnsmasq import Dnsmasq, null_mx_rr, tlsa_rr


@pytest.fixture(scope="module")
def chain() -> list[bytes]:
    ca = trustme.CA()
    leaf = ca.issue_cert("mx1.example.test")
    return [ssl.PEM_cert_to_DER_cert(pem.bytes().decode()) for pem in (*leaf.cert_chain_pems, ca.cert_pem)]


@pytest.fixture
def dnsmasq(dnsmasq_factory, chain) -> Dnsmasq:
    spki_sha256 = hashlib.sha256(subject_public_key_info(chain[0])).digest()
    return dnsmasq_factory(
        "--mx-host=example.test,mx2.example.test,20",
        "--mx-host=example.test,mx1.example.test,10",
        "--host-record=mx1.example.test,127.0.0.1,::1",
        "--host-record=mx2.example.test,127.0.0.2",
        "--host-record=implicit.test,127.0.0.6",
        "--txt-record=example.test,v=spf1 ip4:127.0.0.0/8 -all",
        "--txt-record=_dmarc.example.test,v=DMARC1; p=reject",
        null_mx_rr("nullmx.test"),
        tlsa_rr("_25._tcp.mx1.example.test", 3, 1, 1, spki_sha256),
        tlsa_rr("_25._tcp.mx2.example.test", 3, 0, 1, hashlib.sha256(b"another certificate").digest()),
    )


@pytest.fixture
def config(dnsmasq) -> ResolverConfig:
    return ResolverConfig(nameservers=dnsmasq.nameservers, timeout=2.0)


def test_mx_by_preference(config):
    result = asyncio.run(resolve_mx("example.test", config))
    assert not result.implicit
    assert result.exchangers == (
        Exchanger("mx1.example.test", 10, ("127.0.0.1", "::1"), None),
        Exchanger("mx2.example.test", 20, ("127.0.0.2",), None),
    )


def test_implicit_mx(config):
    result = asyncio.run(resolve_mx("implicit.test", config))
    assert result.implicit and result.exchangers == (Exchanger("implicit.test", 0, ("127.0.0.6",), None),)


def test_null_mx(config):
    with pytest.raises(DnsError, match=r"^null MX \(RFC 7505\): nullmx.test accepts no mail$"):
        asyncio.run(resolve_mx("nullmx.test", config))


def test_nxdomain(config):
    with pytest.raises(DnsError, match=r"^NXDOMAIN for missing.example.test MX$"):
        asyncio.run(resolve_mx("missing.example.test", config))


def test_tlsa_read_back_with_their_status(config, chain):
    """dnsmasq serves the records unsigned: read back whole, said insecure (runner/net/dnssec.py)."""
    answer = asyncio.run(validated("_25._tcp.mx1.example.test", "TLSA", config))
    assert answer.status == "insecure"
    assert [(r.usage, r.selector, r.mtype, r.cert) for r in answer.records] == [
        (3, 1, 1, hashlib.sha256(subject_public_key_info(chain[0])).digest())]


def test_txt_and_ptr(config):
    assert asyncio.run(txt_present("spf", "example.test", config)) is None
    assert asyncio.run(txt_present("dmarc", "example.test", config)) is None
    assert asyncio.run(txt_present("mta_sts", "example.test", config)) == (
        "no MTA-STS record: NXDOMAIN for _mta-sts.example.test TXT"
    )
    # --host-record also answers the PTR of its first address (dnsmasq(8))
    assert asyncio.run(ptr_check("127.0.0.1", ["mx1.example.test"], config)) is None
