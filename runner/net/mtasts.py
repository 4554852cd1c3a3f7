"""MTA-STS (RFC 8461) judged as a sending MTA would judge it: the `_mta-sts.<domain>` TXT record (§3.1), the policy
fetched from `https://mta-sts.<domain>/.well-known/mta-sts.txt` (§3.3, runner/net/policyfetch.py) and parsed
(§3.2), and the domain's real MX hosts matched against its `mx:` patterns (§4.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from runner.net.resolver import DnsError, Lookups, ResolverConfig, shown

__all__ = ["MAX_AGE_LIMIT", "MtaStsCheck", "Policy", "mx_matches", "parse_policy", "parse_record", "policy_url"]

_RECORD_VERSION = re.compile(r"^v=STSv1[ \t]*(?:;|$)")  # RFC 8461 §3.1: a record must begin with v=STSv1
_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")  # RFC 8461 §3.1: sts-id = 1*32(ALPHA / DIGIT)
_FIELD = re.compile(r"^([A-Za-z0-9_.-]{1,32}):[ \t]*(.*?)[ \t]*$")  # RFC 8461 §3.2: sts-policy-field
_MODES = ("enforce", "testing", "none")  # RFC 8461 §5
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
MAX_AGE_LIMIT = 31557600  # RFC 8461 §3.2: max_age is at most a year (and 10 digits at most)
SHORT_MAX_AGE = 86400  # RFC 8461 §3.2: "weeks or greater" is recommended; under a day defeats the cache
WELL_KNOWN = "/.well-known/mta-sts.txt"  # RFC 8461 §3.3


def policy_url(domain: str, port: int = 443) -> str:
    """The policy's URL (RFC 8461 §3.3); a port other than 443 only in a test set-up."""
    return f"https://mta-sts.{shown(domain).lower()}{'' if port == 443 else f':{port}'}{WELL_KNOWN}"


def parse_record(text: str) -> tuple[str | None, list[str]]:
    """The id of a `v=STSv1` record (RFC 8461 §3.1) and its errors; id None when the record is unusable."""
    errors: list[str] = []
    fields: dict[str, str] = {}
    for part in text.split(";")[1:]:
        if not part.strip():
            continue
        name, equals, value = (piece.strip() for piece in part.partition("="))
        if not equals or not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", name):
            errors.append(f"{part.strip()!r} is not a field=value pair (RFC 8461 §3.1)")
            continue
        fields.setdefault(name, value)
    record_id = fields.get("id")
    if record_id is None:
        errors.append("no id= field (RFC 8461 §3.1)")
    elif not _ID.match(record_id):
        errors.append(f"id={record_id} is not 1 to 32 letters and digits (RFC 8461 §3.1)")
        record_id = None
    return (record_id if not errors else None), errors


@dataclass
class Policy:
    """An MTA-STS policy's fields (RFC 8461 §3.2) and what is wrong with them."""

    version: str | None = None
    mode: str | None = None
    max_age: int | None = None
    mx: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_policy(text: str) -> Policy:
    """A policy body: `key: value` lines, CRLF or LF (RFC 8461 §3.2); unknown keys are ignored."""
    policy = Policy()
    seen: dict[str, str] = {}
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        if not line.strip():
            continue
        match = _FIELD.match(line)
        if not match:
            policy.errors.append(f"line {number} {line[:60]!r} is not a `key: value` field (RFC 8461 §3.2)")
            continue
        key, value = match[1], match[2]
        if key == "mx":
            policy.mx.append(value)
        elif key in seen:
            policy.warnings.append(f"{key} appears more than once; the first is used (RFC 8461 §3.2)")
        else:
            seen[key] = value
    _judge_fields(policy, seen)
    return policy


def _judge_fields(policy: Policy, seen: dict[str, str]) -> None:
    policy.version = seen.get("version")
    if policy.version != "STSv1":
        policy.errors.append(f"version is {policy.version or 'missing'}, not STSv1 (RFC 8461 §3.2)")
    policy.mode = seen.get("mode")
    if policy.mode not in _MODES:
        policy.errors.append(f"mode is {policy.mode or 'missing'}, not one of {', '.join(_MODES)} (RFC 8461 §3.2)")
    age = seen.get("max_age")
    if age is None or not (age.isascii() and age.isdigit() and len(age) <= 10):
        policy.errors.append(f"max_age is {age or 'missing'}, not a number of seconds (RFC 8461 §3.2)")
    else:
        policy.max_age = int(age)
        if policy.max_age > MAX_AGE_LIMIT:
            policy.errors.append(f"max_age {age} is over {MAX_AGE_LIMIT} seconds, a year (RFC 8461 §3.2)")
        elif policy.max_age < SHORT_MAX_AGE:
            policy.warnings.append(f"max_age {age} is under a day: senders keep the policy that briefly, "
                                   "weeks are recommended (RFC 8461 §3.2)")
    for pattern in policy.mx:
        if not _valid_pattern(pattern):
            policy.errors.append(f"mx: {pattern!r} is not a host name or *.domain pattern (RFC 8461 §3.2)")
    if not policy.mx and policy.mode in ("enforce", "testing"):
        policy.errors.append(f"the policy is {policy.mode} but has no mx: field (RFC 8461 §3.2)")


