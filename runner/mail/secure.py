"""TLS for mailbox connections: verification on unless a plan turns it off, and no password in clear text."""

from __future__ import annotations

import ssl

from runner.mail.reader import Budget, MailError, passes
from runner.mail.url import MailboxUrl
from runner.net import tls as tlsinfo

__all__ = ["context_for", "io_failure", "refuse_plaintext", "tls_failure"]


def context_for(options: object) -> ssl.SSLContext:
    """A client context from the step's `verify:` and `cafile:`; MailError when the file cannot be read."""
    cafile = getattr(options, "cafile", "") or ""
    try:
        return tlsinfo.client_context(getattr(options, "verify", True), cafile)
    except (OSError, ssl.SSLError) as exc:
        raise MailError(f"cannot read cafile {cafile}: {getattr(exc, 'strerror', None) or exc}") from None


def tls_failure(exc: BaseException) -> str:
    why = tlsinfo.describe_failure(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        why += " (give the server's CA with cafile:, or verify: false)"
    return why


def io_failure(exc: OSError, where: str, budget: Budget) -> MailError:
    """A socket or TLS failure of a call to the mailbox server at `where`, in a user's words: a timeout
    is the wait's (when its deadline passed, MailTimeout says so), the rest transient when `passes`."""
    if isinstance(exc, ssl.SSLError):
        return MailError(f"{where}: {tls_failure(exc)}", transient=passes(exc))
    budget.check()
    if isinstance(exc, TimeoutError):
        return MailError(f"{where} did not answer in time")
    return MailError(f"{where}: {exc.strerror or exc}", transient=passes(exc))


def refuse_plaintext(url: MailboxUrl, upgrade: str) -> str:
    return (f"refusing to send the password for {url.user} in clear text to {url.host}:{url.port}: it offers no "
            f"{upgrade} and is not a loopback address; use {url.kind}s://, or set plaintext_password: true")
