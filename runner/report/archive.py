"""The report folder: file names that sort and never collide, reading reports back, and the index.

Each HTML report carries its own data (two <script type="application/json"> blocks: a small
summary in <head>, the whole plan result at the end), so the index and the comparison with an
earlier run are rebuilt from the reports themselves; there is no database to get out of step.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runner.errors import ReportError
from runner.report.format import format_seconds, format_utc, parse_utc, printable
from runner.report.markup import environment
from runner.report.outputs import atomic_write, write_first_free

__all__ = [
    "DATA_ID",
    "FORMAT",
    "INDEX_NAME",
    "SUMMARY_ID",
    "ReportEntry",
    "read_embedded",
    "rebuild_index",
    "report_stem",
    "scan_reports",
    "write_new",
]

INDEX_NAME = "index.html"
REPORT_SUFFIX = ".html"
SUMMARY_ID = "smtprun-summary"  # in <head>: what the index lists, readable without the whole file
DATA_ID = "smtprun-data"  # at the end: the run's data for this plan, what comparisons read
FORMAT = 1  # version of the embedded data's shape

_HEAD_LIMIT = 1 << 20  # the summary sits in <head>; stop looking for it after 1 MiB
MAX_READ_BACK = 64 << 20  # an earlier report larger than this is not read back for a comparison
_MAX_SEQUENCE = 10_000
_NAME = re.compile(r"-(\d{8}T\d{6})Z(?:-(\d+))?\.html$")


def report_stem(plan_file: str, started_at: datetime) -> str:
    """`<plan-file-stem>-<UTC YYYYmmddTHHMMSS>Z`: one plan's reports sort by time."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(plan_file).stem).lstrip(".") or "plan"
    return f"{stem}-{started_at.astimezone(timezone.utc):%Y%m%dT%H%M%S}Z"


def _candidates(stem: str, suffix: str):
    yield f"{stem}{suffix}"
    for n in range(1, _MAX_SEQUENCE):
        yield f"{stem}-{n}{suffix}"


