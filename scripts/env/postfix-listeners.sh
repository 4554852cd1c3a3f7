#!/usr/bin/env bash
# Extra smtpd listeners of the host's Postfix (scripts/test-env.sh configures it), each a master.cf entry
# with -o overrides on a loopback port of its own (tests/support/mtas.py names them):
# - 127.0.0.1:2541 takes a PROXY protocol header (v1 or v2) before its banner, as behind a load balancer
#   (smtpd_upstream_proxy_protocol = haproxy); inet_protocols=all, or an IPv6 header gets "421 ... IPv6
#   support is disabled".
# - 127.0.0.1:2545 the same header, then TLS from the first byte (smtpd_tls_wrappermode, as on 465).
# - 127.0.0.1:2543 trusts loopback clients with XCLIENT and XFORWARD (smtpd_authorized_xclient_hosts,
#   smtpd_authorized_xforward_hosts); the listener on :25 refuses both with 550.
# Run as root, after test-env.sh; safe to re-run: Postfix is reloaded only when an entry changed.
set -euo pipefail
ENV_NAME=postfix-listeners
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

PROXY_PORT=2541
XCLIENT_PORT=2543
PROXY_TLS_PORT=2545

entries=(
    "127.0.0.1:$PROXY_PORT inet n - y - - smtpd -o syslog_name=postfix/proxy -o smtpd_upstream_proxy_protocol=haproxy -o inet_protocols=all"
    "127.0.0.1:$PROXY_TLS_PORT inet n - y - - smtpd -o syslog_name=postfix/proxy-tls -o smtpd_upstream_proxy_protocol=haproxy -o smtpd_tls_wrappermode=yes"
    "127.0.0.1:$XCLIENT_PORT inet n - y - - smtpd -o syslog_name=postfix/xclient -o smtpd_authorized_xclient_hosts=127.0.0.0/8 -o smtpd_authorized_xforward_hosts=127.0.0.0/8"
)
changed=0
for entry in "${entries[@]}"; do
    read -r service type _ <<<"$entry"
    # postconf -M prints an entry with its fields padded; compare with the padding squeezed out
    if [ "$(postconf -M "$service/$type" 2>/dev/null | tr -s ' ')" != "$entry" ]; then
        postconf -M "$service/$type=$entry"
        changed=1
    fi
done
if ((changed)); then
    postfix check
    postfix reload >/dev/null 2>&1 || die "postfix reload failed; see /var/log/postfix.log"
fi
for port in "$PROXY_PORT" "$PROXY_TLS_PORT" "$XCLIENT_PORT"; do
    for _ in $(seq 50); do
        port_busy "$port" && break
        sleep 0.1
    done
    port_busy "$port" || die "Postfix does not listen on 127.0.0.1:$port; see /var/log/postfix.log"
done
log "Postfix listens on 127.0.0.1:$PROXY_PORT for PROXY protocol v1/v2 headers (:$PROXY_TLS_PORT with TLS after" \
    "them), on :$XCLIENT_PORT for XCLIENT/XFORWARD"
