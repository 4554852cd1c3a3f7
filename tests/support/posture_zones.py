"""Fixture zones of mail posture for dnsmasq (tests/support/dnsmasq.py): one domain per case, under `.test`.

Each fixture is a domain and the dnsmasq options that serve it; the good one's senders are 127.0.0.0/8, so a
case that connects over loopback passes it.
"""

from __future__ import annotations

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
