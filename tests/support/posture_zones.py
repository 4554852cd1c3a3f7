"""Fixture zones of mail posture for dnsmasq (tests/support/dnsmasq.py): one domain per case, under `.test`.

Each fixture is a domain and the dnsmasq options that serve it; the good one's senders are 127.0.0.0/8, so a
case that connects over loopback passes it.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

MANY = [f"include:i{n}.many.test" for n in range(11)]

SPF_ZONES: dict[str, list[str]] = {
    # include, mx: 3 lookups; the address a loopback case connects from passes
    "good.test": ["--txt-record=good.test,v=spf1 ip4:192.0.2.0/24 include:_spf.good.test mx -all",
                  "--txt-record=_spf.good.test,v=spf1 ip4:127.0.0.0/8 a:relay.good.test ~all",
                  "--mx-host=good.test,mx.good.test,10", "--host-record=mx.good.test,192.0.2.25",
                  "--host-record=relay.good.test,198.51.100.7"],
    # 11 includes: one over RFC 7208 §4.6.4's 10
    "many.test": ["--txt-record=many.test,v=spf1 " + " ".join(MANY) + " -all",
                  *(f"--txt-record=i{n}.many.test,v=spf1 ip4:10.0.{n}.0/24 -all" for n in range(11))],
    # three a: mechanisms naming nothing: one over the void limit of 2
    "void.test": ["--txt-record=void.test,v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test ip4:127.0.0.1 -all"],
    "two.test": ["--txt-record=two.test,v=spf1 ip4:127.0.0.1 -all", "--txt-record=two.test,v=spf1 mx -all"],
    "plusall.test": ["--txt-record=plusall.test,v=spf1 ip4:192.0.2.1 +all"],
    "loop.test": ["--txt-record=loop.test,v=spf1 redirect=loop2.test",
                  "--txt-record=loop2.test,v=spf1 redirect=loop.test"],
    # an include of a name without SPF: a permerror (RFC 7208 §5.2), and a void lookup
    "noinclude.test": ["--txt-record=noinclude.test,v=spf1 include:gone.noinclude.test -all"],
    # exists: with a macro, the sender's address reversed (RFC 7208 §7.3): 127.0.0.1 is listed, so it passes
    "macro.test": ["--txt-record=macro.test,v=spf1 exists:%{ir}._spf.macro.test -all",
                   "--host-record=1.0.0.127._spf.macro.test,127.0.0.2"],
}

DMARC_ZONES: dict[str, list[str]] = {
    "good.test": ["--txt-record=_dmarc.good.test,v=DMARC1; p=reject; adkim=s; rua=mailto:dmarc@good.test"],
    "nodmarc.test": ["--txt-record=nodmarc.test,v=spf1 -all"],
    "bogus.test": ["--txt-record=_dmarc.bogus.test,v=DMARC1; p=bogus"],
    # mail.inherit.test publishes nothing: the organisational domain's record applies, with its sp=
    "mail.inherit.test": ["--txt-record=_dmarc.inherit.test,v=DMARC1; p=quarantine; sp=reject",
                          "--host-record=mail.inherit.test,192.0.2.30"],
    # reports to another organisation that has not said it takes them (RFC 7489 §7.1)
    "extrua.test": ["--txt-record=_dmarc.extrua.test,v=DMARC1; p=none; rua=mailto:reports@collector.test"],
    "authrua.test": ["--txt-record=_dmarc.authrua.test,v=DMARC1; p=none; rua=mailto:reports@collector.test",
                     "--txt-record=authrua.test._report._dmarc.collector.test,v=DMARC1"],
}


def dmarc_records(*domains: str) -> list[str]:
    """dnsmasq options serving the DMARC fixtures named (all of them when none is)."""
    return [option for domain in (domains or DMARC_ZONES) for option in DMARC_ZONES[domain]]


def spf_records(*domains: str) -> list[str]:
    """dnsmasq options serving the SPF fixtures named (all of them when none is)."""
    return [option for domain in (domains or SPF_ZONES) for option in SPF_ZONES[domain]]


# MTA-STS (RFC 8461): each domain has two MX hosts on 127.0.0.1 and a policy host whose A record is the policy
# server's address (tests/support/policyserver.py answers by the Host asked for)
STS_BADCERT_HOST = "mta-sts.stsbadcert.test"
_POLICY = "version: STSv1\r\nmode: {mode}\r\n{mx}max_age: {age}\r\n"


def _policy(mode: str, *mx: str, age: int = 604800) -> bytes:
    return _POLICY.format(mode=mode, mx="".join(f"mx: {m}\r\n" for m in mx), age=age).encode()


@dataclass(frozen=True)
class Answer:
    """What the policy server answers for one policy host."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    length: bool = True  # send Content-Length (else the body ends with the connection)


