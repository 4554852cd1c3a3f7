"""Writing report files so that no reader ever sees half of one: atomic replacement, first-free
names taken without a race, and the file mode any other file written here would get."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_writer", "check_outputs", "check_writable", "write_first_free"]

_LINK_UNSUPPORTED = {errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_file(directory: Path, name: str, data: bytes) -> Path:
    """Write data to a fresh hidden temp file in directory (so a rename stays on one filesystem)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report is as readable as any file written
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def check_writable(path: Path, folder: bool = False) -> None:
    """OSError, in words, unless a report can be written at path (a file; with `folder`, a folder
    of reports, made if missing). Checked by writing: a permission, a read-only file system or a
    full disk is found as the report itself would find it, before anything else is done."""
    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise OSError(errno.ENOTDIR, "not a folder", str(path))
        while not path.exists() and path != path.parent:  # made when the report is written
            path = path.parent
        where = path
    else:
        if path.is_dir():
            raise OSError(errno.EISDIR, "a folder, not a file name", str(path))
        where = path.parent
        if not where.is_dir():
            raise OSError(errno.ENOENT, f"its folder {where} does not exist", str(path))
    fd, probe = tempfile.mkstemp(prefix=".smtprun-probe-", dir=where)
    os.close(fd)
    os.unlink(probe)


def check_outputs(json: str | None, junit: str | None, report_dir: str | None) -> None:
    """UsageError unless --json, --junit (not '-') and --report-dir (None: no report) can be written:
    checked before any work, so a run or a merge is not spent on reports it cannot keep."""
    from runner.errors import UsageError

    targets = [(flag, value, False) for flag, value in (("--json", json), ("--junit", junit))
               if value is not None and value != "-"]
    if report_dir is not None:
        targets.append(("--report-dir", report_dir, True))
    for flag, value, folder in targets:
        if not value.strip():
            raise UsageError(f"{flag} needs a file name" if not folder else f"{flag} needs a folder name")
        try:
            check_writable(Path(value), folder)
        except OSError as exc:
            raise UsageError(f"{flag} {value}: cannot write there: {exc.strerror or exc}") from None


def atomic_write(path: Path, data: bytes) -> None:
    """Replace path with data all at once: readers see the old file or the new one, never a part."""
    path = Path(path)
    tmp = _temp_file(path.parent, path.name, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[IO[str]]:
    """A UTF-8 text file that replaces path all at once when the block ends (as `atomic_write`), for a
    document written in pieces; an exception in the block leaves path as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_first_free(directory: Path, names: Iterable[str], data: bytes, temp_name: str) -> Path | None:
    """Write data under the first of names not yet taken in directory; None when all are taken.

    The content is written to a temp file first and then hard-linked to the final name: link()
    fails rather than replace an existing file, and the name appears only once the content is
    complete, so concurrent writers each keep their own file and a killed run leaves no partial
    file. Where the filesystem has no hard links, the name is reserved with O_EXCL and the
    complete file renamed over the (empty) reservation.
    """
    directory = Path(directory)
    tmp = _temp_file(directory, temp_name, data)
    try:
        for name in names:
            final = directory / name
            try:
                os.link(tmp, final)
                return final
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in _LINK_UNSUPPORTED:
                    raise
            try:
                os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                continue
            os.replace(tmp, final)
            return final
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
