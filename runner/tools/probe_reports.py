"""The exporter's HTML reports (`smtprun exporter --report-dir DIR`): each probe's run written there.

Reports are written after the probe has answered, one at a time (an asyncio lock; the file work in
a thread so probes keep running). Then the plan's oldest reports are removed, never the one just
written, to keep --keep-reports of them, and the folder's index is rebuilt. `GET /reports/NAME`
serves them, so `/` can link each plan to its latest report.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from runner.errors import ReportError
from runner.report import rebuild_index, write_html_reports
from runner.results import RunResult

__all__ = ["ProbeReports"]

_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}\.html")
_MAX_PENDING = 100  # reports waiting to be written; beyond it a probe's report is dropped, and logged


def _reports_of(folder: Path, name: str) -> list[Path]:
    """The plan's reports, oldest first: `<name>-<UTC time>Z[-N].html` as runner.report names them."""
    pattern = re.compile(re.escape(name) + r"-(\d{8}T\d{6})Z(?:-(\d+))?\.html")
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = pattern.fullmatch(entry.name)
            if match and entry.is_file(follow_symlinks=False):
                found.append(((match[1], int(match[2] or 0)), Path(entry.path)))
    return [path for _, path in sorted(found)]


class ProbeReports:
    def __init__(self, folder: Path, keep: int, log: Callable[[str], None],
                 counted: Callable[[str, str], None] = lambda name, outcome: None) -> None:
        self.folder, self.keep, self.log = folder, keep, log
        self.counted = counted  # (plan, "written" | "failed" | "dropped") for each report
        self.lock = asyncio.Lock()  # one report write at a time: names, pruning and the index never race
        self.latest: dict[str, str] = {}  # plan name -> file name of its newest report
        self.pending: set[asyncio.Task[None]] = set()

    def prepare(self, names: list[str]) -> None:
        """Create the folder, and remember each plan's newest report already in it."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(f"--report-dir {self.folder}: {exc.strerror or exc}") from None
        for name in names:
            found = _reports_of(self.folder, name)
            if found:
                self.latest[name] = found[-1].name

    def save(self, name: str, run: RunResult) -> None:
        """Write the probe's report soon, after the answer has gone."""
        if len(self.pending) >= _MAX_PENDING:
            self.log(f"smtprun exporter: plan {name}: report not written, {_MAX_PENDING} already waiting")
            self.counted(name, "dropped")
            return
        task = asyncio.get_running_loop().create_task(self._write(name, run))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _write(self, name: str, run: RunResult) -> None:
        async with self.lock:
            try:
                written = await asyncio.to_thread(self._write_now, name, run)
            except ReportError as exc:
                self.log(f"smtprun exporter: plan {name}: {exc}")
                self.counted(name, "failed")
                return
        if written:
            self.latest[name] = written
        self.counted(name, "written")

    def _write_now(self, name: str, run: RunResult) -> str | None:
        warnings: list[str] = []
        paths = write_html_reports(run, self.folder, warnings.append)  # rebuilds the index too
        others = [p for p in _reports_of(self.folder, name) if p not in paths]
        old = others[: max(0, len(others) - (self.keep - 1))]  # never the one just written
        for path in old:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if old:
            warnings.extend(rebuild_index(self.folder))
        for warning in dict.fromkeys(warnings):
            self.log(f"smtprun exporter: {warning}")
        # probes overlap, so the report just written need not be the newest; and the newest is
        # what pruning keeps: link the plan's newest report still on disk, as the index orders them
        kept = _reports_of(self.folder, name)
        return kept[-1].name if paths and kept else None

    async def close(self) -> None:
        """Let the reports under way finish."""
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """GET /reports/NAME: a report or the folder's index.html; nothing else in the folder."""
        name = request.match_info["name"]
        path = self.folder / name
        try:
            if not _FILE.fullmatch(name) or not stat.S_ISREG(os.lstat(path).st_mode):
                raise FileNotFoundError(name)
        except OSError:
            return web.Response(status=404, text=f"no report {name!r}\n")
        return web.FileResponse(path, headers={"Content-Type": "text/html; charset=utf-8",
                                               "Cache-Control": "no-cache"})
