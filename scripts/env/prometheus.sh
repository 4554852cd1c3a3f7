#!/usr/bin/env bash
# A Prometheus (Debian's `prometheus` package) on 127.0.0.1:19090 for tests/integration/test_prometheus.py.
# It scrapes `smtprun exporter` in the blackbox_exporter relabelling style: each static target becomes the
# probe's target= parameter and the instance label, and every scrape goes to the exporter on 127.0.0.1:19465,
# which the test starts (nothing answers there otherwise: those scrapes just fail). Scrapes every second.
# Its own config and data folder, not the package's; the package's daemon is never started. Safe to re-run.
set -euo pipefail
ENV_NAME=prometheus
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"

LISTEN=127.0.0.1:19090      # tests/support/prometheus.py says the same
EXPORTER=127.0.0.1:19465
CONFIG=/etc/smtprun-test/prometheus.yml
DATA=/var/lib/smtprun-prometheus
LOG=/var/log/smtprun-prometheus.log
PIDFILE=/run/smtprun-prometheus.pid

if ! command -v prometheus >/dev/null; then
    log "installing prometheus"
    policy=/usr/sbin/policy-rc.d policy_made=
    if [ ! -e "$policy" ]; then   # the package must not start its own daemon on 0.0.0.0:9090
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && policy_made=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null
    [ -n "$policy_made" ] && rm -f "$policy"
fi

mkdir -p "$(dirname "$CONFIG")" "$DATA"
cat >"$CONFIG.new" <<YAML
# Written by scripts/env/prometheus.sh: smtprun exporter probes, blackbox style.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: smtprun
    metrics_path: /probe
    params:
      plan: [smoke]
    static_configs:
      - targets: ["127.0.0.1:25", "127.0.0.1:9"]   # the test Postfix, and a port where nothing listens
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: $EXPORTER
YAML
promtool check config "$CONFIG.new" >/dev/null || die "promtool rejects $CONFIG.new"
changed=1
if [ -f "$CONFIG" ] && cmp -s "$CONFIG" "$CONFIG.new"; then changed=; fi
mv "$CONFIG.new" "$CONFIG"

ready() { curl -fsS --max-time 2 "http://$LISTEN/-/ready" >/dev/null 2>&1; }
pid=$(cat "$PIDFILE" 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ready; then
    if [ -n "$changed" ]; then kill -HUP "$pid" && log "config reloaded"; fi
else
    setsid prometheus --config.file="$CONFIG" --storage.tsdb.path="$DATA" --storage.tsdb.retention.time=1d \
        --web.listen-address="$LISTEN" >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq 100); do ready && break; sleep 0.2; done
    ready || { tail -n 20 "$LOG" >&2; die "Prometheus does not answer on $LISTEN; see $LOG"; }
fi
log "$(prometheus --version 2>&1 | sed -n 1p) answers on $LISTEN, scraping smtprun exporter at $EXPORTER every 1s"
