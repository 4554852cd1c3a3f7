"""A step type's options as typed, frozen objects, made once from the validated YAML (runner.plan.stepbuilder).

Each step type whose value is more than one string or number has a class here, named by its row in
runner.plan.actions (`ActionKind.options`, by name: this module is imported only when a plan has such a step);
its fields are the schema's keys for that step type (tests/unit/test_actions.py checks they agree). Strings
stay as written: a template is rendered as its step runs (runner.run.steprender), so a field holds the template,
not its text. A step type without a class keeps its value as the schema gave it: a string (`send:`, `data:`,
`data_file:`), a size in bytes (`data_size:`, settled by the builder), seconds (`sleep:`), or `true` (`close:`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

__all__ = ["Attributes", "Auth", "Bdat", "ClientTls", "ExpectTls", "Message", "MessageAttachment", "MessageDkim",
           "Options", "Pause", "Pipeline", "PipelineItem", "Raw", "Smuggle", "TlsOffer"]


class Options:
    """What every options class shares: made from the step's validated mapping, key by key."""

    KEYS: ClassVar[dict[str, str]] = {}  # a YAML key that is not a Python name -> its field
    KEYED: ClassVar[bool] = True  # its fields are the schema's keys (False: read another way, see its `read`)

    @classmethod
    def read(cls, value: Any) -> Any:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        given = {cls.KEYS.get(key, key): item for key, item in value.items()}
        unknown = set(given) - names
        if unknown:  # the schema let through a key this class has no field for: a defect, said as such
            raise TypeError(f"{cls.__name__} has no option {', '.join(sorted(unknown))}")
        return cls(**given)

    @classmethod
    def schema_keys(cls) -> frozenset[str] | None:
        """The YAML keys this class reads (for the test against the schema); None when not read key by key."""
        if not cls.KEYED:
            return None
        back = {v: k for k, v in cls.KEYS.items()}
        return frozenset(back.get(f.name, f.name) for f in fields(cls))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Auth(Options):
    """`auth:` (RFC 4954): the mechanism and the credentials, templates allowed (the password is a secret)."""

    mechanism: str
    username: str
    password: str


@dataclass(frozen=True)
class Smuggle(Options):
    """`smuggle:`: the broken ending tried, the envelope (from the variables `sender` and `rcpt` unless given),
    and the seconds between the pieces."""

    ending: str
    sender: str
    rcpt: str
    pause: float


@dataclass(frozen=True)
class Bdat(Options):
    """`bdat:` (RFC 3030): the body, and the bytes per chunk (None: one chunk)."""

    data: str
    chunk_size: int | None = None

    @classmethod
    def read(cls, value: Any) -> Bdat:
        return cls(value) if isinstance(value, str) else super().read(value)


@dataclass(frozen=True)
class PipelineItem(Options):
    """One command of a `pipeline:` group and what its reply must be (`expect` None: any)."""

    KEYS: ClassVar[dict[str, str]] = {"send": "line"}

    line: str
    expect: Any = None


@dataclass(frozen=True)
class Pipeline(Options):
    """`pipeline:` (RFC 2920): commands sent in one write, then their replies judged in order."""

    KEYED: ClassVar[bool] = False

    items: tuple[PipelineItem, ...]

    @classmethod
    def read(cls, value: Any) -> Pipeline:
        return cls(tuple(PipelineItem.read(item) for item in value))


@dataclass(frozen=True)
class Pause:
    """A pause between the pieces of a `raw:` list."""

    seconds: float


@dataclass(frozen=True)
class Raw(Options):
    """`raw:` written as a list: bytes sent piece by piece, each its own write, with pauses between
    (one string stays a string)."""

    KEYED: ClassVar[bool] = False

    pieces: tuple[str | Pause, ...]

    @classmethod
    def read(cls, value: Any) -> str | Raw:
        if isinstance(value, str):
            return value  # one string: sent in one write, like `send:` but with nothing added
        return cls(tuple(Pause(item["pause"]) if isinstance(item, dict) else item for item in value))