STS_ANSWERS: dict[str, Answer] = {
    "mta-sts.sts.test": Answer(200, "text/plain; charset=utf-8", _policy("enforce", "*.sts.test")),
    # mx2.stsmiss.test is an MX, but not in the policy: senders that enforce it will not deliver there
    "mta-sts.stsmiss.test": Answer(200, "text/plain", _policy("enforce", "mx1.stsmiss.test")),
    "mta-sts.ststesting.test": Answer(200, "text/plain", _policy("testing", "mx1.ststesting.test")),
    STS_BADCERT_HOST: Answer(200, "text/plain", _policy("enforce", "*.stsbadcert.test")),
    "mta-sts.stsredirect.test": Answer(301, "text/plain", b"moved\n",
                                       (("Location", "https://mta-sts.sts.test/.well-known/mta-sts.txt"),)),
    # 70 KiB of valid lines, no Content-Length: the client must stop reading at 64 KiB on its own
    "mta-sts.stsbig.test": Answer(200, "text/plain", _policy("enforce", *(f"mx{n}.stsbig.test" for n in range(4000))),
                                  length=False),
    "mta-sts.stsjson.test": Answer(200, "application/json", _policy("enforce", "*.stsjson.test")),
    "mta-sts.stsbroken.test": Answer(200, "text/plain", _policy("enforcing", "*.stsbroken.test", age=99999999)),
    "mta-sts.audit.test": Answer(200, "text/plain", _policy("enforce", "mail.smtprun.test")),
}
STS_DOMAINS = [host.removeprefix("mta-sts.") for host in STS_ANSWERS if host != "mta-sts.audit.test"]


def sts_records(policy_address: str, *domains: str) -> list[str]:
    """dnsmasq options for the MTA-STS fixtures named (all but audit.test when none is): the record, two MX hosts
    on 127.0.0.1, the policy host on the policy server's address."""
    options = []
    for domain in domains or STS_DOMAINS:
        options += [f"--txt-record=_mta-sts.{domain},v=STSv1; id=20261207T1",
                    f"--host-record=mta-sts.{domain},{policy_address}"]
        if domain != "audit.test":
            options += [f"--mx-host={domain},mx1.{domain},10", f"--mx-host={domain},mx2.{domain},20",
                        f"--host-record=mx1.{domain},127.0.0.1", f"--host-record=mx2.{domain},127.0.0.1"]
    return options


def txt_rr(name: str, *strings: str) -> str:
    """A --dns-rr option for a TXT record of these strings (type 16, each length-prefixed; RFC 1035 §3.3.14):
    dnsmasq's --txt-record splits at commas, which a TLS-RPT rua= list needs."""
    data = b"".join(bytes([len(part)]) + part for part in (text.encode() for text in strings))
    return f"--dns-rr={name},16,{data.hex()}"


# TLS reporting (RFC 8460)
TLSRPT_ZONES: dict[str, list[str]] = {
    "sts.test": [txt_rr("_smtp._tls.sts.test", "v=TLSRPTv1; rua=mailto:tlsrpt@sts.test,https://r.sts.test/v1")],
    "rptbroken.test": ["--txt-record=_smtp._tls.rptbroken.test,v=TLSRPTv1; rua=ftp://reports.rptbroken.test/",
                       "--txt-record=rptbroken.test,v=spf1 -all"],
    "rptnone.test": ["--txt-record=rptnone.test,v=spf1 -all"],
}


def tlsrpt_records(*domains: str) -> list[str]:
    return [option for domain in (domains or TLSRPT_ZONES) for option in TLSRPT_ZONES[domain]]


# DKIM keys (RFC 6376 §3.6.1) under keys.test: made when first asked for, but the 768-bit one (cryptography makes
# none under 1024 bits; this one is `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:768`'s public half)
RSA_768 = ("MHwwDQYJKoZIhvcNAQEBBQADawAwaAJhAPHltAyY5bevOoreH8Eogs7SZR2yKrBpw5ht2Kl+E1uxUsjaocMiJekvA7ogZPLrNAlfRlw6b77"
           "VtGyV2R2vpmejwBX6+zFWPmu8cycPZ+Dfc3a3Gnl+aS8XJjMAyN/5DQIDAQAB")


@functools.lru_cache(maxsize=1)
def _rsa_keys() -> tuple[str, str]:
    """The base64 public halves of a 2048-bit and a 1024-bit RSA key, made once per test run."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def p(bits: int) -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    return p(2048), p(1024)


def dkim_records(domain: str = "keys.test", spf: bool = True) -> list[str]:
    """The selectors s2048, s1024, s768, revoked and testing (t=y) under DOMAIN, and (with `spf`) an SPF record,
    so that the domain exists."""
    big, small = _rsa_keys()
    return [txt_rr(f"s2048._domainkey.{domain}", f"v=DKIM1; k=rsa; p={big[:200]}", big[200:]),
            f"--txt-record=s1024._domainkey.{domain},v=DKIM1; k=rsa; p={small}",
            f"--txt-record=s768._domainkey.{domain},v=DKIM1; k=rsa; p={RSA_768}",
            f"--txt-record=revoked._domainkey.{domain},v=DKIM1; k=rsa; p=",
            txt_rr(f"testing._domainkey.{domain}", "v=DKIM1; t=y; k=rsa; p=" + big[:200], big[200:]),
            *([f"--txt-record={domain},v=spf1 -all"] if spf else [])]


# DNS blocklists (RFC 5782): bl.test lists 127.0.0.2 (the §5 test entry) with a reason, not 127.0.0.1;
# refusing.test answers a refusal code for everything asked, as Spamhaus does for queries from public resolvers
DNSBL_RECORDS = [
    "--host-record=2.0.0.127.bl.test,127.0.0.2", "--txt-record=2.0.0.127.bl.test,Listed: see https://bl.test/q/2",
    "--txt-record=bl.test,a test blocklist",
    "--address=/refusing.test/127.255.255.254",
    "--mx-host=clean.test,mx.clean.test,10", "--host-record=mx.clean.test,127.0.0.1",
    "--mx-host=listed.test,mx.listed.test,10", "--host-record=mx.listed.test,127.0.0.2",
]
