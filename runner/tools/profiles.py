"""The embedded server's profiles: how each kind of server greets and words its replies.

A profile is a table of reply literals, an EHLO keyword list and a few limits (runner.tools.server
applies them). The texts are what the real servers say (see each profile's comment).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["COMMON_REPLIES", "PROFILES", "REPLY_KEYS", "TEST_DOMAINS", "Profile"]

REPLY_KEYS = frozenset({
    "banner", "ehlo", "mail_ok", "rcpt_ok", "data_go", "data_ok", "rset", "noop", "vrfy",
    "quit", "starttls", "unknown_user", "relay_denied",
})

# Replies that do not depend on the profile. DSN syntax per RFC 3461 s 4.1-4.4, texts as Postfix's.
COMMON_REPLIES = {
    "bad_param": "501 5.5.4 Bad {param} parameter syntax",
    "misplaced_param": "555 5.5.4 Unsupported option: {param}",
    "cram_initial": "501 5.5.2 CRAM-MD5 takes no initial response",
    "auth_disabled": "503 5.5.1 Error: authentication not enabled",
    "bad_sender": "501 5.1.7 Bad sender address syntax",        # Postfix's words, strict_rfc821_envelopes
    "bad_recipient": "501 5.1.3 Bad recipient address syntax",
}


@dataclass(frozen=True)
class Profile:
    """How one kind of server greets and answers. Reply templates may use {host} and, where
    it makes sense, {addr}, {peer}, {date}, {queue_id}, {message_id}, {internal_id}."""

    name: str
    hostname: str
    ehlo_keywords: tuple[str, ...]  # the real server's order, without what aiosmtpd cannot do
    replies: Mapping[str, str]
    size_limit: int                 # RFC 1870 SIZE, enforced by aiosmtpd
    smtputf8: bool = True
    accepted_domains: tuple[str, ...] | None = None  # None: every domain is ours
    strict_envelopes: bool = False  # Postfix's strict_rfc821_envelopes: addresses only inside <...>

    def reply(self, key: str, **fields: Any) -> str:
        return self.replies[key].format(host=self.hostname, **fields)


TEST_DOMAINS = ("localhost", "example.com", "contoso.com", "smtprun.test")

PROFILES: dict[str, Profile] = {
    "default": Profile(
        name="default",
        hostname="mail.smtprun.test",
        ehlo_keywords=("SIZE", "PIPELINING", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES",
                       "STARTTLS", "AUTH", "HELP"),
        size_limit=33554432,
        replies={
            "banner": "220 {host} smtprun ESMTP ready",
            "ehlo": "250 {host}",
            "mail_ok": "250 2.1.0 Sender OK",
            "rcpt_ok": "250 2.1.5 Recipient OK",
            "data_go": "354 End data with <CR><LF>.<CR><LF>",
            "data_ok": "250 2.0.0 Ok: queued as {queue_id}",
            "rset": "250 2.0.0 Ok",
            "noop": "250 2.0.0 Ok",
            "vrfy": "252 2.1.5 Cannot VRFY user, but will accept message for <{addr}>",
            "quit": "221 2.0.0 Bye",
            "starttls": "220 2.0.0 Ready to start TLS",
            "unknown_user": "550 5.1.1 <{addr}>: Recipient address rejected: User unknown",
            "relay_denied": "550 5.7.1 <{addr}>: Relaying denied",
        },
    ),
    # Exchange 2016; it also offers X-ANONYMOUSTLS, BINARYMIME, CHUNKING, XRDST, which we cannot.
    "exchange": Profile(
        name="exchange",
        hostname="mail.contoso.com",
        ehlo_keywords=("SIZE", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH", "8BITMIME"),
        size_limit=37748736,
        smtputf8=False,
        accepted_domains=TEST_DOMAINS,
        replies={
            "banner": "220 {host} Microsoft ESMTP MAIL Service ready at {date}",
            "ehlo": "250 {host} Hello [{peer}]",
            "mail_ok": "250 2.1.0 Sender OK",
            "rcpt_ok": "250 2.1.5 Recipient OK",
            "data_go": "354 Start mail input; end with <CRLF>.<CRLF>",
            "data_ok": "250 2.6.0 <{message_id}> [InternalId={internal_id}, Hostname={host}] "
                       "Queued mail for delivery",
            "rset": "250 2.0.0 Resetting",
            "noop": "250 2.0.0 OK",
            "vrfy": "252 2.1.5 Cannot VRFY user, but will take message for <{addr}>",
            "quit": "221 2.0.0 Service closing transmission channel",
            "starttls": "220 2.0.0 SMTP server ready",
            "unknown_user": "550 5.1.1 <{addr}>: Recipient address rejected: User unknown",
            "relay_denied": "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain",
        },
    ),
    # Postfix 3.7 on Debian; it also offers ETRN and CHUNKING, which we cannot.
    "postfix": Profile(
        name="postfix",
        hostname="mail.smtprun.test",
        ehlo_keywords=("PIPELINING", "SIZE", "VRFY", "STARTTLS", "AUTH", "ENHANCEDSTATUSCODES", "8BITMIME",
                       "DSN", "SMTPUTF8"),
        size_limit=10240000,
        accepted_domains=TEST_DOMAINS,
        replies={
            "banner": "220 {host} ESMTP Postfix (Debian/GNU)",
            "ehlo": "250 {host}",
            "mail_ok": "250 2.1.0 Ok",
            "rcpt_ok": "250 2.1.5 Ok",
            "data_go": "354 End data with <CR><LF>.<CR><LF>",
            "data_ok": "250 2.0.0 Ok: queued as {queue_id}",
            "rset": "250 2.0.0 Ok",
            "noop": "250 2.0.0 Ok",
            "vrfy": "252 2.0.0 {addr}",
            "quit": "221 2.0.0 Bye",
            "starttls": "220 2.0.0 Ready to start TLS",
            "unknown_user": "550 5.1.1 <{addr}>: Recipient address rejected: User unknown in local "
                            "recipient table",
            "relay_denied": "554 5.7.1 <{addr}>: Relay access denied",
        },
    ),
}
# Postfix with strict_rfc821_envelopes = yes: `MAIL FROM:addr` without angle brackets (RFC 5321 §4.1.2
# wants "<" Path ">") is refused, as many hardened servers do.
PROFILES["strict"] = dataclasses.replace(PROFILES["postfix"], name="strict", strict_envelopes=True)