def _valid_pattern(pattern: str) -> bool:
    name = pattern[2:] if pattern.startswith("*.") else pattern
    labels = name.rstrip(".").split(".")
    return len(labels) >= 1 and all(_LABEL.match(label) for label in labels)


def mx_matches(host: str, pattern: str) -> bool:
    """RFC 8461 §4.1: a host matches a pattern exactly, or `*.domain` stands for one whole left-most label."""
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return host == pattern


@dataclass
class MtaStsCheck:
    """The JSON facts of an `expect_dns: {mta_sts: ...}` step."""

    domain: str
    url: str
    record: str | None = None
    record_id: str | None = None
    policy_host_addresses: list[str] = field(default_factory=list)
    status: int | None = None
    content_type: str | None = None
    body_bytes: int | None = None
    policy: Policy | None = None
    mx_hosts: list[str] = field(default_factory=list)
    mx_unmatched: list[str] = field(default_factory=list)
    mx_certificates: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def published(self) -> bool:
        """Whether the domain publishes MTA-STS at all (a record, usable or not)."""
        return self.record is not None

    def facts(self) -> dict[str, Any]:
        policy = self.policy or Policy()
        return {"domain": self.domain, "record": self.record, "id": self.record_id, "url": self.url,
                "policy_host_addresses": self.policy_host_addresses, "status": self.status,
                "content_type": self.content_type, "body_bytes": self.body_bytes,
                "version": policy.version, "mode": policy.mode, "max_age": policy.max_age, "mx": policy.mx,
                "mx_hosts": self.mx_hosts, "mx_unmatched": self.mx_unmatched,
                "mx_certificates": self.mx_certificates, "errors": self.errors,
                "warnings": self.warnings + policy.warnings}


async def find_record(check: MtaStsCheck, config: ResolverConfig, lookups: Lookups) -> None:
    """The one `v=STSv1` record at `_mta-sts.<domain>` (RFC 8461 §3.1), its id; errors noted on check."""
    name = f"_mta-sts.{check.domain}"
    try:
        texts = await lookups.query(name, "TXT", config)
    except DnsError as e:
        if not e.nxdomain:
            check.errors.append(f"MTA-STS record not checked: {e}")
        return
    records = [t.decode("utf-8", "replace") for t in texts]
    records = [r for r in records if _RECORD_VERSION.match(r)]
    if len(records) > 1:
        check.record = records[0]
        check.errors.append(f"{len(records)} v=STSv1 records at {name}; RFC 8461 §3.1 allows one, so senders "
                            "take the domain to have no policy")
        return
    if records:
        check.record = records[0]
        check.record_id, errors = parse_record(records[0])
        check.errors += [f"the record at {name}: {error}" for error in errors]


async def find_mx_hosts(check: MtaStsCheck, config: ResolverConfig, lookups: Lookups) -> None:
    """The domain's MX host names, in preference order (the names a sender matches, RFC 8461 §4.1)."""
    try:
        answers = await lookups.query(check.domain, "MX", config)
    except DnsError as e:
        check.errors.append(f"the MX hosts were not found to match against the policy: {e}")
        return
    check.mx_hosts = [shown(host).lower() for _pref, host in sorted(answers) if host not in ("", ".")]


def match_mx(check: MtaStsCheck) -> None:
    """Each MX host against the policy's patterns: a miss fails an enforce policy and warns of a testing one."""
    policy = check.policy
    if policy is None or policy.mode not in ("enforce", "testing") or not policy.mx:
        return
    check.mx_unmatched = [h for h in check.mx_hosts if not any(mx_matches(h, p) for p in policy.mx)]
    if not check.mx_unmatched:
        return
    missed = ", ".join(check.mx_unmatched)
    said = (f"the policy's mx patterns ({', '.join(policy.mx)}) do not cover the MX host"
            f"{'s' if len(check.mx_unmatched) > 1 else ''} {missed} (RFC 8461 §4.1)")
    if policy.mode == "enforce":
        check.errors.append(f"{said}: senders that enforce the policy will not deliver there")
    else:
        check.warnings.append(f"{said}: in testing mode senders only report it (RFC 8460)")