@dataclass(frozen=True)
class Attributes(Options):
    """`xclient:` and `xforward:`: attribute names (as written, e.g. ADDR, NAME) and values, in order."""

    KEYED: ClassVar[bool] = False

    items: tuple[tuple[str, Any], ...]

    @classmethod
    def read(cls, value: Any) -> Attributes:
        return cls(tuple(value.items()))


@dataclass(frozen=True)
class MessageAttachment(Options):
    """A file a `message:` attaches: its path (resolved against the plan by the builder when written out), the
    name the recipient sees and its type ("": the file's own name, a type guessed from the name)."""

    path: str
    name: str = ""
    type: str = ""


@dataclass(frozen=True)
class MessageDkim(Options):
    """A DKIM signature (RFC 6376): d=, s= and the PEM private key file; `message:`'s `dkim:`, and the step's own
    `dkim:` beside `data:` or `data_file:` (runner.plan.types.Step.dkim)."""

    domain: str
    selector: str
    key: str


@dataclass(frozen=True)
class Message(Options):
    """`message:`: a message built from parts (runner.mail.compose); `text` or `html` None where not given."""

    KEYS: ClassVar[dict[str, str]] = {"from": "sender"}

    sender: str = ""
    to: tuple[str, ...] = ()
    subject: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    html: str | None = None
    attachments: tuple[MessageAttachment, ...] = ()
    dkim: MessageDkim | None = None

    @classmethod
    def read(cls, value: Any) -> Message:
        given = dict(value)
        if "to" in given:
            given["to"] = (given["to"],) if isinstance(given["to"], str) else tuple(given["to"])
        if "headers" in given:
            given["headers"] = tuple(given["headers"].items())
        given["attachments"] = tuple(MessageAttachment.read(item) for item in given.get("attachments") or ())
        if "dkim" in given:
            given["dkim"] = MessageDkim.read(given["dkim"])
        return super().read(given)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ClientTls(Options):
    """`starttls:`, and the target's own keys for `tls: implicit`: the client side of a TLS handshake (RFC 3207).
    Paths are relative to the plan; strings but the versions are templates."""

    verify: bool = True
    cafile: str | None = None
    server_name: str | None = None
    min_version: str | None = None  # TLSv1 ... TLSv1.3
    max_version: str | None = None
    cert: str | None = None  # a client certificate (PEM), with its key
    key: str | None = None
    sni: str | bool | None = None  # a name to send, or False for none; None: the name checked
    ciphers: str | None = None  # an OpenSSL cipher list (TLS 1.2 and older)

    @classmethod
    def read(cls, value: Any) -> ClientTls:
        return super().read(value or {})  # `starttls:` with nothing under it: the defaults


@dataclass(frozen=True)
class TlsOffer(Options):
    """`tls_offer:`: the rules an offer is judged by. A key left out (None) is the profile's, or the defaults
    (runner.run.tlspolicy)."""

    profile: str | None = None
    versions: tuple[str, ...] | None = None
    forbid: tuple[str | None, ...] | None = None  # YAML reads a bare NULL as null
    min_key_bits: int | None = None
    cafile: str | None = None
    name: str | None = None
    groups: tuple[str, ...] | None = None
    min_ecdh_bits: int | None = None
    min_dh_bits: int | None = None
    secure_renegotiation: str | None = None  # required | warn
    compression: str | None = None  # forbidden | warn
    ocsp_stapling: str | None = None  # required | warn

    @classmethod
    def read(cls, value: Any) -> TlsOffer:
        given = {key: tuple(item) if isinstance(item, list) else item for key, item in (value or {}).items()}
        return super().read(given)


@dataclass(frozen=True)
class ExpectTls(Options):
    """`expect_tls:`: checks on the TLS session in force; each given (not None) must hold."""

    min_version: str | None = None
    max_version: str | None = None
    days_valid: int | None = None
    name: str | None = None  # a template
    verified: bool | None = None
    tlsa: Any = None  # "match", or {rollover: warn | required} (runner.run.dane)

    def given(self) -> dict[str, Any]:
        """The checks the plan gave, in the schema's order, as written."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
