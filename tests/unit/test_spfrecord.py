"""SPF records read without DNS (runner/net/spfrecord.py): terms, named syntax errors, macros (RFC 7208)."""

from __future__ import annotations

import pytest

from runner.net.spfrecord import expand, parse


def test_terms_with_qualifiers_cidr_lengths_and_modifiers():
    record = parse("v=spf1 ip4:192.0.2.0/24 -a:mail.example.com/28//64 ~mx include:_spf.example.com "
                   "redirect=example.net exp=why.example.com")
    assert record.errors == record.warnings == record.unsafe == []
    terms = {t.name: t for t in record.terms}
    assert terms["ip4"].value == "192.0.2.0/24"
    a = terms["a"]
    assert (a.qualifier, a.value, a.cidr4, a.cidr6) == ("-", "mail.example.com", 28, 64)
    assert terms["mx"].qualifier == "~" and terms["include"].value == "_spf.example.com"
    assert record.modifier("redirect").value == "example.net" and record.modifier("exp").modifier


@pytest.mark.parametrize(("text", "error"), [
    ("v=spf1 ip4:300.1.1.1 -all", "'ip4:300.1.1.1': '300.1.1.1' is not an IPv4 network (RFC 7208 §5.6)"),
    ("v=spf1 ip6:192.0.2.1 -all", "'ip6:192.0.2.1': '192.0.2.1' is not an IPv6 network (RFC 7208 §5.6)"),
    ("v=spf1 include -all", "'include': include needs a domain (RFC 7208 §5.2, §5.7)"),
    ("v=spf1 a/33 -all", "'a/33': CIDR length '/33' out of range (RFC 7208 §5.6)"),
    ("v=spf1 foo:example.com -all", "'foo:example.com': unknown mechanism 'foo' (RFC 7208 §5)"),
    ("v=spf1 all:example.com", "'all:example.com': all takes no argument (RFC 7208 §5.1)"),
    ("v=spf1 redirect=a.example redirect=b.example", "more than one redirect= modifier (RFC 7208 §6)"),
    ("v=spf1 exists:%{q}.example.com -all",
     "'exists:%{q}.example.com': bad macro '%{' in '%{q}.example.com' (RFC 7208 §7.1)"),
    ("v=spf10 -all", "the record does not start with v=spf1 (RFC 7208 §4.5): 'v=spf10 -all'"),
])
def test_each_syntax_error_is_named(text, error):
    assert parse(text).errors == [error]


def test_what_not_to_publish_is_named_apart_from_syntax_errors():
    record = parse("v=spf1 ptr:example.com +all")
    assert record.errors == []
    assert record.unsafe == ["'+all' passes every sender in the world (RFC 7208 §5.1, §8.3)"]
    assert record.warnings == ["'ptr:example.com': ptr should not be used: slow and unreliable (RFC 7208 §5.5)"]
    assert parse("v=spf1 ?all").warnings == ["'?all' says nothing of any sender: neutral (RFC 7208 §5.1, §8.2)"]


def test_macros_expand_as_rfc_7208_section_7_4_shows():
    sender, domain, ip = "strong-bad@email.example.com", "email.example.com", "192.0.2.3"
    assert expand("%{s}", sender, domain, ip) == "strong-bad@email.example.com"
    assert expand("%{o}", sender, domain, ip) == "email.example.com"
    assert expand("%{d4}", sender, domain, ip) == "email.example.com"
    assert expand("%{d2}", sender, domain, ip) == "example.com"
    assert expand("%{dr}", sender, domain, ip) == "com.example.email"
    assert expand("%{l-}", sender, domain, ip) == "strong.bad"
    assert expand("%{ir}.%{v}._spf.%{d2}", sender, domain, ip) == "3.2.0.192.in-addr._spf.example.com"
    assert expand("%{ir}.%{v}._spf.%{d2}", sender, domain, "2001:db8::cb01").startswith(
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf")
