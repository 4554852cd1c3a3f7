"""The SMTP wire format without sockets: bytes in, replies out; commands and bodies to bytes.

Nothing here does I/O, so every rule can be tested with byte literals, and a reply parses the
same whatever way its bytes were split on the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from runner.errors import ProtocolError

__all__ = [
    "HELLO_COMMANDS",
    "MAX_REPLY_BYTES",
    "MAX_REPLY_LINE",
    "MAX_REPLY_LINES",
    "DataEncoder",
    "Reply",
    "ReplyParser",
    "as_received",
    "encode_body",
    "encode_line",
    "is_hello",
    "keywords_from_lines",
]

# RFC 5321 §4.5.3.1.5 sets 512 octets for a reply line, CRLF included; servers in the field
# exceed it (long EHLO lists, verbose rejections), so smtprun accepts up to 4 KiB and stops there.
MAX_REPLY_LINE = 4096
# A multiline reply (RFC 5321 §4.2.1) has no line count limit in the RFC; these bound memory.
MAX_REPLY_LINES = 256
MAX_REPLY_BYTES = 64 * 1024

HELLO_COMMANDS = ("EHLO", "LHLO")  # LHLO is EHLO's LMTP twin (RFC 2033 §4.1), its reply the same


def is_hello(command: str | None) -> bool:
    """Whether a command line is an EHLO or LHLO, whose reply lists keywords."""
    words = (command or "").split(None, 1)
    return bool(words) and words[0].upper() in HELLO_COMMANDS


# ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") (RFC 5321 §4.1.1.1), then its parameters after a
# space, or after "=" in the pre-standard form many servers still send (AUTH=LOGIN PLAIN, Courier's
# XVERP=COURIER and XSECURITY=NONE,STARTTLS), which Postfix's and Exim's clients also read as the keyword.
_KEYWORD = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?\Z", re.DOTALL)


def keywords_from_lines(lines: Iterable[str]) -> dict[str, str]:
    """EHLO keywords from the reply lines after the greeting: KEYWORD (upper-cased) -> its parameters as
    sent. A keyword listed twice (AUTH PLAIN, then AUTH=PLAIN for old clients) keeps its first line."""
    found: dict[str, str] = {}
    for line in lines:
        word, _, params = line.strip().partition(" ")
        if "=" in word and (m := _KEYWORD.match(line.strip())):  # the old KEYWORD=VALUE form
            word, params = m.group(1), m.group(2) or ""
        if word and word.upper() not in found:
            found[word.upper()] = params.strip()
    return found


_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


@dataclass(frozen=True)
class Reply:
    """One complete SMTP reply: a code and the text of each of its lines (RFC 5321 §4.2)."""

    code: int
    lines: tuple[str, ...]
    raw: bytes
    eight_bit: bool = False  # a line was not UTF-8: its text was read as Latin-1 (the raw bytes are as sent)

    @property
    def text(self) -> str:
        """All lines' texts joined with newlines: what `text:` regexes search."""
        return "\n".join(self.lines)

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code at the start of the first line, if any."""
        m = _ENHANCED.match(self.lines[0]) if self.lines else None
        return f"{m[1]}.{int(m[2])}.{int(m[3])}" if m else None

    def keywords(self) -> dict[str, str]:
        """EHLO keywords (RFC 5321 §4.1.1.1): every line after the greeting, KEYWORD -> params."""
        return keywords_from_lines(self.lines[1:])

    def summary(self) -> str:
        """The reply as one line of text, for messages."""
        first = f"{self.code} {self.lines[0]}".rstrip() if self.lines else str(self.code)
        more = len(self.lines) - 1
        return first + (f" (+{more} more lines)" if more > 0 else "")


class ReplyParser:
    """Feed bytes in any split; take complete replies out.

    Strict where a lenient client would be fooled: every line must end in CRLF (RFC 5321
    §2.3.8), carry the same code as the first line of its reply (§4.2.1) and contain no NUL,
    bare CR or other control character. Lenient where the RFC asks it: a bare code with no text
    is a valid reply line; and where servers in the field differ from it: text that is not UTF-8
    (a Latin-1 banner) is read as Latin-1 and the reply marked `eight_bit`, unless `strict`.
    After a ProtocolError the parser stays broken; the connection is no longer trustworthy.
    """

    def __init__(
        self,
        max_line: int = MAX_REPLY_LINE,
        max_lines: int = MAX_REPLY_LINES,
        max_bytes: int = MAX_REPLY_BYTES,
        strict: bool = False,
    ) -> None:
        self.max_line = max_line
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.strict = strict
        self._eight_bit = False
        self._buf = bytearray()
        self._code: int | None = None
        self._lines: list[str] = []
        self._raw = bytearray()
        self._error: ProtocolError | None = None

    @property
    def pending(self) -> bytes:
        """Bytes received and not yet part of a complete reply."""
        return bytes(self._raw) + bytes(self._buf)

    @property
    def failed(self) -> bool:
        """A ProtocolError was raised: nothing more is read from this stream."""
        return self._error is not None

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_reply(self) -> Reply | None:
        """Return the next complete reply, or None when more bytes are needed."""
        if self._error is not None:
            raise self._error
        buf, pos = self._buf, 0
        try:
            try:
                while True:
                    end = buf.find(b"\n", pos, pos + self.max_line)  # the limit counts the CRLF
                    if end < 0:
                        if len(buf) - pos >= self.max_line:
                            raise ProtocolError(f"reply line longer than {self.max_line} bytes")
                        return None
                    line = bytes(buf[pos: end + 1])
                    pos = end + 1
                    self._raw += line
                    if len(self._raw) > self.max_bytes:
                        raise ProtocolError(f"reply longer than {self.max_bytes} bytes")
                    reply = self._take_line(line)
                    if reply is not None:
                        return reply
            finally:
                del buf[:pos]  # once per call, not once per line
        except ProtocolError as exc:
            exc.received = bytes(self._raw) + bytes(self._buf[: self.max_line + 2])
            self._error = exc
            raise

    def _take_line(self, line: bytes) -> Reply | None:
        """Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF"""
        fast = _PLAIN_LINE.fullmatch(line)  # the common case: printable ASCII, checked in one pass
        if fast is not None:
            code_s, sep, rest = fast[1].decode(), (fast[2] or b"").decode(), (fast[3] or b"").decode()
        else:
            code_s, sep, rest, latin1 = _diagnose(line, self.strict)
            self._eight_bit |= latin1
        code = int(code_s)
        if self._code is not None and code != self._code:
            raise ProtocolError(f"reply code changed from {self._code} to {code} inside a multiline reply")
        self._code = code
        self._lines.append(rest)
        if len(self._lines) > self.max_lines:
            raise ProtocolError(f"multiline reply longer than {self.max_lines} lines")
        if sep == "-":
            return None
        reply = Reply(code, tuple(self._lines), bytes(self._raw), self._eight_bit)
        self._code, self._lines, self._raw, self._eight_bit = None, [], bytearray(), False
        return reply


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # C0, DEL and C1 (U+0080-U+009F)
_C0_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # in 8-bit text read as Latin-1: 0x80-0x9f are its bytes
_PLAIN_LINE = re.compile(rb"([2-5][0-9][0-9])(?:([ -])([\x20-\x7e\t]*))?\r\n")


def _diagnose(line: bytes, strict: bool) -> tuple[str, str, str, bool]:
    """The slow path for lines that are not plain ASCII: accept UTF-8 text (RFC 6531), 8-bit text as
    Latin-1 unless `strict` (RFC 5321 §4.2 allows neither; servers send it), or say exactly what is wrong."""
    if not line.endswith(b"\r\n"):
        raise ProtocolError("reply line ends with a bare LF, not CRLF (RFC 5321 §2.3.8)")
    body = line[:-2]
    if b"\r" in body:
        raise ProtocolError("reply line contains a bare CR (RFC 5321 §2.3.8)")
    if b"\x00" in body:
        raise ProtocolError(f"reply line contains a NUL byte at offset {body.index(0)}")
    latin1 = False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if strict:
            raise ProtocolError(f"reply line is not valid UTF-8 at byte {exc.start}") from None
        text, latin1 = body.decode("latin-1"), True
    control = (_C0_CONTROL if latin1 else _CONTROL).search(text)
    if control:  # RFC 5321 §4.2: textstring is tab and printable characters only
        code = ord(control[0])
        raise ProtocolError(f"reply line contains control character 0x{code:02x} at offset {control.start()}")
    code_s, sep, rest = text[:3], text[3:4], text[4:]
    if not (len(code_s) == 3 and code_s.isascii() and code_s.isdigit() and code_s[0] in "2345"):
        raise ProtocolError("not an SMTP reply line", excerpt=text)
    if sep not in ("", " ", "-"):
        raise ProtocolError("reply code not followed by space, '-' or CRLF", excerpt=text)
    return code_s, sep, rest, latin1


def encode_line(line: str) -> bytes:
    """A command line as sent: UTF-8 (8-bit clean, RFC 6531) plus CRLF. No CR or LF inside."""
    if "\r" in line or "\n" in line:
        raise ValueError("a line to send contains CR or LF; use raw: to send bare line ends")
    return line.encode("utf-8") + b"\r\n"


class DataEncoder:
    """Turns a message body into the DATA stream, chunk by chunk (RFC 5321 §4.1.1.4, §4.5.2).

    LF, CR and CRLF line ends become CRLF, a line starting with "." gets one more, and `end()`
    closes the body with CRLF "." CRLF. State carries across chunks, so a body of any size is
    streamed in bounded memory and the output is the same whatever the chunking.
    """

    def __init__(self) -> None:
        self._at_line_start = True
        self._held_cr = False

    def encode(self, chunk: bytes) -> bytes:
        if self._held_cr:
            chunk = b"\r" + chunk
            self._held_cr = False
        if chunk.endswith(b"\r"):
            chunk, self._held_cr = chunk[:-1], True
        if not chunk:
            return b""
        text = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # RFC 5321 §2.3.8: no bare CR
        stuffed = text.replace(b"\n.", b"\n..")
        if self._at_line_start and stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        self._at_line_start = stuffed.endswith(b"\n")
        return stuffed.replace(b"\n", b"\r\n")

    def end(self) -> bytes:
        tail = b"\r\n" if self._held_cr else b""
        if self._held_cr:
            self._held_cr, self._at_line_start = False, True
        if not self._at_line_start:
            tail += b"\r\n"
        return tail + b".\r\n"


def encode_body(body: bytes) -> bytes:
    """A whole body as the DATA stream, terminator included."""
    enc = DataEncoder()
    return enc.encode(body) + enc.end()


def as_received(body: bytes) -> bytes:
    """The message the server receives for `body` once it undoes the dot-stuffing (RFC 5321 §4.5.2): every line
    end CRLF, a bare CR one too, as DataEncoder sends them, and a CRLF after the last line, which the terminator
    supplies. What a DKIM signature made before sending must cover (RFC 6376 §3.4.4: it is computed over CRLF
    lines). encode_body(as_received(body)) == encode_body(body)."""
    text = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return text if not text or text.endswith(b"\r\n") else text + b"\r\n"
