"""Target lists (`--targets FILE`) and shards (`--shard K/N`): one plan against a fleet.

    file    = *(line LF)                      ; UTF-8; blank lines and `#` comments ignored
    line    = target [ws "#" comment]
    target  = host [":" port] | "[" ipv6 "]" [":" port] | "mx:" domain [":" port]

or CSV whose header row names the columns: the first is `target` (as above), the others become
variables of that target's cases. Every problem names the file and line.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from runner.errors import Location, PlanError, Problem
from runner.files import read_regular
from runner.net.address import hostport, parse_hostport, parse_port
from runner.plan.types import Target

__all__ = ["FleetTarget", "in_shard", "parse_shard", "read_targets"]

MAX_FILE_BYTES = 64 << 20  # 64 MiB: a million targets with room for columns
MAX_TARGETS = 1_000_000
_DOMAIN_MAX = 253  # RFC 1035 §2.3.4: 255 octets on the wire, 253 characters as text


@dataclass(frozen=True)
class FleetTarget:
    text: str  # as written, normalised: the label its cases carry
    line: int
    host: str | None = None
    port: int | None = None
    mx: str | None = None
    vars: dict[str, str] = field(default_factory=dict)

    def apply(self, target: Target) -> Target:
        """The plan's target, pointed at this one (its TLS, timeouts and DNS settings kept)."""
        port = self.port or target.port
        if self.mx:
            return replace(target, host=None, port=port, mx=self.mx, all_mx=False, unix=None)
        return replace(target, host=self.host, port=port, mx=None, all_mx=False, domain=target.mx or target.domain,
                       unix=None)


def _problem(file: str, line: int, message: str, source: str | None = None, hint: str | None = None) -> Problem:
    return Problem(message, Location(file, line, 1), hint=hint, source_line=source)


def parse_target(text: str) -> tuple[str, str | None, int | None, str | None]:
    """`target`: (label, host, port, mx domain); a ValueError in words otherwise."""
    if text.lower().startswith("mx:"):
        domain, _, port_text = text[3:].partition(":")
        domain = domain.strip().rstrip(".").lower()
        if not domain or len(domain) > _DOMAIN_MAX or any(c.isspace() or c in "[]/@" for c in domain):
            raise ValueError(f"not a mail domain: {text[3:]!r}")
        port = parse_port(port_text) if port_text else None
        return f"mx:{domain}" + (f":{port}" if port else ""), None, port, domain
    host, port = parse_hostport(text)
    if any(c.isspace() for c in host):
        raise ValueError(f"a host name has no blanks: {text!r}")
    host = host.rstrip(".").lower() if ":" not in host else host.lower()  # DNS names are case-blind (RFC 4343)
    return (hostport(host, port) if port else (f"[{host}]" if ":" in host else host)), host, port, None


def _lines(text: str) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), 1):
        body = raw if not raw.lstrip().startswith("#") else ""
        hash_at = body.find(" #")
        body = (body[:hash_at] if hash_at >= 0 else body).strip()
        if body:
            yield number, body


def _plain(file: str, text: str, problems: list[Problem]) -> list[FleetTarget]:
    found = []
    for number, body in _lines(text):
        try:
            label, host, port, mx = parse_target(body)
        except ValueError as exc:
            problems.append(_problem(file, number, f"not a target: {exc}", body,
                                     "one host[:port], [IPv6]:port or mx:domain per line"))
            continue
        found.append(FleetTarget(label, number, host, port, mx))
    return found


