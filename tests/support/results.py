"""Results as the reporters receive them: one passing, one failing and one skipped case, built by hand.

The failing case carries what a hostile server could send (markup, a NUL byte) so every reporter is
tested against it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from runner.results import (
    FAILED,
    INFO,
    PASSED,
    RECV,
    SEND,
    SKIPPED,
    CaseResult,
    Event,
    PlanResult,
    RunResult,
    StepResult,
)
from runner.smtp.protocol import Reply

T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
HOSTILE = "<script>alert(1)</script>"
PLAN_SOURCE = "name: basic\ntarget: mx.example.test:25\ncases:\n  - name: greeting\n"


def reply(code: int, *lines: str) -> Reply:
    raw = b"".join(
        f"{code}{'-' if i < len(lines) - 1 else ' '}{line}\r\n".encode() for i, line in enumerate(lines)
    )
    return Reply(code, tuple(lines), raw)


def ehlo_reply(*keywords: str) -> Reply:
    return reply(250, "mx.example.test Hello", *keywords)


def passing_case(name: str = "greeting and EHLO", keywords=("PIPELINING", "SIZE 10240000", "STARTTLS")):
    steps = [
        StepResult(1, 5, "expect", "banner", expected="220", reply=reply(220, "mx.example.test ESMTP")),
        StepResult(2, 6, "send", "EHLO client.test", expected="250", reply=ehlo_reply(*keywords)),
        StepResult(3, 7, "send", "QUIT", expected="221", reply=reply(221, "Bye")),
    ]
    transcript = [
        Event(0.0, INFO, b"connected to 192.0.2.25:25"),
        Event(0.004, RECV, b"220 mx.example.test ESMTP\r\n"),
        Event(0.005, SEND, b"EHLO client.test\r\n"),
        Event(0.012, RECV, ehlo_reply(*keywords).raw),
        Event(0.013, SEND, b"QUIT\r\n"),
        Event(0.015, RECV, b"221 Bye\r\n"),
    ]
    return CaseResult(
        name, PASSED, steps, transcript, started_at=T0, duration=0.015, target="mx.example.test:25",
        peer="192.0.2.25:25", line=4, tls={"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384"},
    )


def failing_case(name: str = "relay is refused") -> CaseResult:
    rejection = reply(550, f"5.7.1 relaying denied {HOSTILE}")
    steps = [
        StepResult(1, 10, "expect", "banner", expected="220", reply=reply(220, HOSTILE)),
        StepResult(2, 11, "send", "RCPT TO:<victim@elsewhere.test>", status=FAILED, expected="250",
                   reply=rejection, reason="expected 250, got 550 (bad byte \x00 in reason)"),
        StepResult(3, 12, "send", "QUIT", status=SKIPPED),
    ]
    steps[0].captures["greeting"] = HOSTILE
    transcript = [
        Event(0.0, INFO, b"connected to 192.0.2.25:25"),
        Event(0.003, RECV, b"220 " + HOSTILE.encode() + b"\r\n"),
        Event(0.004, SEND, b"RCPT TO:<victim@elsewhere.test>\x00\r\n"),
        Event(0.021, RECV, rejection.raw),
    ]
    return CaseResult(
        name, FAILED, steps, transcript, started_at=T0, duration=0.021, target="mx.example.test:25",
        peer="192.0.2.25:25", line=9, reason="step 2: expected 250, got 550 5.7.1 relaying denied",
    )


def skipped_case() -> CaseResult:
    return CaseResult("needs TLS", SKIPPED, started_at=T0, reason="skipped: no TLS certificate given", line=14)


def make_run(cases: list[CaseResult], started: datetime = T0, file: str = "plans/basic.yaml") -> RunResult:
    plan = PlanResult("basic checks", file, PLAN_SOURCE, "mx.example.test:25", cases)
    return RunResult("0.1.0", started, [plan], duration=0.5)


def standard_run(started: datetime = T0) -> RunResult:
    return make_run([passing_case(), failing_case(), skipped_case()], started)


def fleet_run(n: int = 10_000, fail_every: int = 10) -> RunResult:
    """One plan against n targets (100 ports on each loopback address), every fail_every-th refused at RCPT."""
    cases = []
    for i in range(n):
        where = f"127.0.{1 + i // 25_000}.{1 + (i // 100) % 250}:{40000 + i % 100}"
        case = failing_case if i % fail_every == 0 else passing_case
        cases.append(replace(case(f"fleet @ {where}"), target=where, peer=where))
    return make_run(cases)
