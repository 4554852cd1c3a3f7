"""Files smtprun keeps in its cache folder to skip work it did before: only this user's, never trusted blindly.

What is cached stands for work skipped (a plan's schema check, a template's compilation), so a file
anyone else could have written would be a way around that work. A cache folder is therefore used
only when it is a real folder (not a symlink) owned by the user smtprun runs as and writable by no
one else; a file in it only when it is a regular file with the same owner, no group or world write
permission, and no larger than its reader's limit. Files are written 0600 under a temporary name and
renamed into place, so a reader sees a whole file or none. Every failure — a folder that cannot be
made, a full disk, another user's folder, a damaged file — means "not cached": it costs time, never
a run. The folder is opened once and the files are found relative to it (openat), so the folder
checked is the folder read. A folder keeps at most MAX_ENTRIES files: writing past that removes the oldest.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MAX_ENTRIES", "PrivateFolder"]

_USABLE = hasattr(os, "O_DIRECTORY") and hasattr(os, "O_NOFOLLOW") and {os.open, os.rename} <= os.supports_dir_fd
_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
MAX_ENTRIES = 1000  # files kept in one cache folder: past it the oldest written go, down to three quarters of it


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by no one else."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class PrivateFolder:
    """A folder of small cache files, each read and written whole (see the module's docstring)."""

    def __init__(self, path: Path | None) -> None:
        self.path = None if path is None or not _USABLE else Path(path)  # None: nothing is cached

    def _open(self, make: bool) -> int | None:
        """The folder's descriptor when it is private (made, 0700, with `make`); None otherwise."""
        if self.path is None:
            return None
        try:
            if make:
                self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | _FLAGS)
        except (OSError, ValueError):  # ValueError: a NUL in the path
            return None
        try:
            st = os.fstat(fd)
            if make and st.st_uid == os.geteuid() and not _private(st):  # made 0775 under umask 002
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o077)  # what others put in it stays theirs: unread
                st = os.fstat(fd)
            if _private(st):
                return fd
        except OSError:
            pass
        os.close(fd)
        return None

    @contextlib.contextmanager
    def _opened(self, make: bool) -> Iterator[int | None]:
        fd = self._open(make)
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)

    def read(self, name: str, limit: int) -> bytes | None:
        """The file's bytes; None when it is missing, not private, larger than limit or unreadable."""
        with self._opened(make=False) as folder:
            if folder is None:
                return None
            try:
                fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _FLAGS, dir_fd=folder)
            except OSError:
                return None
            with os.fdopen(fd, "rb") as f:
                try:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode) or not _private(st) or st.st_size > limit:
                        return None
                    data = f.read(limit + 1)
                except OSError:
                    return None
            return data if len(data) <= limit else None

    def write(self, name: str, data: bytes) -> bool:
        """Replace the file with data, 0600; False (and nothing left behind) when that cannot be done."""
        with self._opened(make=True) as folder:
            if folder is None:
                return False
            temp = f".{name}.{secrets.token_hex(8)}.tmp"
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FLAGS, 0o600, dir_fd=folder)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=folder)
                return False
            _prune(folder)
            return True


def _prune(folder: int) -> None:
    """Past MAX_ENTRIES files in the folder, the oldest written are removed: each only saves work, and a plan
    edited a hundred times leaves a hundred entries behind. Only done when an entry is written."""
    try:
        names = os.listdir(folder) if os.listdir in os.supports_fd else []
    except OSError:
        return
    if len(names) <= MAX_ENTRIES:
        return
    written = []
    for name in names:
        with contextlib.suppress(OSError):
            written.append((os.stat(name, dir_fd=folder, follow_symlinks=False).st_mtime_ns, name))
    for _, name in sorted(written)[: len(written) - MAX_ENTRIES * 3 // 4]:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=folder)
