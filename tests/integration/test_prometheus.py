"""A real Prometheus scrapes smtprun exporter, blackbox style, and its HTTP API shows what the probes found; the
alerting rules and the Grafana dashboard in docs/ are valid and name only metrics the exporter exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from tests.support.cli import ROOT
from tests.support.exporter import running_exporter, samples
from tests.support.mailplans import send_plan
from tests.support.monitoring import dead_port
from tests.support.mtas import DOVECOT, missing, require_dovecot
from tests.support.prometheus import EXPORTER_PORT, PROBE_PLAN, TARGETS, query, require_prometheus

SUCCESS = 'smtprun_probe_success{job="smtprun"}'
SMOKE = """\
name: smoke
target: {host: 127.0.0.1, port: 25, timeout: 5}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - send: QUIT
    expect: 221
"""


def test_prometheus_sees_success_for_postfix_and_failure_for_a_dead_port(tmp_path, postfix):
    require_prometheus()
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / f"{PROBE_PLAN}.yaml").write_text(SMOKE)
    with running_exporter(plans, "--allow-target", "127.0.0.1:*", port=EXPORTER_PORT):
        started = time.time()
        seen: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and set(seen) != set(TARGETS):
            time.sleep(0.5)
            fresh = f'{SUCCESS} and timestamp({SUCCESS}) > {started}'  # scraped since this exporter began
            seen = {r["metric"]["instance"]: r["value"][1] for r in query(fresh)}
        up = {r["metric"]["instance"]: r["value"][1] for r in query('up{job="smtprun"}')}
    assert seen == {"127.0.0.1:25": "1", "127.0.0.1:9": "0"}
    assert up == {"127.0.0.1:25": "1", "127.0.0.1:9": "1"}  # both scrapes answered; the probe failed, not the scrape


RULES = ROOT / "docs" / "prometheus-alerts.yml"
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
GRAFANA_VARIABLES = {"$job": "smtp", "$exporter_job": "smtprun_exporter", "$instance": ".*", "$__rate_interval": "1m"}
FAILING_NOW = "smtprun_probe_failure_info and on (job, instance) (smtprun_probe_success == 0)"  # monitoring.md
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "offset", "Inf", "NaN"}


RULES_TEST = """\
rule_files: ["{rules}"]
tests:
  - interval: 1m
    input_series:
      - series: 'smtprun_probe_success{{job="smtp",instance="mx1.example.com:25"}}'
        values: '0x10'
      - series: 'smtprun_probe_failure_info{{job="smtp",instance="mx1.example.com:25",case="T",step="3",reason="tls"}}'
        values: '1x10'
      - series: 'smtprun_probe_success{{job="smtp",instance="mx2.example.com:25"}}'
        values: '0 0 0 1 0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 7m
        alertname: SmtpProbeFailing
        exp_alerts:
          - exp_labels: {{severity: critical, job: smtp, instance: "mx1.example.com:25"}}
            exp_annotations:
              summary: "SMTP probe of mx1.example.com:25 is failing"
              description: "case 'T' failed at step 3: tls. "
"""


def metric_names(expression: str) -> set[str]:
    """The metrics a PromQL expression reads: its names less strings, label matchers, ranges, label lists,
    functions and keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', "", expression)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    return {m[0] for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text)
            if m[0] not in PROMQL_WORDS and not text[m.end():].lstrip().startswith("(")}


def documented_rules() -> str:
    """The alerting rule docs/monitoring.md shows as an example."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs/monitoring.md").read_text(), re.S)
    found = [b for b in blocks if b.startswith("groups:")]
    assert len(found) == 1, "docs/monitoring.md shows one alerting rule file"
    return found[0]


def rule_expressions(text: str) -> list[str]:
    """Each rule's expr, and the queries its annotation templates run (printf "QUERY" ... | query)."""
    rules = [r for group in yaml.safe_load(text)["groups"] for r in group["rules"]]
    assert rules and all(set(r) >= {"alert", "expr"} for r in rules)
    queries = [q.replace("%s", ".*") for r in rules for a in r.get("annotations", {}).values()
               for q in re.findall(r'printf "([^"]+)"', a)]
    return [r["expr"] for r in rules] + queries


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert dashboard["title"] and len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    used = re.findall(r"\$\{?(\w+)", DASHBOARD.read_text())
    assert set(used) - {"__rate_interval", "__all"} <= variables, "every $variable the dashboard uses is defined"
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert len(exprs) == len(panels) and all(exprs)
    exprs += [re.fullmatch(r"label_values\((.*), *\w+\)", v["definition"])[1]
              for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for name, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(name, value) for e in exprs]
    return exprs


