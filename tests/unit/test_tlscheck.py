"""A plan's TLS client options checked before anything is sent (runner/plan/tlscheck.py): each refusal on the
line of the key at fault, with its reason."""

from __future__ import annotations

import os

import pytest
import trustme

from runner.plan import read_plan
from tests.support.validation import only_problem, write

STEPS = "target: {{host: 127.0.0.1}}\nsteps:\n  - expect: 220\n  - starttls: {{{options}}}\n"


@pytest.fixture
def pair(tmp_path):
    """client.pem and client.key beside the plan, and other.key (not theirs)."""
    ca = trustme.CA()
    cert = ca.issue_cert("client.example.com")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    ca.issue_cert("other.example.com").private_key_pem.write_to_path(str(tmp_path / "other.key"))
    return tmp_path


def test_a_matching_pair_beside_the_plan_is_accepted(pair):
    plan = read_plan(write(pair, STEPS.format(options="cert: client.pem, key: client.key, max_version: TLSv1.2, "
                                                      "ciphers: 'ECDHE+AESGCM', sni: mx.example.com")))
    assert plan.cases[0].steps[1].value.cert == "client.pem"


@pytest.mark.parametrize(("options", "where", "message"), [
    ("key: client.key", "4:21", "starttls.key without cert: a client certificate needs both its certificate and "
                                "its private key"),
    ("cert: client.pem", "4:22", "starttls.cert without key: a client certificate needs both its certificate and "
                                 "its private key"),
    ("cert: client.pem, key: other.key", "4:39", "starttls.key {d}/other.key is not the private key of the "
                                                 "certificate in {d}/client.pem"),
    ("cert: gone.pem, key: client.key", "4:22", "starttls.cert: cannot read {d}/gone.pem: No such file or directory"),
    ("cert: client.pem, key: client.pem", "4:39", "starttls.key {d}/client.pem: not a PEM private key (Valid PEM but "
                                                  "no BEGIN/END delimiters for a private key found)"),
    ("min_version: TLSv1.2, max_version: TLSv1.1", "4:51", "starttls: max_version TLSv1.1 is below min_version "
                                                           "TLSv1.2: no TLS version is left to offer"),
    ("ciphers: NO-SUCH-CIPHER", "4:25", "starttls.ciphers: OpenSSL selects no cipher from 'NO-SUCH-CIPHER'"),
    ("sni: 192.0.2.1", "4:21", "starttls.sni: 192.0.2.1 is an IP address; RFC 6066 §3 allows only host names in SNI "
                               "(sni: false sends none)"),
    ("max_version: TLSv1.4", "4:29", "'max_version' must be one of: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 "
                                     '(got "TLSv1.4")'),
])
def test_what_cannot_work_is_refused_with_its_reason(pair, options, where, message):
    assert only_problem(pair, STEPS.format(options=options)) == (where, message.format(d=pair))


def test_relative_paths_are_the_plans_not_the_working_folders(pair, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    read_plan(write(pair, STEPS.format(options="cert: client.pem, key: client.key")))


def test_an_encrypted_key_is_refused(pair):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((pair / "client.key").read_bytes(), None)
    (pair / "locked.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.BestAvailableEncryption(b"pw")))
    assert only_problem(pair, STEPS.format(options="cert: client.pem, key: locked.key"))[1] == \
        f"starttls.key {pair}/locked.key: the key is encrypted; give it unencrypted (openssl pkey -in KEY -out PLAIN)"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_key_is_refused(pair):
    (pair / "client.key").chmod(0)
    assert only_problem(pair, STEPS.format(options="cert: client.pem, key: client.key"))[1] == \
        f"starttls.key: cannot read {pair}/client.key: Permission denied"


def test_target_keys_need_implicit_tls(pair):
    where, message = only_problem(pair, "target: {host: 127.0.0.1, sni: mx.example.com}\nsteps:\n  - expect: 220\n")
    assert (where, message) == ("1:32", "target.sni is for tls: implicit, and this target has none: for STARTTLS "
                                        "give it in the starttls: step")


def test_target_keys_are_checked_as_a_steps_are(pair):
    assert only_problem(pair, "target: {host: 127.0.0.1, tls: implicit, cert: client.pem, key: other.key}\n"
                              "steps:\n  - expect: 220\n") == \
        ("1:65", f"target.key {pair}/other.key is not the private key of the certificate in {pair}/client.pem")


def test_templated_paths_are_left_to_the_run(pair):
    read_plan(write(pair, "vars: {c: nothere.pem}\n" + STEPS.format(options="cert: '{{ c }}', key: '{{ c }}'")))


def test_a_cipher_list_that_cannot_reach_tls13_is_warned_about(pair):
    plan = read_plan(write(pair, STEPS.format(options="ciphers: AES128-SHA")))
    assert [w.message for w in plan.warnings] == [
        "starttls.ciphers applies to TLS 1.2 and older: a TLS 1.3 handshake uses OpenSSL's TLS 1.3 suites whatever "
        "the list says"]
