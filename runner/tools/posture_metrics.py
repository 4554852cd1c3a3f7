"""A domain's posture, where a number helps an alert: the facts an `expect_dns` step keeps in its details
(runner/run/posture.py, stspolicy.py, senderposture.py) as gauges of the probe's registry.

SPF's lookup counts (alert before a record reaches RFC 7208 §4.6.4's limit of 10), each DKIM key's size (RFC 8301
§3.2), an MTA-STS policy's max_age (RFC 8461 §3.2: how long senders cache it) and each blocklist lookup's verdict.
A check that found no number (no record, a failed lookup) leaves its gauge out rather than writing a zero.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Gauge

__all__ = ["PostureGauges"]


def _number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class PostureGauges:
    """The numbers of each expect_dns step's SPF, DKIM, MTA-STS and blocklist facts."""

    def __init__(self, registry: CollectorRegistry) -> None:
        where = ("case", "step", "domain")

        def gauge(name: str, text: str, labels: tuple[str, ...] = where) -> Gauge:
            return Gauge(name, text, labels, registry=registry)

        self.spf_lookups = gauge("smtprun_spf_dns_lookups",
                                 "DNS lookups the domain's SPF record causes, its whole include tree (limit 10)")
        self.spf_void = gauge("smtprun_spf_void_lookups",
                              "Lookups of the SPF tree that found nothing (limit 2, RFC 7208 §4.6.4)")
        self.dkim_bits = gauge("smtprun_dkim_key_bits", "The size of each named selector's DKIM key, in bits",
                               (*where, "selector", "key_type"))
        self.sts_max_age = gauge("smtprun_mta_sts_max_age_seconds",
                                 "The MTA-STS policy's max_age: how long senders may cache it")
        self.listed = gauge("smtprun_dnsbl_listed", "Whether the address is listed in the blocklist zone (1) or "
                            "not (0); a refused query or a failed lookup has no value", ("case", "step", "address",
                                                                                         "zone"))

    def record(self, case: str, step: str, details: dict[str, Any]) -> None:
        """Every number of one step's details; the parts it lacks are skipped."""
        spf = details.get("spf") or {}
        if _number(spf.get("lookups")):
            self.spf_lookups.labels(case, step, str(spf.get("domain", ""))).set(spf["lookups"])
        if _number(spf.get("void_lookups")):
            self.spf_void.labels(case, step, str(spf.get("domain", ""))).set(spf["void_lookups"])
        dkim = details.get("dkim") or {}
        for key in dkim.get("keys") or ():
            if _number(key.get("bits")):
                self.dkim_bits.labels(case, step, str(dkim.get("domain", "")), str(key.get("selector", "")),
                                      str(key.get("key_type") or "")).set(key["bits"])
        sts = details.get("mta_sts") or {}
        if _number(sts.get("max_age")):
            self.sts_max_age.labels(case, step, str(sts.get("domain", ""))).set(sts["max_age"])
        for lookup in (details.get("dnsbl") or {}).get("lookups") or ():
            if not lookup.get("refused") and not lookup.get("error"):
                self.listed.labels(case, step, str(lookup.get("address", "")),
                                   str(lookup.get("zone", ""))).set(1 if lookup.get("listed") else 0)
