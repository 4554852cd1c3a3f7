"""`expect_dns: {dkim: {selector: ...}}` judges DKIM keys published in a fixture dnsmasq (RFC 6376 §3.6.1)."""

from __future__ import annotations

import pytest

from tests.support.dnsstep import run_dns_step
from tests.support.posture_zones import dkim_records


@pytest.fixture
def keys(tmp_path, embedded, dnsmasq_factory):
    dns = dnsmasq_factory(*dkim_records())
    return lambda selector: run_dns_step(tmp_path, embedded.port, dns,
                                         f"domain: keys.test, dkim: {{selector: {selector}}}")


def test_a_2048_bit_key_passes_with_its_size(keys):
    code, step, out = keys("s2048")
    assert code == 0, out
    (key,) = step["details"]["dkim"]["keys"]
    assert (key["name"], key["key_type"], key["bits"], key["revoked"], key["testing"]) == (
        "s2048._domainkey.keys.test", "rsa", 2048, False, False)


def test_a_1024_bit_key_warns_and_a_testing_key_warns(keys):
    code, step, out = keys("[s1024, testing]")
    assert code == 0, out
    assert step["details"]["dkim"]["warnings"] == [
        "selector s1024: the RSA key has 1024 bits, under the 2048 signers should use (RFC 8301 §3.2)",
        "selector testing: t=y: the domain is testing DKIM, verifiers may treat its signatures as unsigned "
        "(RFC 6376 §3.6.1)"]


@pytest.mark.parametrize(("selector", "reason"), [
    ("s768", "the RSA key has 768 bits, under 1024: verifiers refuse its signatures (RFC 8301 §3.2)"),
    ("revoked", "the key is revoked: p= is empty (RFC 6376 §3.6.1), so every signature with this selector fails"),
    ("absent", "no DKIM key at absent._domainkey.keys.test"),
])
def test_a_weak_revoked_or_missing_key_fails_naming_the_selector(keys, selector, reason):
    code, step, _ = keys(selector)
    assert code == 1
    assert step["reason"] == f"DKIM keys of keys.test: selector {selector}: {reason}"


def test_no_selector_named_is_a_warning(keys):
    code, step, out = keys("''")
    assert code == 0, out
    assert step["details"]["dkim"]["keys"] == []
    assert step["details"]["dkim"]["warnings"] == [
        "no DKIM selector named: no key checked (selectors cannot be listed from DNS; name them with dkim.selector)"]


def test_one_string_may_name_several_selectors_as_a_plan_variable_does(keys):
    code, step, _ = keys("'s2048, s768 revoked'")
    assert code == 1
    assert [key["selector"] for key in step["details"]["dkim"]["keys"]] == ["s2048", "s768", "revoked"]
    assert step["reason"].startswith("DKIM keys of keys.test: selector s768: the RSA key has 768 bits")
