"""The MTA-STS policy fetched over HTTPS as RFC 8461 §3.3 says a sender fetches it: from an address the plan's name
servers gave (never the system resolver), the certificate verified for the policy host, one GET, no redirect
followed, at most 64 KiB read, the whole exchange bounded in time.

http.client and ssl of the standard library, in a worker thread: one request with every rule above is a few
lines there, while requests (or httpx) follow redirects by default, resolve names with the system resolver and
would be a dependency for one GET (docs/posture.md has the measurement)."""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from runner.errors import SmtprunError
from runner.net.address import hostport
from runner.net.tls import describe_failure

__all__ = ["MAX_POLICY_BYTES", "Fetched", "PolicyFetchFailed", "fetch"]

MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3: a sender reads no more than 64 KiB of policy
_READ = 16 * 1024


class PolicyFetchFailed(SmtprunError):
    """The policy could not be fetched; the message says why, as an admin would put it."""


@dataclass(frozen=True)
class Fetched:
    """What the policy host answered: its status, media type, the Location of a redirect, the body (bounded)."""

    address: str
    status: int
    reason: str
    content_type: str | None
    location: str | None
    body: bytes
    oversized: bool  # more than MAX_POLICY_BYTES were offered (by Content-Length or by reading one more)


async def fetch(host: str, addresses: list[str], port: int, path: str, context: ssl.SSLContext,
                timeout: float) -> Fetched:
    """GET https://host:port/path from the first of addresses that answers, within timeout seconds."""
    deadline = time.monotonic() + timeout
    failures: list[str] = []
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            return await asyncio.wait_for(asyncio.to_thread(_get, host, address, port, path, context, deadline), left)
        except TimeoutError:
            failures.append(f"{hostport(address, port)}: no answer within the step's time")
        except ssl.SSLError as e:  # the certificate is the policy's; no other address is tried with a bad one
            raise PolicyFetchFailed(f"TLS with {host} ({hostport(address, port)}): {describe_failure(e)}") from None
        except (OSError, http.client.HTTPException) as e:
            failures.append(f"{hostport(address, port)}: {_said(e)}")
    raise PolicyFetchFailed(f"cannot fetch the policy from {host}: " + ("; ".join(failures) or "no time left"))


def _said(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, http.client.HTTPException):
        return f"not an HTTP answer ({type(error).__name__}: {error})"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _get(host: str, address: str, port: int, path: str, context: ssl.SSLContext, deadline: float) -> Fetched:
    """One blocking GET over a connection to address, every wait bounded by the deadline."""
    raw = socket.create_connection((address, port), timeout=_left(deadline))
    try:
        secure = context.wrap_socket(raw, server_hostname=host)  # verified for the policy host (§3.3)
    except BaseException:
        raw.close()
        raise
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=_left(deadline))
    connection.sock = secure  # the address the plan's name servers gave, not a lookup of host by the system
    try:
        connection.request("GET", path, headers={"Accept": "text/plain", "User-Agent": "smtprun",
                                                 "Cache-Control": "no-cache", "Connection": "close"})
        response = connection.getresponse()
        body, oversized = b"", _declared_too_long(response)
        if response.status == 200 and not oversized:
            body = _read_bounded(response, deadline)
            oversized = len(body) > MAX_POLICY_BYTES
        return Fetched(address, response.status, response.reason, response.getheader("Content-Type"),
                       response.getheader("Location"), body[:MAX_POLICY_BYTES], oversized)
    finally:
        connection.close()


def _declared_too_long(response: http.client.HTTPResponse) -> bool:
    length = response.getheader("Content-Length", "")
    return length.strip().isdigit() and int(length) > MAX_POLICY_BYTES


def _read_bounded(response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The body, at most one byte more than the limit (so an oversized one is told apart)."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_POLICY_BYTES:
        _left(deadline)  # each read waits the socket's timeout at most; a server that trickles stops here
        chunk = response.read(min(_READ, MAX_POLICY_BYTES + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the step's time ran out")
    return left
