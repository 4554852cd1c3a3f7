"""TLSA records judged against a chain without DNS (runner/net/dane.py, RFC 7672 and RFC 7671): every usage,
selector and matching type, the records a sender ignores, DANE-TA's name rule and the chain it needs, and the
rollover rule. The certificates are trustme's; the association data is made with cryptography
(tests/support/certs.py), independently of the DER walker DANE uses."""

from __future__ import annotations

import ssl

import pytest
import trustme

from runner.net.dane import TlsaRecord, judge
from tests.support.certs import association

HOST = "mx.example.test"


def der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


@pytest.fixture(scope="module")
def pki():
    """A root, an intermediate under it, a leaf for HOST from the intermediate, and a second leaf (the next key)."""
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert(HOST)
    following = intermediate.issue_cert(HOST)
    return {"root": der(root.cert_pem.bytes()), "intermediate": der(intermediate.cert_pem.bytes()),
            "leaf": der(leaf.cert_chain_pems[0].bytes()), "next": der(following.cert_chain_pems[0].bytes())}


def record(usage: int, selector: int, mtype: int, cert: bytes) -> TlsaRecord:
    return TlsaRecord(usage, selector, mtype, bytes.fromhex(association(cert, selector, mtype)))


SENT = ("leaf", "intermediate")  # what a well-configured server sends: its certificate and the issuing CA


def chain_of(pki, names=SENT) -> list[bytes]:
    return [pki[name] for name in names]


@pytest.mark.parametrize("mtype", [0, 1, 2])
@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize(("usage", "cert", "which"), [
    (3, "leaf", "the server's certificate"),
    (2, "intermediate", "certificate 2 of the chain"),
])
def test_every_usage_selector_and_matching_type_matches_its_certificate(pki, usage, cert, which, selector, mtype):
    verdict = judge([record(usage, selector, mtype, pki[cert])], chain_of(pki), [HOST])
    assert verdict.problems == ()
    assert len(verdict.matched) == 1 and verdict.matched[0].endswith(f"matches {which}")
    assert verdict.matched[0].startswith(f"{usage} {selector} {mtype} ")
    assert ("DANE-EE" if usage == 3 else "DANE-TA") in verdict.matched[0]


@pytest.mark.parametrize("mtype", [0, 1, 2])
@pytest.mark.parametrize("selector", [0, 1])
def test_a_record_of_another_key_fails_naming_what_it_did_not_match(pki, selector, mtype):
    verdict = judge([record(3, selector, mtype, pki["next"])], chain_of(pki), [HOST])
    assert verdict.matched == () and len(verdict.unmatched) == 1
    assert verdict.problems[0].startswith("no usable TLSA record matches the chain the server sends: ")
    assert "(DANE-EE) does not match the server's certificate" in verdict.problems[0]


def test_dane_ee_is_matched_against_the_servers_certificate_only(pki):
    verdict = judge([record(3, 1, 1, pki["intermediate"])], chain_of(pki), [HOST])
    assert verdict.matched == () and verdict.problems


def test_dane_ee_ignores_names_and_dates(pki):
    """RFC 7672 §3.1.1: a DANE-EE match is the whole check; a certificate for another name still passes."""
    verdict = judge([record(3, 1, 1, pki["leaf"]), record(3, 1, 1, pki["next"])], chain_of(pki),
                    ["other.example.net"])
    assert verdict.problems == () and verdict.rollover


def test_dane_ta_needs_the_server_certificate_to_name_the_host(pki):
    records = [record(2, 1, 1, pki["intermediate"])]
    wrong = judge(records, chain_of(pki), ["other.example.net", "example.net"])
    assert wrong.problems == ("the DANE-TA record matches, but the server's certificate does not name "
                              f"other.example.net or example.net (its names: {HOST}; RFC 7672 §3.2.3)",)
    assert judge(records, chain_of(pki), ["example.net", HOST]).problems == ()  # the MX host is one of the names


