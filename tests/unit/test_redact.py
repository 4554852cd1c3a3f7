"""Secrets never reach a transcript or report: the password, its base64, the SASL blobs that carry it."""

from __future__ import annotations

import base64

from runner.redact import MASK, Redactor

PASSWORD = "s3cret-pw"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_password_is_masked() -> None:
    redactor = Redactor()
    redactor.add(PASSWORD)
    assert redactor.text(f"password {PASSWORD} rejected") == f"password {MASK} rejected"
    assert redactor.bytes(f"{PASSWORD}{PASSWORD}".encode()) == (MASK * 2).encode()


def test_base64_of_the_password_is_masked() -> None:
    redactor = Redactor()
    redactor.add(PASSWORD)
    # AUTH LOGIN (draft-murchison-sasl-login): the password goes alone, base64-encoded, after a 334
    assert redactor.bytes(f"{b64(PASSWORD)}\r\n".encode()) == f"{MASK}\r\n".encode()


def test_base64_is_not_masked_when_not_asked_for() -> None:
    redactor = Redactor()
    redactor.add(PASSWORD, encoded=False)
    assert redactor.text(b64(PASSWORD)) == b64(PASSWORD)
    assert redactor.text(PASSWORD) == MASK


def test_plain_blob_base64_is_masked() -> None:
    redactor = Redactor()
    redactor.add(PASSWORD)
    blob = f"\0alice\0{PASSWORD}"  # RFC 4616: authzid NUL authcid NUL passwd
    redactor.add(blob)
    line = f"AUTH PLAIN {b64(blob)}\r\n"
    assert b64(PASSWORD) not in line  # the password's own base64 is not in the blob's: the blob must be registered
    assert redactor.text(line) == f"AUTH PLAIN {MASK}\r\n"


def test_longer_secret_is_masked_whole_before_a_shorter_one_inside_it() -> None:
    redactor = Redactor()
    redactor.add("pass")
    redactor.add("password1")
    assert redactor.text("user password1 and pass") == f"user {MASK} and {MASK}"


def test_short_values_are_left_alone() -> None:
    redactor = Redactor()
    redactor.add("ab")
    redactor.add("")
    assert not redactor
    assert redactor.text("ab about abba") == "ab about abba"
    assert redactor.text(b64("ab")) == b64("ab")


def test_three_byte_secret_is_masked() -> None:
    redactor = Redactor()
    redactor.add("a1b")
    assert redactor
    assert redactor.text("x a1b y") == f"x {MASK} y"


def test_non_ascii_secret_and_undecodable_text() -> None:
    redactor = Redactor()
    redactor.add("mot-de-passé")
    raw = "mot-de-passé".encode() + b" \xff"
    assert redactor.bytes(raw) == MASK.encode() + b" \xff"
    assert redactor.text("le mot-de-passé \udcff") == f"le {MASK} \udcff"


def test_nothing_registered_changes_nothing() -> None:
    redactor = Redactor()
    assert not redactor
    assert redactor.bytes(b"AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n") == b"AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"
