"""One session of the embedded SMTP server: aiosmtpd's SMTP speaking a profile's words, and the hooks that
hold the policy every profile shares: DSN parameters accepted (RFC 3461), recipients named ``unknown`` or
``nosuchuser*`` refused, relaying refused by a profile with ``accepted_domains`` to anyone not authenticated,
AUTH with PLAIN, LOGIN, CRAM-MD5 and XOAUTH2 against one account."""

from __future__ import annotations

import base64
import email.utils
import hmac
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword, auth_mechanism, syntax

from runner.tools.profiles import COMMON_REPLIES, Profile

__all__ = ["AUTH_MECHANISMS", "ProfileHandler", "ProfileSMTP", "Received", "dsn_problem", "is_unknown_user"]

# RFC 5321 §4.1.2: Reverse-path / Forward-path = "<" [ A-d-l ":" ] Mailbox ">" (Postfix tolerates spaces
# after the colon even when strict).
_BRACKETED_PATH = re.compile(r"(?i)(?:FROM|TO):\s*<[^<>]*>(?:\s|$)")

AUTH_MECHANISMS = ("CRAM-MD5", "LOGIN", "PLAIN", "XOAUTH2")
MAIL_DSN = frozenset({"RET", "ENVID"})     # RFC 3461 s 4.3, 4.4
RCPT_DSN = frozenset({"NOTIFY", "ORCPT"})  # RFC 3461 s 4.1, 4.2
ENVID_LIMIT = 100                          # RFC 3461 s 4.4: at most 100 characters

# EHLO keywords whose line aiosmtpd writes itself, and only when it can honour them.
WRITTEN_BY_AIOSMTPD = frozenset({"SIZE", "8BITMIME", "SMTPUTF8", "STARTTLS", "AUTH", "HELP"})

# aiosmtpd's own fixed replies that a profile words differently.
AIOSMTPD_LITERALS = {
    "354 End data with <CR><LF>.<CR><LF>": "data_go",
    "220 Ready to start TLS": "starttls",
}


def _not_login_data_notice(record: logging.LogRecord) -> bool:
    # aiosmtpd itself sets the deprecated Session.login_data on every successful AUTH and logs
    # a warning about it each time; the notice is for aiosmtpd's users, not ours.
    return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_not_login_data_notice)

# With ENHANCEDSTATUSCODES advertised every reply after EHLO carries one (RFC 2034 s 3);
# these are given to aiosmtpd's error replies that lack one (subjects from RFC 3463 s 3.4, 3.6).
ENHANCED_FOR_CODE = {"500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4",
                     "552": "5.3.4", "555": "5.5.4"}
_LACKS_ENHANCED = re.compile(r"[45]\d\d[ -](?!\d\.\d{1,3}\.\d{1,3}(?: |$))")


