"""The plan as the interpreter sees it: frozen objects, built once from validated data (runner.plan.build)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runner.errors import Problem
from runner.net.address import hostport

if TYPE_CHECKING:
    from runner.plan.options import MessageDkim
    from runner.smtp.proxy import ProxyHeader

__all__ = ["Case", "Include", "Plan", "Retry", "Step", "Target"]

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    host: str | None
    port: int | str  # a string is a template, e.g. "{{ port }}" from a matrix
    timeout: float = DEFAULT_TIMEOUT
    session_timeout: float | None = None
    tls: str = "none"
    verify: bool = True
    cafile: str | None = None
    server_name: str | None = None
    # the client side of implicit TLS (runner.run.tlsclient), as written: templates unrendered, paths the plan's
    cert: str | None = None
    key: str | None = None
    sni: str | bool | None = None
    min_version: str | None = None
    max_version: str | None = None
    ciphers: str | None = None
    mx: str | None = None  # a mail domain whose MX hosts are the target (RFC 5321 §5.1)
    all_mx: bool = False
    addresses: str = "first"
    nameservers: tuple[str, ...] = ()
    dns_timeout: float = 5.0
    families: tuple[str, ...] = ("ipv4", "ipv6")
    strict_replies: bool = False  # refuse reply text that is not UTF-8 instead of reading it as Latin-1
    quit_on_failure: bool = True  # after a failed step, end a session still in step with QUIT
    source: str | None = None  # the local IP address to connect from (a template allowed); None: the system's choice
    domain: str | None = None  # the plan's mail domain (its `mx:`) when a host given instead is connected to
    proxy: ProxyHeader | None = None  # a PROXY protocol header to send before the banner
    unix: str | None = None  # a UNIX-domain socket's path, connected to instead of host and port
    protocol: str = "smtp"  # or "lmtp" (RFC 2033): the plan says LHLO, and the body gets a reply per recipient

    def __str__(self) -> str:
        if self.unix and not self.host:
            return f"unix:{self.unix}"
        if self.mx and not self.host:
            return f"MX {self.mx}:{self.port}"
        host = self.host or "?"
        return hostport(host, self.port)


@dataclass(frozen=True, eq=False)
class Include:
    """One `include:` as written: every step it brings in shares this object (compared by identity),
    so its parameters are rendered once per case however many steps use them."""

    params: dict[str, Any]  # the include's `vars:` (win over the plan's)
    defaults: dict[str, Any]  # the included file's own `vars:` (lose to the plan's)


@dataclass(frozen=True)
class Step:
    index: int  # 1-based within its case
    line: int
    action: str  # one of runner.plan.stepbuilder.ACTIONS, or "expect" for a step that only reads a reply
    value: Any  # the action's argument as written (templates unrendered)
    expect: Any = None  # the expectation as written; None: read no reply
    capture: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    name: str | None = None
    when: str | None = None
    continue_on_failure: bool = False
    include: Include | None = None  # the include that brought the step in, if any
    file: str | None = None  # the file the step is written in (an included file, or the plan)
    expected: str | None = None  # `expect` in words, worked out once; None where it holds a template (rendered per run)
    shown: str = ""  # what it does, in a few words, before it has run (running it may render a better one)
    wire_template: str | None = None  # its text for the wire (ActionKind.large) when a template: rendered as it starts
    dkim: MessageDkim | None = None  # `dkim:` beside `data:` or `data_file:`: sign the body (the key path resolved)

    @property
    def reads_reply(self) -> bool:
        return self.expect is not None or bool(self.capture)


@dataclass(frozen=True)
class Retry:
    times: int
    delay: float = 0.0


@dataclass(frozen=True)
class Case:
    name: str
    line: int
    steps: tuple[Step, ...]
    finally_steps: tuple[Step, ...] = ()
    when: str | None = None
    retry: Retry | None = None
    continue_on_failure: bool = False
    timeout: float | None = None
    vars: dict[str, Any] = field(default_factory=dict)  # this case's matrix values
    quit_on_failure: bool | None = None  # None: the target's


@dataclass(frozen=True)
class Plan:
    name: str
    file: str
    source: str
    target: Target
    vars: dict[str, Any]
    secrets: tuple[str, ...]
    cases: tuple[Case, ...]
    sequential: bool = False
    late_vars: tuple[str, ...] = ()  # vars whose templates name a matrix value: rendered per case, in this order
    warnings: tuple[Problem, ...] = ()  # what validation found that runs as written, but may be refused
    names: frozenset[str] = frozenset()  # every variable the plan declares, or reads in a template: what --var may set
