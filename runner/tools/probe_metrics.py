"""One probe's result as Prometheus metrics, in a registry of its own (as blackbox_exporter answers /probe).

A fresh CollectorRegistry per probe: nothing of one probe leaks into the next, and the text is
written by `prometheus_client.generate_latest`, not by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Info

from runner.plan import Plan
from runner.plan.actions import KINDS
from runner.results import PASSED, SKIPPED, CaseResult, RunResult
from runner.tools.posture_metrics import PostureGauges
from runner.tools.probe_reasons import failures

__all__ = ["probe_registry"]


def _unix(iso: Any) -> float | None:
    """A certificate date as the TLS facts write it (ISO 8601 in UTC: 2025-06-01T12:00:00Z) as Unix time."""
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if isinstance(iso, str) else None
    except ValueError:
        return None


def _version(name: str) -> str:
    """OpenSSL's "TLSv1.2" as blackbox_exporter's probe_tls_version_info labels it (Go's names): "TLS 1.2"."""
    return {"TLSv1": "TLS 1.0"}.get(name) or name.replace("TLSv", "TLS ")


class _TlsGauges:
    """The TLS session of each case, as blackbox_exporter reports its probe's: the version, the leaf certificate,
    and (beyond it, as check_ssl_cert's per-element days) the notAfter of every certificate the server sent."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.expiries: list[float] = []
        self.version = _gauge(registry, "smtprun_tls_version_info", "The TLS version negotiated, as a label",
                              ("case", "version"))
        self.leaf = _gauge(registry, "smtprun_ssl_last_chain_info", "The server certificate's facts, as labels",
                           ("case", "fingerprint_sha256", "subject", "issuer", "subjectalternative", "serialnumber"))
        self.element = _gauge(registry, "smtprun_ssl_chain_cert_expiry",
                              "The notAfter of each certificate the server sent (element 1: its own), as Unix time",
                              ("case", "element", "subject", "issuer"))

    def record(self, case: CaseResult) -> None:
        tls = case.tls or {}
        if tls.get("version"):
            self.version.labels(case.name, _version(str(tls["version"]))).set(1)
        chain = [e for e in tls.get("chain") or () if isinstance(e, dict)]
        if chain:
            leaf = chain[0]
            self.leaf.labels(case.name, leaf.get("sha256", ""), leaf.get("subject", ""), leaf.get("issuer", ""),
                             ",".join(tls.get("san") or ()), leaf.get("serial", "")).set(1)
        for position, element in enumerate(chain, 1):
            expiry = _unix(element.get("not_after"))
            if expiry is not None:
                self.element.labels(case.name, str(position), element.get("subject", ""),
                                    element.get("issuer", "")).set(expiry)
                self.expiries.append(expiry)
        leaf_expiry = _unix(tls.get("not_after"))  # a session without the chain (a report read back) has the leaf
        if not chain and leaf_expiry is not None:
            self.expiries.append(leaf_expiry)


def _gauge(registry: CollectorRegistry, name: str, text: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(name, text, labels, registry=registry)


class _MailGauges:
    """expect_delivery / expect_dsn: how long the message (or its receipt) took to show in the mailbox."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("case", "step", "action")
        self.latency = _gauge(registry, "smtprun_delivery_latency_seconds",
                              "From the server's final 250 to the message in the mailbox", labels)
        self.waited = _gauge(registry, "smtprun_mailbox_wait_seconds",
                             "How long the step waited for the message (or receipt) to show", labels)
        self.found = _gauge(registry, "smtprun_mailbox_found",
                            "Whether the message (or receipt) was found in the mailbox", labels)

    def record(self, labels: tuple[str, ...], details: dict[str, Any]) -> None:
        if isinstance(details.get("latency"), (int, float)):
            self.latency.labels(*labels).set(details["latency"])
        if isinstance(details.get("waited"), (int, float)):
            self.waited.labels(*labels).set(details["waited"])
        self.found.labels(*labels).set(1 if details.get("found") else 0)


def _cases(registry: CollectorRegistry, run: RunResult) -> list[float]:
    success = _gauge(registry, "smtprun_case_success", "Whether the case passed (1) or not (0)", ("case",))
    duration = _gauge(registry, "smtprun_case_duration_seconds", "How long the case took", ("case",))
    step_time = _gauge(registry, "smtprun_step_duration_seconds", "How long the step took (sent to judged)",
                       ("case", "step", "action"))
    code = _gauge(registry, "smtprun_step_reply_code", "The SMTP reply code the step read",
                  ("case", "step", "action"))
    mail = _MailGauges(registry)
    posture = PostureGauges(registry)
    tls = _TlsGauges(registry)
    for plan in run.plans:
        for case in plan.cases:
            success.labels(case.name).set(1 if case.status == PASSED else 0)
            duration.labels(case.name).set(case.duration)
            for step in (s for s in case.steps if s.status != SKIPPED):  # steps that never ran have no time
                labels = (case.name, str(step.index), step.action)
                step_time.labels(*labels).set(step.duration)
                if step.reply is not None:
                    code.labels(*labels).set(step.reply.code)
                kind = KINDS.get(step.action)  # None for a step that only reads a reply (`expect`)
                if step.details and kind is not None and kind.mailbox:
                    mail.record(labels, step.details)
                elif step.details and step.action == "expect_dns":
                    posture.record(case.name, str(step.index), step.details)
            tls.record(case)
    return tls.expiries


def _failures(registry: CollectorRegistry, run: RunResult | None, plan: Plan | None, timeout: float | None) -> None:
    """smtprun_probe_failure_info: one series per failed case, its labels from closed sets (probe_reasons)."""
    found = failures(run, plan, timeout)
    if not found:
        return
    info = Info("smtprun_probe_failure", "Why the case failed: the failing step (0: before the first step) and "
                "a reason class", ("case",), registry=registry)
    for failure in found:
        info.labels(failure.case).info({"step": str(failure.step), "reason": failure.reason})


def probe_registry(run: RunResult | None, duration: float, plan: Plan | None = None,
                   timeout: float | None = None) -> CollectorRegistry:
    """The metrics of one probe; `run` None when the plan did not run at all (a timeout before it began).
    `plan` (and the reply `timeout` the run used) let a failure's reason be classed."""
    registry = CollectorRegistry(auto_describe=True)
    ok = run is not None and run.status == PASSED and not run.interrupted
    _gauge(registry, "smtprun_probe_success", "Whether every case of the plan passed").set(1 if ok else 0)
    _gauge(registry, "smtprun_probe_duration_seconds", "How long the probe took").set(duration)
    if not ok:
        _failures(registry, run, plan, timeout)
    if run is None:
        return registry
    expiries = _cases(registry, run)
    if expiries:
        _gauge(registry, "smtprun_ssl_earliest_cert_expiry",
               "The earliest notAfter of the certificates the servers sent, as Unix time").set(min(expiries))
    dns = [p.dns_seconds for p in run.plans if p.dns_seconds is not None]
    if dns:
        _gauge(registry, "smtprun_dns_lookup_time_seconds", "How long the MX lookup took").set(sum(dns))
    _gauge(registry, "smtprun_probe_interrupted",
           "Whether the probe's time ran out before every case ended").set(1 if run.interrupted else 0)
    return registry
