"""runner/mail/compose.py: the message a `message:` step builds, read back with the `email` package as a
mail client would, and its DKIM signature verified with dkimpy."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone

import pytest

from runner.mail import compose
from runner.mail.compose import Attachment, MessageError, Parts

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
CSV = "name,größe\nalice,1\n".encode()
PARTS = Parts(sender="Bob Büttner <bob@example.com>", to=("alice@example.com", "Zoë <zoe@example.com>"),
              subject="Grüße: the monthly report ✓", headers=(("Reply-To", "noreply@example.com"), ("X-Test", "1")),
              text="Hello Zoë,\n.a line starting with a dot\n", html="<p>Hello <b>Zoë</b></p>",
              attachments=(Attachment("report.pdf", "application/pdf", PDF),
                           Attachment("données.csv", "text/csv", CSV)))
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_a_message_with_both_bodies_and_two_attachments_reads_back_whole() -> None:
    raw = compose.build(PARTS, "id.1@client.test", utf8=False, now=WHEN).as_bytes()
    back = parsed(raw)
    assert str(back["From"]) == "Bob Büttner <bob@example.com>"
    assert [a.addr_spec for a in back["To"].addresses] == ["alice@example.com", "zoe@example.com"]
    assert str(back["Subject"]) == "Grüße: the monthly report ✓"
    assert back["Message-ID"] == "<id.1@client.test>"
    assert back["Date"] == "Wed, 01 May 2024 12:00:00 +0000"
    assert back["Reply-To"] == "noreply@example.com" and back["X-Test"] == "1"
    assert back.get_content_type() == "multipart/mixed"
    body, *files = back.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
    assert back.get_body(("plain",)).get_content() == "Hello Zoë,\r\n.a line starting with a dot\r\n"
    assert back.get_body(("html",)).get_content() == "<p>Hello <b>Zoë</b></p>\r\n"
    assert [(f.get_filename(), f.get_content_type(), f.get_payload(decode=True)) for f in files] == [
        ("report.pdf", "application/pdf", PDF), ("données.csv", "text/csv", CSV)]
    assert all(f["Content-Transfer-Encoding"] == "base64" and f.is_attachment() for f in files)


def test_without_smtputf8_the_message_is_seven_bit_with_encoded_words() -> None:
    raw = compose.build(PARTS, "id.1@client.test", utf8=False).as_bytes()
    assert raw.isascii()  # RFC 2047 words in the header, quoted-printable text, base64 files
    lines = raw.split(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"") and max(map(len, lines)) <= 998  # RFC 5322 §2.1.1
    assert b"Subject: =?utf-8?" in raw
    assert b"filename*=utf-8''donn%C3%A9es.csv" in raw  # RFC 2231


def test_in_an_smtputf8_transaction_header_fields_are_utf8() -> None:
    raw = compose.build(PARTS, "id.1@client.test", utf8=True).as_bytes()
    assert "Subject: Grüße: the monthly report ✓\r\n".encode() in raw  # RFC 6532
    assert "From: Bob Büttner <bob@example.com>\r\n".encode() in raw
    assert str(parsed(raw)["Subject"]) == "Grüße: the monthly report ✓"
    wide = Parts(sender="jörg@exämple.com", text="hi")
    assert str(parsed(compose.build(wide, "i@x", utf8=True).as_bytes())["From"]) == "jörg@exämple.com"


def test_an_address_that_is_not_ascii_needs_smtputf8() -> None:
    with pytest.raises(MessageError, match=r"^From: the address jörg@example.com is not ASCII: .*SMTPUTF8.*RFC 6531"):
        compose.build(Parts(sender="Jörg <jörg@example.com>"), "i@x", utf8=False)


@pytest.mark.parametrize(("parts", "reason"), [
    (Parts(sender="nobody"), "From: 'nobody' is not a list of addresses (RFC 5322 §3.4)"),
    (Parts(to=("x@",)), "To: 'x@' is not a list of addresses (RFC 5322 §3.4)"),
    (Parts(subject="hi\r\nBcc: victim@example.com"), "Subject: 'hi\\r\\nBcc: victim@example.com': Header values "
                                                     "may not contain linefeed or carriage return characters"),
])
def test_parts_that_make_no_message_are_refused_with_the_field(parts: Parts, reason: str) -> None:
    with pytest.raises(MessageError) as caught:
        compose.build(parts, "i@x", utf8=False)
    assert str(caught.value) == reason


def test_a_message_id_and_date_given_are_not_added_again() -> None:
    parts = Parts(headers=(("Message-ID", "<mine@example.com>"), ("Date", "Thu, 02 May 2024 08:00:00 +0200")))
    back = parsed(compose.build(parts, "case@x", utf8=False).as_bytes())
    assert back.get_all("Message-ID") == ["<mine@example.com>"]
    assert back.get_all("Date") == ["Thu, 02 May 2024 08:00:00 +0200"]


def test_one_body_alone_is_not_multipart() -> None:
    assert parsed(compose.build(Parts(html="<p>x</p>"), "i@x", False).as_bytes()).get_content_type() == "text/html"
    assert parsed(compose.build(Parts(), "i@x", False).as_bytes()).get_content_type() == "text/plain"


def test_types_are_guessed_from_the_name() -> None:
    assert compose.content_type("report.pdf") == "application/pdf"
    assert compose.content_type("photo.JPG") == "image/jpeg"
    assert compose.content_type("blob") == "application/octet-stream"
    assert compose.content_type("report.pdf", "application/x-custom") == "application/x-custom"


def test_the_summary_names_each_part_and_its_size_not_its_content() -> None:
    msg = compose.build(PARTS, "id.1@client.test", utf8=False)
    lines = compose.describe(msg)
    assert lines == [
        "multipart/mixed (3 parts)",
        "  multipart/alternative (2 parts)",
        "    text/plain; charset=utf-8: 40 bytes, sent as quoted-printable",
        "    text/html; charset=utf-8: 25 bytes, sent as quoted-printable",
        f'  application/pdf "report.pdf": {len(PDF)} bytes, sent as base64',
        f'  text/csv "données.csv": {len(CSV)} bytes, sent as base64',
    ]
    raw = msg.as_bytes()
    assert compose.header_size(raw) == raw.index(b"\r\n\r\n") + 4


def _key() -> tuple[bytes, bytes]:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def test_a_signed_message_verifies_and_an_altered_one_does_not() -> None:
    import dkim

    pem, record = _key()
    raw = compose.build(PARTS, "id.1@client.test", utf8=False).as_bytes()
    signed = compose.sign(raw, "example.com", "test", pem)
    field = signed[:compose.header_size(signed)].split(b"\r\nFrom: ")[0].replace(b"\r\n ", b" ")
    assert field.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;")
    assert b" s=test;" in field and b"h=from : to : subject" in field.replace(b"\r\n ", b" ").lower()

    def txt(name: bytes, timeout: int = 5) -> bytes:  # the DNS of example.com, which the test stands in for
        return record if name == b"test._domainkey.example.com." else b""

    assert dkim.verify(signed, dnsfunc=txt)
    assert not dkim.verify(signed.replace(b"Reply-To: noreply@", b"Reply-To: attacker@"), dnsfunc=txt)
    assert not dkim.verify(signed.replace(b"Content-Type: application/pdf", b"Content-Type: application/zip"),
                           dnsfunc=txt)  # in the body: its hash no longer matches bh=


def test_signing_with_what_is_no_key_says_so() -> None:
    with pytest.raises(MessageError, match=r"^dkim: .*key"):
        compose.sign(b"From: a@example.com\r\n\r\nx\r\n", "example.com", "test", b"not a key")
    with pytest.raises(MessageError, match=r"^dkim selector: 'a b' is not a domain name"):
        compose.sign(b"From: a@example.com\r\n\r\nx\r\n", "example.com", "a b", _key()[0])


def test_a_body_that_is_no_message_or_has_no_from_is_not_signed_saying_why() -> None:
    """What a `data:` body may be that a built message never is."""
    with pytest.raises(MessageError, match=r"^dkim: the message has no From field, which a signature must cover "
                                           r"\(RFC 6376 §5\.4\)$"):
        compose.sign(b"Subject: x\r\n\r\nbody\r\n", "example.com", "test", _key()[0])
    with pytest.raises(MessageError, match=r"^dkim: the body is not a message that can be signed \(.*hello.*\): "
                                           r"it needs a header section, an empty line, then the body"):
        compose.sign(b"hello world\r\n", "example.com", "test", _key()[0])
