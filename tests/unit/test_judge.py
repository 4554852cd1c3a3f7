"""runner/mail/judge.py: what `expect_delivery` checks in a delivered copy; here its attachments, found by
name in a message the `email` package built (runner/mail/compose.py), as a mail client finds them."""

from __future__ import annotations

import hashlib

from runner.mail import compose, judge
from runner.mail.reader import Found

PDF = b"%PDF-1.4\n" + bytes(range(256))


def delivered(*, truncated: bool = False) -> Found:
    parts = compose.Parts(sender="a@example.com", subject="Grüße", text="see attached",
                          attachments=(compose.Attachment("report.pdf", "application/pdf", PDF),
                                       compose.Attachment("données.csv", "text/csv", b"a,b\n")))
    raw = compose.build(parts, "id@x", utf8=True).as_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    return Found(head + b"\r\n\r\n", body, "INBOX", ref=1, truncated=truncated)


def test_attachments_found_by_name_pass_and_are_listed() -> None:
    wanted = {"attachments": [{"name": "données.csv", "sha256": hashlib.sha256(b"a,b\n").hexdigest().upper()},
                              {"name": "report.pdf", "type": "Application/PDF"}]}
    problems, facts = judge.delivery(delivered(), wanted)
    assert problems == []
    assert facts["attachments"] == [
        {"name": "report.pdf", "type": "application/pdf", "size": len(PDF), "sha256": hashlib.sha256(PDF).hexdigest()},
        {"name": "données.csv", "type": "text/csv", "size": 4, "sha256": hashlib.sha256(b"a,b\n").hexdigest()}]
    assert ["Subject", "Grüße"] in facts["headers"]  # an RFC 6532 field read as UTF-8


def test_a_different_type_or_hash_and_a_missing_name_are_each_said() -> None:
    wanted = {"attachments": [{"name": "report.pdf", "type": "application/zip", "sha256": "ab" * 32},
                              {"name": "nowhere.txt"}]}
    problems, _ = judge.delivery(delivered(), wanted)
    assert problems == [
        f"attachment 'report.pdf': its type is application/pdf, expected application/zip; its SHA-256 is "
        f"{hashlib.sha256(PDF).hexdigest()}, expected {'ab' * 32} ({len(PDF)} bytes arrived)",
        "attachment 'nowhere.txt' is missing: the delivered copy has report.pdf (application/pdf, 265 bytes), "
        "données.csv (text/csv, 4 bytes)"]


def test_a_copy_read_only_in_part_cannot_be_checked() -> None:
    problems, facts = judge.delivery(delivered(truncated=True), {"attachments": [{"name": "report.pdf"}]})
    assert problems == ["attachments: the delivered copy is larger than the part of it smtprun reads "
                        "(1048576 bytes of body): its attachments cannot be checked"]
    assert "attachments" not in facts
