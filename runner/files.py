"""Opening the files a plan names (plans, includes, message bodies, CA files) without ever blocking.

A path can name a FIFO, a terminal, a socket or a device: opening a FIFO for reading waits for a
writer, forever, and reading a device may never end. Every file smtprun reads is therefore opened
with O_NONBLOCK, checked with fstat to be a regular file, and only then read. Failures are OSErrors
whose strerror says what is wrong in words, so every caller's `except OSError` reports them.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["inside", "open_regular", "read_regular"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _nul(path: str | os.PathLike[str]) -> OSError:
    return OSError(errno.EINVAL, "the path contains a NUL byte", str(path).replace("\0", "\\0"))


def _loop(path: str | os.PathLike[str]) -> OSError:
    return OSError(errno.ELOOP, "too many levels of symbolic links (a symlink loop?)", str(path))


def inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether path, links and `..` resolved, lies in folder or below it; OSError saying why when
    it cannot be resolved (a NUL in it, a symlink loop)."""
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except ValueError:  # a NUL inside the path
        raise _nul(path) from None
    except RuntimeError:  # Python before 3.13 says "Symlink loop from ..." so
        raise _loop(path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _loop(path) from None
        raise


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for reading in binary mode, or raise OSError saying why not."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except ValueError:  # a NUL inside the path: the OS cannot even be asked
        raise _nul(path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _loop(path) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = _kind(mode)
            raise OSError(errno.EINVAL if what != "a directory" else errno.EISDIR,
                          f"{what}, not a regular file", str(path))
        os.set_blocking(fd, True)  # a regular file never blocks; later reads behave as usual
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """Up to `limit` + 1 bytes of a regular file (one more than allowed, so the caller can tell it is too big)."""
    with open_regular(path) as fh:
        return fh.read(limit + 1)
