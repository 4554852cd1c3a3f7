"""Maildir (and Maildir++ folders) on this machine, through the standard `mailbox` module.

Only messages newer than the case are read: a Maildir file's name starts with its delivery time
(the Maildir convention, `<seconds>.<unique>.<host>`), so a Maildir of 10,000 old messages costs a
directory listing, not 10,000 reads. Of a match, the header and the first MAX_BODY_BYTES are read.
"""

from __future__ import annotations

import mailbox
import os
import re

from runner.mail.reader import (
    MAX_BODY_BYTES,
    MAX_FOLDERS,
    MAX_HEADER_BYTES,
    MAX_SCAN,
    Found,
    MailError,
    MailTimeout,
    Reader,
    Wanted,
    is_report,
    message_ids,
    report_about,
)

__all__ = ["MaildirReader", "read_bounded"]

_STAMP = re.compile(r"^([0-9]{9,11})(?:\.M([0-9]{1,6})|[.].*?M([0-9]{1,6}))?")
CLOCK_SLACK = 2.0  # seconds a delivery's stamp may lag the case's start (clock granularity)


def read_bounded(fh: object, header_limit: int = MAX_HEADER_BYTES, body_limit: int = MAX_BODY_BYTES,
                 header_only: bool = False) -> tuple[bytes, bytes, bool]:
    """(header section, body prefix, cut) read from a binary file, each within its bound."""
    header = b""
    cut = False
    while len(header) < header_limit:
        line = fh.readline(header_limit - len(header))  # type: ignore[attr-defined]
        if not line:
            break
        header += line
        if line in (b"\n", b"\r\n"):
            break
    else:
        cut = True
    if header_only:
        return header, b"", cut
    body = fh.read(body_limit + 1)  # type: ignore[attr-defined]
    return header, body[:body_limit], cut or len(body) > body_limit


def _stamp(key: str) -> float | None:
    m = _STAMP.match(key)
    if not m:
        return None
    micro = m.group(2) or m.group(3)
    return int(m.group(1)) + (int(micro) / 1e6 if micro else 0.0)


def _missing(path: str) -> MailError:
    """A Maildir that is not there: not there *yet* when its parent folder exists (MTAs such as Postfix make
    a user's Maildir with the first delivery), so the wait goes on; a wrong path when the parent is missing."""
    parent = os.path.dirname(os.path.normpath(path)) or "."
    if os.path.isdir(parent):
        return MailError(f"no Maildir at {path} yet (a directory with cur/, new/ and tmp/, which mail servers "
                         f"make with the first delivery){_beside(parent)}", transient=True)
    return MailError(f"no Maildir at {path}: its folder {parent} does not exist")


def _beside(parent: str) -> str:
    """The Maildirs next to a missing one (a typo in its name is the likely reason it never appears)."""
    try:
        names = sorted(os.listdir(parent))[:MAX_FOLDERS]
    except OSError:
        return ""
    found = [os.path.join(parent, n) for n in names
             if all(os.path.isdir(os.path.join(parent, n, sub)) for sub in ("cur", "new", "tmp"))]
    return f"; Maildirs beside it: {', '.join(found[:3])}" if found else ""