@dataclass(frozen=True)
class Received:
    """One message as the server took it; ``data`` is the body after un-dot-stuffing."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    mail_options: tuple[str, ...]
    rcpt_options: tuple[str, ...]
    data: bytes


def dsn_problem(params: tuple[str, ...], allowed: frozenset[str]) -> str | None:
    """The refusal for the first bad DSN parameter among MAIL or RCPT ``params``, or None."""
    for param in params:
        key, _, value = param.partition("=")
        key, upper = key.upper(), value.upper()
        if key in (MAIL_DSN | RCPT_DSN) - allowed:
            return COMMON_REPLIES["misplaced_param"].format(param=param)
        words = upper.split(",")
        if ((key == "NOTIFY" and words != ["NEVER"] and not set(words) <= {"SUCCESS", "FAILURE", "DELAY"})
                or (key == "ORCPT" and not re.fullmatch(r"[A-Za-z0-9-]+;\S+", value))
                or (key == "RET" and upper not in ("FULL", "HDRS"))
                or (key == "ENVID" and len(value) > ENVID_LIMIT)):
            return COMMON_REPLIES["bad_param"].format(param=key)
    return None


def is_unknown_user(address: str) -> bool:
    local = address.rpartition("@")[0] or address
    return local.lower() == "unknown" or local.lower().startswith("nosuchuser")


class ProfileSMTP(SMTP):
    """aiosmtpd's SMTP speaking a profile's words, accepting DSN parameters, offering CRAM-MD5."""

    # What Postfix and Exchange send; RFC 4954 s 4 leaves the challenge text to the mechanism.
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(self, handler: Any, *, profile: Profile, credentials: tuple[str, str] | None, **kwargs: Any):
        self.profile = profile
        self.credentials = credentials
        self.params_as_sent: tuple[str, ...] = ()  # aiosmtpd upper-cases them; ORCPT's address has case
        banner = profile.reply("banner", date=email.utils.formatdate(localtime=True))
        kwargs.update(
            hostname=profile.hostname,
            ident=banner[len(f"220 {profile.hostname} "):],
            data_size_limit=profile.size_limit,
            enable_SMTPUTF8=profile.smtputf8,
            authenticator=self._check_password,
            auth_exclude_mechanism=() if credentials else AUTH_MECHANISMS,
        )
        super().__init__(handler, **kwargs)

    async def push(self, status: Any) -> None:
        if isinstance(status, str):
            if status in AIOSMTPD_LITERALS:
                status = self.profile.reply(AIOSMTPD_LITERALS[status])
            elif _LACKS_ENHANCED.match(status):
                enhanced = ENHANCED_FOR_CODE.get(status[:3], f"{status[0]}.0.0")
                status = f"{status[:4]}{enhanced} {status[4:]}"
        await super().push(status)

    async def smtp_MAIL(self, arg: str) -> None:
        if not await self._refused_strictly(arg, "bad_sender"):
            await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str) -> None:
        if not await self._refused_strictly(arg, "bad_recipient"):
            await super().smtp_RCPT(arg)

    async def _refused_strictly(self, arg: str | None, reply: str) -> bool:
        if not self.profile.strict_envelopes or not arg or _BRACKETED_PATH.match(arg):
            return False
        await self.push(COMMON_REPLIES[reply])
        return True

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        address, params = super()._getaddr(arg)
        self.params_as_sent = tuple(params.split()) if params else ()
        return address, params

    def _getparams(self, params: Any) -> dict[str, str | bool] | None:
        # aiosmtpd answers 555 to every parameter it does not handle itself; the DSN ones
        # are checked by the MAIL and RCPT hooks instead.
        result = super()._getparams(params)
        if result is not None:
            for key in MAIL_DSN | RCPT_DSN:
                result.pop(key, None)
        return result

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        if self.credentials is None:
            await self.push(COMMON_REPLIES["auth_disabled"])
        else:
            await super().smtp_AUTH(arg)

    def _check_password(self, server: Any, session: Any, envelope: Any, mechanism: str,
                        auth_data: LoginPassword) -> AuthResult:
        assert self.credentials is not None  # smtp_AUTH refuses AUTH without them
        user, password = (part.encode() for part in self.credentials)
        ok = hmac.compare_digest(auth_data.login, user) & hmac.compare_digest(auth_data.password, password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, _: Any, args: list[str]) -> AuthResult:
        """RFC 2195: the client answers ``user SP hex(HMAC-MD5(password, challenge))``."""
        if len(args) > 1:
            await self.push(COMMON_REPLIES["cram_initial"])
            return AuthResult(success=False, handled=True)
        challenge = f"<{secrets.randbelow(10**10)}.{int(time.time())}@{self.hostname}>".encode()
        response = await self.challenge_auth(challenge)
        if response is MISSING:  # "*" or bad base64: challenge_auth has answered 501
            return AuthResult(success=False, handled=True)
        assert self.credentials is not None
        user, _, digest = response.rpartition(b" ")
        name, password = (part.encode() for part in self.credentials)
        expected = hmac.new(password, challenge, "md5").hexdigest().encode()
        ok = hmac.compare_digest(user, name) & hmac.compare_digest(digest.lower(), expected)
        return AuthResult(success=ok, handled=False, auth_data=user)


    @auth_mechanism("XOAUTH2")
    async def auth_XOAUTH2(self, _: Any, args: list[str]) -> AuthResult:
        """XOAUTH2 (Google, Microsoft): base64 of "user=" U ^A "auth=Bearer " TOKEN ^A ^A; the password is the token.

        A wrong token gets a 334 with a base64 JSON error, the client answers with an empty line,
        then 535, as the big providers do.
        """
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            response = await self.challenge_auth(b"")
            if response is MISSING:
                return AuthResult(success=False, handled=True)
            blob = response
        fields = dict(part.split(b"=", 1) for part in blob.split(b"\x01") if b"=" in part)
        assert self.credentials is not None
        name, token = (part.encode() for part in self.credentials)
        given = fields.get(b"auth", b"").removeprefix(b"Bearer ")
        ok = hmac.compare_digest(fields.get(b"user", b""), name) & hmac.compare_digest(given, token)
        if not ok:
            error = b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
            await self.challenge_auth(error)  # the client's empty line comes back; its content is moot
        return AuthResult(success=ok, handled=False, auth_data=fields.get(b"user"))


class ProfileHandler:
    """The aiosmtpd hooks: the same policy for every profile, worded by the profile."""

    def __init__(self, record: Callable[[Received], None]):
        self.record = record

    async def handle_EHLO(self, server: ProfileSMTP, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handle_EHLO hook
        offered = {line[4:].split(" ", 1)[0].upper(): line[4:].strip() for line in responses[1:]}
        keywords = [offered.get(k) if k in WRITTEN_BY_AIOSMTPD else k for k in server.profile.ehlo_keywords]
        lines = [server.profile.reply("ehlo", peer=session.peer[0])]
        lines += [f"250 {k}" for k in keywords if k and k != "AUTH"]  # "AUTH": no mechanism left
        return [f"{line[:3]}-{line[4:]}" for line in lines[:-1]] + lines[-1:]

    async def handle_MAIL(self, server: ProfileSMTP, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        problem = dsn_problem(server.params_as_sent, MAIL_DSN)
        if problem:
            return problem
        envelope.mail_from = address
        envelope.mail_options.extend(server.params_as_sent)
        return server.profile.reply("mail_ok", addr=address)

    async def handle_RCPT(self, server: ProfileSMTP, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        profile = server.profile
        domain = address.rpartition("@")[2].lower() if "@" in address else ""
        problem = dsn_problem(server.params_as_sent, RCPT_DSN)
        if problem:
            return problem
        if (domain and profile.accepted_domains is not None and domain not in profile.accepted_domains
                and not session.authenticated):
            return profile.reply("relay_denied", addr=address)
        if is_unknown_user(address):
            return profile.reply("unknown_user", addr=address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(server.params_as_sent)
        return profile.reply("rcpt_ok", addr=address)

    async def handle_DATA(self, server: ProfileSMTP, session: Any, envelope: Any) -> str:
        self.record(Received(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            mail_options=tuple(envelope.mail_options),
            rcpt_options=tuple(envelope.rcpt_options),
            data=envelope.original_content,
        ))
        return server.profile.reply(
            "data_ok",
            queue_id=secrets.token_hex(5).upper(),
            message_id=f"{uuid.uuid4()}@{server.profile.hostname}",
            internal_id=secrets.randbelow(10**13),
        )

    async def handle_VRFY(self, server: ProfileSMTP, session: Any, envelope: Any, address: str) -> str:
        return server.profile.reply("unknown_user" if is_unknown_user(address) else "vrfy", addr=address)

    async def handle_RSET(self, server: ProfileSMTP, session: Any, envelope: Any) -> str:
        return server.profile.reply("rset")

    async def handle_NOOP(self, server: ProfileSMTP, session: Any, envelope: Any, arg: str) -> str:
        return server.profile.reply("noop")

    async def handle_QUIT(self, server: ProfileSMTP, session: Any, envelope: Any) -> str:
        return server.profile.reply("quit")