def write_new(directory: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write data under the first free name of stem, stem-1, stem-2, ... and return that path.

    Concurrent writers each keep their own file, and a killed run leaves no partial report
    (files.write_first_free says how).
    """
    written = write_first_free(directory, _candidates(stem, suffix), data, stem + suffix)
    if written is None:
        raise FileExistsError(errno.EEXIST, f"no free name for {stem}{suffix} in {directory}")
    return written


def _opening(element_id: str) -> str:
    return f'<script type="application/json" id="{element_id}">'


def _extract(text: str, element_id: str) -> Any:
    opening = _opening(element_id)
    start = text.find(opening)
    if start < 0:
        raise LookupError(element_id)
    start += len(opening)
    end = text.find("</script>", start)
    if end < 0:
        raise ValueError(f"the {element_id} block is not closed (file cut short?)")
    return json.loads(text[start:end])


def read_embedded(path: Path, element_id: str = DATA_ID) -> Any:
    """The JSON embedded in a report under element_id.

    Raises LookupError when the file has no such block, ValueError when it is damaged, OSError
    when it cannot be read.
    """
    if element_id == SUMMARY_ID:
        head = _read_head(path, _opening(SUMMARY_ID))
        return _extract(head.decode("utf-8"), SUMMARY_ID)
    size = Path(path).stat().st_size
    if size > MAX_READ_BACK:
        raise ValueError(f"{size} bytes, more than the {MAX_READ_BACK} read back for a comparison")
    return _extract(Path(path).read_bytes().decode("utf-8"), element_id)


def _read_head(path: Path, opening: str) -> bytes:
    """The start of a file, up to the end of the block that opening starts (or _HEAD_LIMIT)."""
    marker, closing = opening.encode(), b"</script>"
    buf = b""
    with open(path, "rb") as f:
        while len(buf) < _HEAD_LIMIT:
            chunk = f.read(64 * 1024)
            if not chunk:
                break
            buf += chunk
            start = buf.find(marker)
            end = buf.find(closing, start) if start >= 0 else -1
            if end >= 0:
                return buf[: end + len(closing)]  # cut before a character the chunk may have split
    return buf


@dataclass(frozen=True)
class ReportEntry:
    """One report file in the folder, known from its embedded summary."""

    path: Path
    summary: dict[str, Any]
    started: datetime
    sequence: int  # the -N of the file name, 0 without
    stamp: tuple[int, int, int] = (0, 0, 0)  # the file's inode, size and modification time (ns) when it was read

    @property
    def plan(self) -> dict[str, Any]:
        return self.summary["plan"]

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.started, self.sequence, self.path.name)


def _valid_summary(summary: Any) -> bool:
    if not isinstance(summary, dict) or not isinstance(summary.get("plan"), dict):
        return False
    plan, counts, duration = summary["plan"], summary.get("counts"), summary.get("duration")
    return (
        isinstance(summary.get("started_at"), str)
        and (duration is None or (isinstance(duration, (int, float)) and math.isfinite(duration) and duration >= 0))
        and all(isinstance(plan.get(k), str) for k in ("name", "file", "target", "status"))
        and isinstance(counts, dict)
        and all(isinstance(v, int) for v in counts.values())
    )


def _entry(path: Path, stamp: tuple[int, int, int] = (0, 0, 0)) -> ReportEntry:
    """Raises ValueError with a reason a person can read when path is not a usable report."""
    try:
        summary = read_embedded(path, SUMMARY_ID)
    except LookupError:
        raise ValueError("not an smtprun report (no embedded run data)") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"embedded run data is damaged ({exc.msg})") from None
    if not _valid_summary(summary):
        raise ValueError("embedded run data has an unexpected shape")
    try:
        started = parse_utc(summary["started_at"])
    except ValueError:
        raise ValueError(f"embedded start time {summary['started_at']!r} is not a UTC timestamp") from None
    m = _NAME.search(path.name)
    return ReportEntry(path, summary, started, int(m[2]) if m and m[2] else 0, stamp)


def scan_reports(report_dir: Path, known: Iterable[ReportEntry] = ()) -> tuple[list[ReportEntry], list[str]]:
    """Every readable report in report_dir, oldest first, and a warning for each file skipped. A file that is
    one of `known` (an earlier scan's), unchanged since (same inode, size and time), is not read again."""
    unchanged = {(e.path.name, e.stamp): e for e in known if e.stamp != (0, 0, 0)}
    entries: list[ReportEntry] = []
    warnings: list[str] = []
    try:
        paths = sorted(p for p in Path(report_dir).glob("*" + REPORT_SUFFIX) if p.name != INDEX_NAME)
    except FileNotFoundError:
        return [], []
    for path in paths:
        try:
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode):  # a symlink is not followed; a FIFO would block the read
                warnings.append(f"{path}: skipped: not a regular file")
                continue
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            entries.append(unchanged.get((path.name, stamp)) or _entry(path, stamp))
        except ValueError as exc:
            warnings.append(f"{path}: skipped: {exc}")
        except OSError as exc:
            warnings.append(f"{path}: skipped: cannot read it ({exc.strerror or exc})")
    entries.sort(key=lambda e: e.sort_key)
    return entries, warnings


@dataclass(frozen=True)
class _IndexRow:
    href: str
    name: str
    started: str
    plan_name: str
    plan_file: str
    target: str
    status: str
    passed: int
    failed: int
    skipped: int
    duration: str
    interrupted: bool
    errors: int  # internal errors of smtprun in that run


def _row(entry: ReportEntry) -> _IndexRow:
    s, plan = entry.summary, entry.plan
    counts = s["counts"]
    duration = s.get("duration")
    return _IndexRow(
        href=quote(entry.path.name),
        name=entry.path.name,
        started=format_utc(entry.started),
        plan_name=printable(plan["name"]),
        plan_file=printable(plan["file"]),
        target=printable(plan["target"]),
        status=plan["status"],
        passed=counts.get("passed", 0),
        failed=counts.get("failed", 0),
        skipped=counts.get("skipped", 0),
        duration=format_seconds(duration) if isinstance(duration, (int, float)) else "",
        interrupted=s.get("interrupted") is True,
        errors=s["errors"] if isinstance(s.get("errors"), int) else 0,
    )


def same_plan_key(plan: dict[str, Any]) -> tuple[str, str]:
    """What makes two reports runs of the same plan against the same target."""
    return os.path.normpath(plan["file"]), plan["target"]


def render_index(entries: list[ReportEntry], warnings: list[str]) -> str:
    newest_first = sorted(entries, key=lambda e: e.sort_key, reverse=True)
    rows: list[_IndexRow] = []
    latest: dict[tuple[str, str], _IndexRow] = {}
    for entry in newest_first:
        try:
            row = _row(entry)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # edited by hand past its shape
            warnings.append(f"{entry.path}: skipped: its run data cannot be shown ({exc})")
            continue
        rows.append(row)
        latest.setdefault(same_plan_key(entry.plan), row)
    return environment().get_template("index.html.j2").render(
        rows=rows,
        latest=sorted(latest.values(), key=lambda r: (r.plan_name, r.target)),
        warnings=[printable(w) for w in warnings],
        generated=format_utc(datetime.now(timezone.utc)),
    )


def rebuild_index(report_dir: Path, known: Iterable[ReportEntry] = ()) -> list[str]:
    """Rewrite report_dir/index.html from the reports in the folder; return a warning per file skipped.
    Reports among `known` (scan_reports) that have not changed since are not read again.

    A file that is not a report, or is damaged, is left alone and named in a warning (also shown
    on the index page); it never stops the index from being built.
    """
    report_dir = Path(report_dir)
    with _index_lock(report_dir):  # two runs finishing together: the second scan sees the first's report
        entries, warnings = scan_reports(report_dir, known)
        page = render_index(entries, warnings).encode("utf-8")
        try:
            atomic_write(report_dir / INDEX_NAME, page)
        except OSError as exc:
            raise ReportError(f"cannot write {report_dir / INDEX_NAME}: {exc.strerror or exc}") from exc
    return warnings


@contextlib.contextmanager
def _index_lock(report_dir: Path) -> Iterator[None]:
    try:
        import fcntl

        fd = os.open(report_dir, os.O_RDONLY)  # the folder itself is the lock: nothing left behind
    except (ImportError, OSError):  # no locking here: the next run's rebuild catches up
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