class MaildirReader(Reader):
    root: mailbox.Maildir
    box: mailbox.Maildir | None = None

    def open(self) -> None:
        url = self.url
        try:
            root = mailbox.Maildir(url.path, factory=None, create=False)
            root.keys()  # a missing or unreadable directory shows here
        except mailbox.NoSuchMailboxError:
            raise _missing(url.path) from None
        except OSError as exc:
            raise MailError(f"cannot read Maildir {url.path}: {exc.strerror or exc}") from None
        self.root = root
        self.box = self._folder(url.folder)
        if self.box is None:
            there = ", ".join(f'"{n}"' for n in self._folders()[:20]) or "none"
            raise MailError(f"no Maildir++ folder \"{url.folder}\" in {url.path} (its folders: {there})")
        self.seen: set[tuple[str, str]] = set()
        self.log(f"Maildir: reading {url}")

    def _folder(self, name: str) -> mailbox.Maildir | None:
        """The Maildir itself for INBOX, else its Maildir++ folder (`.Junk/`); None when there is none."""
        if name == "INBOX":
            return self.root
        try:
            box = self.root.get_folder(name)
            box.keys()
        except (mailbox.NoSuchMailboxError, FileNotFoundError):
            return None
        except OSError as exc:
            raise MailError(f"cannot read Maildir {self.url.path}, folder {name}: {exc.strerror or exc}") from None
        return box

    def _folders(self) -> list[str]:
        try:
            return sorted(self.root.list_folders())
        except OSError:
            return []

    def find(self, wanted: Wanted) -> Found | None:
        assert self.box is not None
        self.looks += 1
        return self._find_in(self.box, self.url.folder, wanted)

    def find_elsewhere(self, wanted: Wanted) -> Found | None:
        """The Maildir's other folders (INBOX and its Maildir++ folders), Junk and Spam first, at most MAX_FOLDERS."""
        names = [n for n in ["INBOX", *self._folders()] if n != self.url.folder]
        names.sort(key=lambda n: (not any(w in n.lower() for w in ("junk", "spam")), n.lower()))
        for name in names[:MAX_FOLDERS]:
            try:
                box = self._folder(name)
                found = self._find_in(box, name, wanted) if box is not None else None
            except MailTimeout:
                raise
            except MailError as exc:  # a folder this user cannot read: not where the step looks
                self.log(f"Maildir {name}: {exc}")
                continue
            if found is not None:
                return found
        return None

    def _find_in(self, box: mailbox.Maildir, folder: str, wanted: Wanted) -> Found | None:
        try:
            keys = [k for k in box.iterkeys() if (folder, k) not in self.seen]
        except OSError as exc:
            raise MailError(f"cannot read Maildir {self.url.path}: {exc.strerror or exc}") from None
        fresh = [(s, k) for k in keys if (s := _stamp(k)) is None or s >= wanted.since - CLOCK_SLACK]
        fresh.sort(key=lambda sk: sk[0] or 0, reverse=True)
        self.log(f"Maildir {folder}: {len(keys)} messages not looked at yet, {len(fresh)} newer than the case")
        for stamp, key in fresh[:MAX_SCAN]:
            self.budget.check()
            found = self._read(box, folder, key, stamp, wanted)
            self.seen.add((folder, key))
            if found is not None:
                self.log(f"Maildir {folder}: {key} is the message")
                return found
        return None

    def _read(self, box: mailbox.Maildir, folder: str, key: str, stamp: float | None,
              wanted: Wanted) -> Found | None:
        try:
            with box.get_file(key) as fh:
                header, _, _ = read_bounded(fh, header_only=True)
                if not self._matches(header, wanted):
                    return None
                body = fh.read(MAX_BODY_BYTES + 1)
                fh.seek(0, 2)  # the file's size, without reading the rest
                size = fh.tell()
        except (KeyError, FileNotFoundError):  # moved from new/ to cur/ (or removed) while being listed
            return None
        except OSError as exc:
            raise MailError(f"cannot read {key} in Maildir {self.url.path}: {exc.strerror or exc}") from None
        if wanted.dsn and not report_about(header, body, wanted.message_id):
            return None  # a report about another message
        cut = len(body) > MAX_BODY_BYTES
        return Found(header, body[:MAX_BODY_BYTES], folder, key, size=size, arrived=stamp, truncated=cut)

    def _matches(self, header: bytes, wanted: Wanted) -> bool:
        if wanted.dsn:
            return is_report(header)
        return wanted.message_id in message_ids(header)

    def delete(self, found: Found) -> None:
        box = self.box if found.folder == self.url.folder else self._folder(found.folder)
        assert box is not None
        try:
            box.remove(found.ref)
        except (KeyError, OSError) as exc:
            raise MailError(f"cannot remove {found.ref} from Maildir {self.url.path}: {exc}") from None
        self.log(f"Maildir: removed {found.ref}")
