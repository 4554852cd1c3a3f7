"""An mbox file on this machine (`/var/mail/alice`), where Sendmail, procmail and Debian's stock Postfix
and Exim deliver.

An mbox is one file of messages, each starting with a `From ` line (RFC 4155). Only its tail is read:
messages are appended, so those newer than the case are the last ones; the file is scanned backwards from
its end to the first `From ` line older than the case (its date is the delivery's), at most MAX_SCAN_BYTES,
and then forwards only past what was read on an earlier look. The file is read under a shared lock
(fcntl, as MTAs and mail readers take it), never written to, except that `delete:` removes the message
through the standard library's `mailbox.mbox` under its exclusive and dot locks, as mutt would.
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import mailbox
import os
import re
import time
from collections.abc import Iterator

from runner.mail.reader import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    Found,
    MailError,
    Reader,
    Wanted,
    is_report,
    message_ids,
    report_about,
)

__all__ = ["MboxReader"]

MAX_SCAN_BYTES = 64 * 1024 * 1024  # of an mbox's tail, per look: a huge old mbox costs a bounded read
CHUNK = 1024 * 1024
CLOCK_SLACK = 2.0  # seconds a `From ` line's date (whole seconds, local time) may lag the case's start
_FROM = re.compile(rb"^From [^\n]*\n", re.MULTILINE)  # a match starts at its line
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)  # mboxrd/mboxo quoting of a body's "From " lines


def _from_time(line: bytes) -> float | None:
    """The delivery time on a `From sender date` line (asctime format, local time), if readable."""
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 3:
        return None
    with contextlib.suppress(TypeError, ValueError, OverflowError):
        parsed = email.utils.parsedate(parts[2].strip())
        if parsed is not None:
            return time.mktime(parsed)
    return None


class MboxReader(Reader):
    def open(self) -> None:
        path = self.url.path
        parent = os.path.dirname(path) or "/"
        if not os.path.isdir(parent):
            raise MailError(f"no mbox at {path}: its folder {parent} does not exist")
        self.offset: int | None = None  # how far earlier looks read; None before the first
        self.seen: set[int] = set()
        self.log(f"mbox: reading {self.url}")

    def find(self, wanted: Wanted) -> Found | None:
        self.looks += 1
        try:
            fd = os.open(self.url.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:  # made with the first delivery, as a Maildir is
            raise MailError(f"no mbox at {self.url.path} yet (mail servers make it with the first delivery)",
                            transient=True) from None
        except OSError as exc:
            raise MailError(f"cannot read mbox {self.url.path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as fh:
            if not _shared_lock(fh.fileno()):
                self.log("mbox: locked by a delivery; looking again shortly")
                return None
            return self._scan(fh, wanted)

    def _scan(self, fh, wanted: Wanted) -> Found | None:  # type: ignore[no-untyped-def]
        size = os.fstat(fh.fileno()).st_size
        start = self._start(fh, size, wanted.since)
        fh.seek(start)
        data = fh.read(min(size - start, MAX_SCAN_BYTES))
        self.offset = start + _complete(data)
        for at, message in _messages(data, start):
            self.budget.check()
            if at in self.seen:
                continue
            if at < self.offset:  # the last message may still be written to: looked at again next time
                self.seen.add(at)
            found = self._match(message, at, wanted)
            if found is not None:
                self.log(f"mbox: the message at byte {at} is the one")
                return found
        return None

    def _start(self, fh, size: int, since: float) -> int:  # type: ignore[no-untyped-def]
        """Where this look starts reading: past the last look's complete messages, or on the first look
        the first `From ` line of the tail that is newer than the case."""
        if self.offset is not None and self.offset <= size:
            return self.offset
        self.seen.clear()  # first look, or the file was rewritten (a message removed): read it anew
        end, floor = size, max(0, size - MAX_SCAN_BYTES)
        start = size
        while end > floor:
            begin = max(floor, end - CHUNK)
            fh.seek(begin)
            chunk = fh.read(end - begin + 256)  # a little past the chunk: a From line across the boundary
            for m in reversed(list(_FROM.finditer(chunk))):
                at = begin + m.start()
                if at >= end:
                    continue
                stamp = _from_time(m.group().strip())
                if stamp is not None and stamp < since - CLOCK_SLACK:
                    return start
                start = at
            end = begin
        return start if start < size else floor

    def _match(self, message: bytes, at: int, wanted: Wanted) -> Found | None:
        header_end = message.find(b"\n\n")
        header = message[: header_end + 2 if header_end >= 0 else MAX_HEADER_BYTES][:MAX_HEADER_BYTES]
        if wanted.dsn:
            if not is_report(header):
                return None
        elif wanted.message_id not in message_ids(header):
            return None
        body = _ESCAPED_FROM.sub(rb"\1", message[len(header):])
        if wanted.dsn and not report_about(header, body, wanted.message_id):
            return None
        return Found(header, body[:MAX_BODY_BYTES], "INBOX", at, size=len(message),
                     truncated=len(body) > MAX_BODY_BYTES)

    def delete(self, found: Found) -> None:
        box = mailbox.mbox(self.url.path, create=False)
        try:
            box.lock()
            try:
                key = next((k for k in box.iterkeys() if _starts_with(box, k, found.header)), None)
                if key is None:
                    raise MailError(f"cannot remove the message at byte {found.ref} of {self.url.path}: "
                                    "the mbox changed")
                box.remove(key)
                box.flush()
            finally:
                box.unlock()
        except (OSError, mailbox.Error) as exc:
            raise MailError(f"cannot remove the message from mbox {self.url.path}: {exc}") from None
        finally:
            box.close()
        self.offset = None
        self.log(f"mbox: removed the message at byte {found.ref}")


def _starts_with(box: mailbox.mbox, key: str, header: bytes) -> bool:
    with box.get_file(key) as fh:
        return fh.read(len(header)) == header


def _shared_lock(fd: int) -> bool:
    """A shared fcntl lock, not waited for: False while a delivery holds the exclusive one."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _complete(data: bytes) -> int:
    """How much of `data` is whole messages: up to the last `From ` line (the last message may still grow)."""
    last = None
    for m in _FROM.finditer(data):
        last = m
    if last is None:
        return 0
    return last.start()


def _messages(data: bytes, base: int) -> Iterator[tuple[int, bytes]]:
    """(offset in the file, message without its From line) for each message in `data`."""
    starts = [m.start() for m in _FROM.finditer(data)]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        line_end = data.index(b"\n", start) + 1
        yield base + start, data[line_end:end]