def _csv(file: str, text: str, problems: list[Problem]) -> list[FleetTarget]:
    rows = [(n, row) for n, row in _csv_rows(text) if row and not row[0].lstrip().startswith("#")]
    (head_line, header), rows = rows[0], rows[1:]
    names = [h.strip() for h in header]
    if names[0].lower() != "target":
        problems.append(_problem(file, head_line, f"the first column of a CSV target list is 'target', not "
                                 f"{names[0]!r}", hint=_not_csv(",".join(header))))
        return []
    bad = [n for n in names[1:] if not n.isidentifier()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if bad or repeated:
        what = f"not variable names: {', '.join(map(repr, bad))}" if bad else f"repeated: {', '.join(repeated)}"
        problems.append(_problem(file, head_line, f"CSV header columns {what}"))
        return []
    found = []
    for number, row in rows:
        if len(row) != len(names):
            problems.append(_problem(file, number, f"{len(row)} columns where the header has {len(names)}"))
            continue
        try:
            label, host, port, mx = parse_target(row[0].strip())
        except ValueError as exc:
            problems.append(_problem(file, number, f"not a target: {exc}"))
            continue
        found.append(FleetTarget(label, number, host, port, mx, dict(zip(names[1:], row[1:], strict=True))))
    if not found and not problems:
        problems.append(_problem(file, head_line, "the target list has a header row and no targets"))
    return found


def _not_csv(first: str) -> str:
    """The hint for a CSV header that is not one: a comma typed for a dot in a plain list's first host?"""
    hint = "a comma in the first line makes the file a CSV list, whose header row starts with 'target'"
    if "." not in first:  # "host,rcpt": a header row, its first column misnamed
        return hint
    try:
        label = parse_target(first.replace(",", "."))[0]
    except ValueError:
        return hint
    return f"{hint}; for a plain list, did you mean {label}?"


def _csv_rows(text: str) -> Iterable[tuple[int, list[str]]]:
    import csv  # only a targets file written as CSV

    reader = csv.reader(io.StringIO(text))
    for row in reader:
        yield reader.line_num, row


def read_targets(path: str) -> list[FleetTarget]:
    """The targets of a list file, in file order; a PlanError naming every bad line, every duplicate."""
    try:
        data = read_regular(path, MAX_FILE_BYTES)
        if len(data) > MAX_FILE_BYTES:
            raise PlanError(_problem(path, 1, f"target list larger than {MAX_FILE_BYTES >> 20} MiB"))
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise PlanError(_problem(path, 1, f"cannot read the target list: {exc.strerror or exc}")) from None
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise PlanError(_problem(path, line, "the target list is not UTF-8 text")) from None
    problems: list[Problem] = []
    first = next(iter(_lines(text)), None)
    if first is None:
        raise PlanError(_problem(path, 1, "the target list is empty (no targets, only blank lines or comments)"))
    csv_header = "," in first[1] or first[1].lower() == "target"  # a CSV of one column: its header alone
    targets = _csv(path, text, problems) if csv_header else _plain(path, text, problems)
    problems += _duplicates(path, targets)
    if len(targets) > MAX_TARGETS:
        problems.append(_problem(path, targets[MAX_TARGETS].line, f"more than {MAX_TARGETS} targets"))
    if problems:
        raise PlanError(sorted(problems, key=lambda p: p.location.line if p.location else 0)[:50])
    return targets


def _duplicates(path: str, targets: list[FleetTarget]) -> list[Problem]:
    """A target named twice, however written (an IPv6 address in another form, a port given or not): a
    target without a port takes the plan's, so `h` and `h:25` are one server when the plan's port is 25."""
    problems = []
    seen: dict[tuple[str, str, int | None], FleetTarget] = {}
    ported: dict[tuple[str, str], FleetTarget] = {}  # the first target of each host or domain with a port
    for t in targets:
        where = ("mx", t.mx) if t.mx else ("host", _canonical(t.host or ""))
        first = seen.get((*where, t.port))
        other = ported.get(where) if t.port is None else seen.get((*where, None))
        if first is not None:
            also = f" as {first.text}" if first.text != t.text else ""
            problems.append(_problem(path, t.line, f"duplicate target {t.text} (first on line {first.line}{also})"))
        elif other is not None:
            bare, given = (t, other) if t.port is None else (other, t)
            problems.append(_problem(
                path, t.line, f"{t.text} and {other.text} (line {other.line}) are one target when the plan's port is "
                f"{given.port}: {bare.text} takes the plan's port",
                hint=f"write the port on both lines ({bare.text}:PORT), or keep one of them"))
        seen.setdefault((*where, t.port), t)
        if t.port is not None:
            ported.setdefault(where, t)
    return problems


def _canonical(host: str) -> str:
    """One spelling of an IP address (2001:DB8:0::1 is 2001:db8::1); a name as parse_target left it."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N`: the K-th of N shares, 1 <= K <= N (as CI_NODE_INDEX/CI_NODE_TOTAL count)."""
    index, slash, total = text.partition("/")
    if not (slash and index.isdigit() and total.isdigit()) or not 1 <= int(index) <= int(total) <= 10_000:
        raise ValueError(f"expected K/N with 1 <= K <= N <= 10000, got {text!r}")
    return int(index), int(total)


def in_shard(case_name: str, target: str, shard: tuple[int, int]) -> bool:
    """Whether a case (by its name and its target) is in shard K of N: the same answer on every
    machine and every run, so shards never overlap and together cover every case."""
    index, total = shard
    digest = hashlib.sha256(f"{case_name}\0{target}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % total == index - 1