def test_a_dane_ta_record_against_a_chain_without_the_issuer(pki):
    """RFC 7671 §5.2.2: the server must send the trust anchor a 2 x x record names; sending only its own
    certificate leaves nothing to match, and the reason says so."""
    verdict = judge([record(2, 0, 1, pki["intermediate"])], chain_of(pki, ("leaf",)), [HOST])
    assert verdict.matched == ()
    assert "the server sends only its own certificate, and a DANE-TA record needs the issuing certificate in " \
           "the chain it sends (RFC 7671 §5.2.2)" in verdict.problems[0]


def test_a_dane_ta_record_of_a_root_the_server_does_not_send(pki):
    verdict = judge([record(2, 1, 1, pki["root"])], chain_of(pki), [HOST])
    assert verdict.matched == ()
    assert verdict.problems[0].endswith("(DANE-TA) matches no certificate the server sends above its own (1 sent)")


@pytest.mark.parametrize(("fields", "why"), [
    ((0, 1, 1), "usage 0 (PKIX-TA) is not used for SMTP (RFC 7672 §3.1.3)"),
    ((1, 1, 1), "usage 1 (PKIX-EE) is not used for SMTP (RFC 7672 §3.1.3)"),
    ((4, 1, 1), "unknown usage 4"),
    ((3, 2, 1), "unknown selector 2"),
    ((3, 1, 3), "unknown matching type 3"),
])
def test_records_a_sender_ignores_are_said_and_match_nothing(pki, fields, why):
    usage, selector, mtype = fields
    ignored = TlsaRecord(usage, selector, mtype, bytes.fromhex(association(pki["leaf"], 1, 1)))
    verdict = judge([ignored], chain_of(pki), [HOST])
    assert verdict.ignored == (f"{ignored}: {why}",)
    assert verdict.problems == ("no usable TLSA record (usages 2 and 3 only, RFC 7672 §3.1.3)",)
    beside = judge([ignored, record(3, 1, 1, pki["leaf"])], chain_of(pki), [HOST])  # a usable one decides
    assert beside.problems == () and len(beside.ignored) == 1


def test_a_certificate_that_cannot_be_read_matches_nothing(pki):
    verdict = judge([record(3, 1, 1, pki["leaf"])], [b"\x30\x03\x02\x01\x00"], [HOST])
    assert verdict.matched == () and verdict.problems


@pytest.mark.parametrize(("records", "sent", "rollover"), [
    ([("3", "leaf")], SENT, False),                                  # the current key alone
    ([("3", "leaf"), ("3", "next")], SENT, True),                    # current + next (RFC 7671 §8.1)
    ([("3", "leaf"), ("2", "intermediate")], SENT, True),            # 3 1 1 + 2 1 1, both matching
    ([("3", "leaf"), ("2", "intermediate")], ("leaf",), False),      # the 2 1 1 cannot match: no CA sent
    ([("2", "intermediate"), ("2", "root")], SENT, True),            # the current issuer + the next one
    ([("2", "intermediate")], SENT, False),
    ([("3", "next")], SENT, False),                                  # nothing matches: no rollover to speak of
])
def test_the_rollover_rule(pki, records, sent, rollover):
    tlsa = [record(int(usage), 1, 1, pki[cert]) for usage, cert in records]
    verdict = judge(tlsa, chain_of(pki, sent), [HOST])
    assert verdict.rollover is rollover
    if verdict.matched and not rollover:
        assert verdict.warnings[0].startswith("no rollover: only the current key is published")
        assert "RFC 7671 §8.1" in verdict.warnings[0]
    else:
        assert verdict.warnings == ()


def test_without_the_ca_sent_the_rollover_warning_says_why_the_2_1_1_cannot_help(pki):
    tlsa = [record(3, 1, 1, pki["leaf"]), record(2, 1, 1, pki["intermediate"])]
    verdict = judge(tlsa, chain_of(pki, ("leaf",)), [HOST])
    assert verdict.problems == ()
    assert verdict.warnings[0].endswith("; the 2 1 1 published cannot take over: the server does not send its CA "
                                        "certificate")


def test_records_are_written_as_a_zone_file_writes_them_the_data_cut_short(pki):
    tlsa = record(3, 1, 1, pki["leaf"])
    assert str(tlsa) == f"3 1 1 {tlsa.data.hex()[:16]}..."
    assert str(TlsaRecord(3, 1, 0, b"\x01\x02")) == "3 1 0 0102"
