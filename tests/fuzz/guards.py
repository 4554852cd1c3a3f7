"""Guards the fuzz properties run under: no network, a wall-clock bound, a memory bound.

All of them work on the main thread (SIGALRM), where smtprun's own time and memory bounds work too:
smtprun's `limits.time_bound` leaves an outer alarm that comes first in charge and gives back the
rest of a later one, so the two nest.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import resource
import signal
import socket
import threading
from collections.abc import Iterator

__all__ = ["Hang", "loopback_only", "no_network", "peak_rss_mb", "time_limit"]


class Hang(BaseException):  # BaseException: no `except Exception` in the product swallows it
    """An example ran past its time bound."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise Hang in the block after `seconds` (main thread only; elsewhere unbounded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"{what}: still running after {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_rss_mb() -> float:
    """The process's peak resident set so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:  # AF_UNIX paths are not the network; anything else is refused
        return isinstance(address, (str, bytes))
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a name: resolving it may already leave the host


@contextlib.contextmanager
def _patched(allow: object) -> Iterator[list[str]]:
    """Patch every way out of the process; calls `allow(address) -> bool` for socket addresses."""
    attempts: list[str] = []
    originals = {
        "connect": socket.socket.connect,
        "connect_ex": socket.socket.connect_ex,
        "sendto": socket.socket.sendto,
    }
    orig_getaddrinfo = socket.getaddrinfo
    orig_create_connection = asyncio.BaseEventLoop.create_connection
    orig_datagram = asyncio.BaseEventLoop.create_datagram_endpoint
    orig_sock_connect = asyncio.BaseEventLoop.sock_connect

    def refuse(what: str) -> OSError:
        attempts.append(what)
        return OSError(f"fuzz guard: no network here ({what})")

    def connect(self, address):
        if allow(address):
            return originals["connect"](self, address)
        raise refuse(f"socket.connect({address!r})")

    def connect_ex(self, address):
        if allow(address):
            return originals["connect_ex"](self, address)
        raise refuse(f"socket.connect_ex({address!r})")

    def sendto(self, data, *args):
        address = args[-1]
        if allow(address):
            return originals["sendto"](self, data, *args)
        raise refuse(f"socket.sendto({address!r})")

    def getaddrinfo(host, *args, **kwargs):
        if host is None or allow((host, 0)) or host == "localhost":
            return orig_getaddrinfo(host, *args, **kwargs)
        raise refuse(f"getaddrinfo({host!r})")

    async def create_connection(self, *args, **kwargs):
        host = args[1] if len(args) > 1 else kwargs.get("host")
        if kwargs.get("sock") is not None or allow((host, 0)):
            return await orig_create_connection(self, *args, **kwargs)
        raise refuse(f"create_connection({host!r})")

    async def create_datagram_endpoint(self, *args, **kwargs):
        remote = kwargs.get("remote_addr")
        if remote is None or allow(remote):
            return await orig_datagram(self, *args, **kwargs)
        raise refuse(f"create_datagram_endpoint({remote!r})")

    async def sock_connect(self, sock, address):
        if allow(address):
            return await orig_sock_connect(self, sock, address)
        raise refuse(f"sock_connect({address!r})")

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    asyncio.BaseEventLoop.create_connection = create_connection  # type: ignore[method-assign]
    asyncio.BaseEventLoop.create_datagram_endpoint = create_datagram_endpoint  # type: ignore[method-assign]
    asyncio.BaseEventLoop.sock_connect = sock_connect  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        for name, func in originals.items():
            setattr(socket.socket, name, func)
        socket.getaddrinfo = orig_getaddrinfo
        asyncio.BaseEventLoop.create_connection = orig_create_connection  # type: ignore[method-assign]
        asyncio.BaseEventLoop.create_datagram_endpoint = orig_datagram  # type: ignore[method-assign]
        asyncio.BaseEventLoop.sock_connect = orig_sock_connect  # type: ignore[method-assign]


def no_network() -> contextlib.AbstractContextManager[list[str]]:
    """Nothing may connect or send anywhere, loopback included; yields the list of refused attempts."""
    return _patched(lambda address: False)


def loopback_only() -> contextlib.AbstractContextManager[list[str]]:
    """Connections and datagrams to 127.0.0.0/8 and ::1 only; yields the list of refused attempts."""
    return _patched(_is_loopback)
