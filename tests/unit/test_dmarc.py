"""DMARC records read tag by tag, and organisational domains from the public-suffix list (runner/net/dmarc.py)."""

from __future__ import annotations

import pytest

from runner.net.dmarc import organisational_domain, parse_tags


def _parsed(record: str) -> tuple[dict[str, str], list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    return parse_tags(record, errors, warnings), errors, warnings


def test_a_full_record_reads_without_a_problem():
    tags, errors, warnings = _parsed("v=DMARC1; p=reject; sp=quarantine; pct=100; adkim=s; aspf=r; fo=1:d; ri=86400; "
                                     "rua=mailto:a@example.com,mailto:b@example.net!10m; ruf=mailto:f@example.com")
    assert (errors, warnings) == ([], [])
    assert (tags["p"], tags["sp"], tags["adkim"]) == ("reject", "quarantine", "s")


@pytest.mark.parametrize(("record", "error"), [
    ("v=DMARC1; p=bogus", "p=bogus is not a policy: none, quarantine, reject (RFC 7489 §6.3)"),
    ("v=DMARC1; p=none; sp=block", "sp=block is not a policy: none, quarantine, reject (RFC 7489 §6.3)"),
    ("v=DMARC1; rua=mailto:a@example.com", "no p= tag: the policy is required (RFC 7489 §6.3)"),
    ("v=DMARC1; p=none; pct=150", "pct=150 is not a whole number from 0 to 100 (RFC 7489 §6.3)"),
    ("v=DMARC1; p=none; adkim=x", "adkim=x is not an alignment mode: r, s (RFC 7489 §6.3)"),
    ("v=DMARC1; p=none; rua=a@example.com", "rua: 'a@example.com' is not a mailto: URI (RFC 7489 §6.2, §6.3)"),
    ("v=DMARC1; p=none; p=reject", "the tag p= appears twice (RFC 7489 §6.4)"),
    ("v=DMARC1; p=none; fo=2", "fo=2 is not a list of 0, 1, d and s (RFC 7489 §6.3)"),
    ("v=DMARC1; p=none; junk", "'junk' is not a tag=value pair (RFC 7489 §6.4)"),
])
def test_each_bad_tag_is_named(record, error):
    assert _parsed(record)[1] == [error]


def test_unknown_tags_and_a_partial_pct_are_warnings():
    _, errors, warnings = _parsed("v=DMARC1; p=reject; pct=20; np=reject; xyz=1")
    assert errors == []
    assert warnings == ["np= is DMARCbis', not RFC 7489's: receivers of RFC 7489 ignore it",
                        "unknown tag xyz=, ignored (RFC 7489 §6.3)",
                        "pct=20: the policy applies to 20% of failing mail only (RFC 7489 §6.6.4)"]


@pytest.mark.parametrize(("domain", "organisational"), [
    ("mail.example.co.uk", "example.co.uk"), ("a.b.example.com", "example.com"), ("example.com.", "example.com"),
    ("mail.inherit.test", "inherit.test"),
])
def test_the_organisational_domain_is_one_label_below_the_public_suffix(domain, organisational):
    assert organisational_domain(domain) == organisational
