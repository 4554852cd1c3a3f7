"""The facts an expect_delivery or expect_dsn step gathered, as (label, value) rows for HTML and JUnit.

The same rows in both, from the step's `details` (runner.results.StepResult): the mailbox (never
its password), the wait, the verdicts, the report's fields, then the delivered copy's header fields.
"""

from __future__ import annotations

from typing import Any

__all__ = ["mail_rows"]

def _verdicts(details: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    dkim = details.get("dkim")
    if dkim:
        sigs = "; ".join(f"d={s.get('d')} s={s.get('s')}: {s.get('result')}"
                         + (f" ({s['why']})" if s.get("why") else "") for s in dkim.get("signatures", []))
        rows.append(("DKIM (smtprun's own check)", dkim.get("result", "") + (f" — {sigs}" if sigs else "")))
    for r in details.get("authentication_results") or []:
        rows.append((f"Authentication-Results ({r.get('authserv_id')})",
                     f"{r.get('method')}={r.get('result')} {r.get('properties') or ''}".strip()))
    if "received_tls" in details:
        rows.append(("TLS on every SMTP hop (Received)", "yes" if details["received_tls"] else "no"))
    for a in details.get("attachments") or []:
        rows.append((f"attachment {a.get('name') or '(no name)'}",
                     f"{a.get('type')}, {a.get('size')} bytes, SHA-256 {a.get('sha256')}"))
    return rows


def _dsn(dsn: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("report subject", dsn.get("subject") or ""), ("Reporting-MTA", dsn.get("reporting_mta") or ""),
            ("Original-Envelope-Id", dsn.get("original_envelope_id") or "none")]
    for r in dsn.get("recipients", []):
        text = f"Action {r.get('action')}, Status {r.get('status')}"
        if r.get("diagnostic"):
            text += f", Diagnostic-Code {r['diagnostic']}"
        rows.append((f"recipient {r.get('final_recipient')}", text))
    return rows


def _smtp(smtp: dict[str, Any]) -> list[tuple[str, str]]:
    tls = f"yes, {smtp.get('tls_version')} {smtp.get('cipher') or ''}".strip() if smtp.get("tls") else "no"
    return [("MTA connected from", str(smtp.get("peer"))), ("MTA's EHLO name", str(smtp.get("ehlo"))),
            ("MTA used STARTTLS", tls), ("envelope", f"MAIL FROM:<{smtp.get('mail_from')}> RCPT TO:"
                                                    + ", ".join(f"<{a}>" for a in smtp.get("rcpt_to") or []))]


def mail_rows(details: dict[str, Any], headers: bool = True) -> list[tuple[str, str]]:
    """(label, value) rows; with `headers`, the delivered copy's header fields last (the HTML folds long ones)."""
    found = "found" if details.get("found") else "not found"
    rows = [("mailbox", str(details.get("mailbox", ""))),
            ("wait", f"{found} after {details.get('waited', 0):.2f}s, {details.get('looks', 0)} look(s)"
                     + (f", {details['failed_tries']} failed tries to reach the mailbox" if details.get("failed_tries")
                        else "")
                     + (", then deleted" if details.get("deleted") else ""))]
    if details.get("folder"):
        expected = details.get("expected_folder")
        rows.append(("folder", details["folder"] + (f" (expected {expected})" if expected else "")))
    if details.get("size") is not None:
        rows.append(("size", f"{details['size']} bytes" + (" (read in part)" if details.get("truncated") else "")))
    if details.get("latency") is not None:
        rows.append(("latency", f"{details['latency']:.2f}s from the server's 250 to arrival"))
    rows += _verdicts(details)
    if details.get("dsn"):
        rows += _dsn(details["dsn"])
    if details.get("smtp"):
        rows += _smtp(details["smtp"])
    if headers:
        rows += [(f"header {name}", value) for name, value in details.get("headers") or []]
    return rows