def exported_metrics(tmp_path: Path, monkeypatch) -> set[str]:
    """Every metric name a real exporter gives: probes that pass over TLS, fail, and find a delivered
    message; and its own /metrics."""
    require_dovecot(DOVECOT)
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "tls.yaml").write_text(SMOKE.replace("  - send: QUIT", "  - starttls: {cafile: \"{{ cafile }}\"}\n"
                                                   "  - send: QUIT").replace("name: smoke", "vars: {cafile: ''}"))
    (folder / "delivery.yaml").write_text(send_plan(
        "  - expect_delivery: {mailbox: imap://alice@127.0.0.1/INBOX, password: \"{{ env.SMTPRUN_TEST_IMAP_PW }}\", "
        "cafile: /etc/smtprun-test/ca.pem, within: 15, delete: true}\n"))
    monkeypatch.setenv("SMTPRUN_TEST_IMAP_PW", DOVECOT.users["alice"])
    texts = []
    with dead_port() as port, running_exporter(folder, "--allow-target", "127.0.0.1:*", "--var",
                                               "cafile=/etc/smtprun-test/ca.pem") as exporter:
        for probe in ("tls", f"tls&target=127.0.0.1:{port}", "delivery"):
            status, _, body = exporter.get(f"/probe?plan={probe}")
            assert status == 200, body
            texts.append(body)
        texts.append(exporter.get("/metrics")[2])
    names = {name for text in texts for name, _ in samples(text)}
    assert {"smtprun_probe_failure_info", "smtprun_ssl_earliest_cert_expiry",
            "smtprun_delivery_latency_seconds"} <= names, "the probes gave what they should have"
    return names


def test_the_documented_alert_rules_and_dashboard_parse_and_name_only_exported_metrics(tmp_path, postfix,
                                                                                        monkeypatch):
    exported = exported_metrics(tmp_path, monkeypatch)
    documented = {"docs/prometheus-alerts.yml": rule_expressions(RULES.read_text()),
                  "docs/monitoring.md": rule_expressions(documented_rules()),
                  "docs/grafana-dashboard.json": dashboard_expressions()}
    for where, expressions in documented.items():
        for expression in expressions:
            names = metric_names(expression)
            assert names and names <= exported, f"{where}: {expression!r} reads {sorted(names - exported)}"
    promtool = shutil.which("promtool")
    if promtool is None:
        missing("promtool is not installed (Debian's prometheus package): run scripts/test-env.sh as root")
    (tmp_path / "documented-rules.yml").write_text(documented_rules())
    (tmp_path / "rules-test.yml").write_text(RULES_TEST.format(rules=RULES))
    for command in [("check", "rules", str(RULES)), ("check", "rules", str(tmp_path / "documented-rules.yml")),
                    ("test", "rules", str(tmp_path / "rules-test.yml"))]:
        done = subprocess.run([promtool, *command], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_prometheus_evaluates_the_documented_queries_and_sees_why_a_probe_failed(tmp_path, postfix):
    require_prometheus()
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / f"{PROBE_PLAN}.yaml").write_text(SMOKE)
    failing = 'smtprun_probe_failure_info{job="smtprun"}'
    with running_exporter(plans, "--allow-target", "127.0.0.1:*", port=EXPORTER_PORT):
        started, found = time.time(), []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not found:
            time.sleep(0.5)
            found = query(f"{failing} and timestamp({failing}) > {started}")
        expressions = rule_expressions(RULES.read_text()) + dashboard_expressions()
        assert f"`{FAILING_NOW}`" in (ROOT / "docs" / "monitoring.md").read_text()
        for expression in expressions:  # the scrape job here is "smtprun"
            query(expression.replace('"smtp"', '"smtprun"').replace("'smtp'", "'smtprun'"))  # parses and runs
        failing_now = query(FAILING_NOW)
    assert [(r["metric"]["instance"], r["metric"]["case"], r["metric"]["step"], r["metric"]["reason"])
            for r in found] == [("127.0.0.1:9", "smoke", "0", "connect")]
    assert {(r["metric"]["instance"], r["metric"]["reason"]) for r in failing_now} == {("127.0.0.1:9", "connect")}
