#!/usr/bin/env bash
# Extra smtpd listeners of the host's Postfix (scripts/test-env.sh configures it), each a master.cf entry
# with -o overrides on a loopback port of its own (tests/support/mtas.py names them):
# - 127.0.0.1:2541 takes a PROXY protocol header (v1 or v2) before its banner, as behind a load balancer
#   (smtpd_upstream_proxy_protocol = haproxy); inet_protocols=all, or an IPv6 header gets "421 ... IPv6
#   support is disabled".
# - 127.0.0.1:2545 the same header, then TLS from the first byte (smtpd_tls_wrappermode, as on 465).
# - 127.0.0.1:2543 trusts loopback clients with XCLIENT and XFORWARD (smtpd_authorized_xclient_hosts,
#   smtpd_authorized_xforward_hosts); the listener on :25 refuses both with 550.
# - 127.0.0.1:2547 asks for a client certificate (smtpd_tls_ask_ccert) and relays for the test client
#   certificate alone (permit_tls_clientcerts; its SHA-256 fingerprint in relay_clientcerts), as relays
#   that trust their clients by certificate do; anyone else gets "554 5.7.1 Relay access denied".
#   smtpd_reject_unlisted_recipient=no, or the error default_transport refuses the relayed recipient. It
#   refuses TLS 1.0 and 1.1 (smtpd_tls_protocols), which the listener on :25 still takes.
#   :2549 the same with TLS from the first byte. The certificate, its key and the CA that issued it are
#   $CERT_DIR/client.pem, client.key, client-ca.pem (made here, kept while valid).
# Run as root, after test-env.sh; safe to re-run: Postfix is reloaded only when an entry changed.
set -euo pipefail
ENV_NAME=postfix-listeners
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

PROXY_PORT=2541
XCLIENT_PORT=2543
PROXY_TLS_PORT=2545
CLIENTCERT_PORT=2547
CLIENTCERT_TLS_PORT=2549
CLIENT_CERTS=/etc/postfix/smtprun_relay_clientcerts

[ "$(id -u)" -eq 0 ] || die "must run as root"

# The test client certificate, issued by a CA of its own (the server CA's key is not kept).
client_ok() {
    [ -s "$CERT_DIR/client-ca.pem" ] && [ -s "$CERT_DIR/client.pem" ] && [ -s "$CERT_DIR/client.key" ] &&
        openssl verify -CAfile "$CERT_DIR/client-ca.pem" "$CERT_DIR/client.pem" >/dev/null 2>&1 &&
        openssl x509 -checkend 86400 -noout -in "$CERT_DIR/client.pem" >/dev/null
}
if ! client_ok; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=smtprun test client CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$work/client-ca.key" -out "$work/client-ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=client.smtprun.test" \
        -keyout "$work/client.key" -out "$work/client.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=clientAuth" "subjectAltName=DNS:client.smtprun.test" >"$work/client.ext"
    openssl x509 -req -days 825 -in "$work/client.csr" -CA "$work/client-ca.pem" -CAkey "$work/client-ca.key" \
        -CAcreateserial -extfile "$work/client.ext" -out "$work/client.pem" 2>/dev/null
    install -m 0644 "$work/client-ca.pem" "$CERT_DIR/client-ca.pem"
    install -m 0644 "$work/client.pem" "$CERT_DIR/client.pem"
    install -m 0600 "$work/client.key" "$CERT_DIR/client.key"
    log "test client certificate written to $CERT_DIR/client.pem"
fi
fingerprint=$(openssl x509 -noout -fingerprint -sha256 -in "$CERT_DIR/client.pem" | cut -d= -f2)
printf '%s client.smtprun.test\n' "$fingerprint" | put_text "$CLIENT_CERTS" 0644 0:0
CLIENTCERT_OPTIONS="-o smtpd_tls_ask_ccert=yes -o smtpd_tls_CAfile=$CERT_DIR/client-ca.pem \
-o smtpd_tls_fingerprint_digest=sha256 -o relay_clientcerts=texthash:$CLIENT_CERTS \
-o smtpd_relay_restrictions=permit_tls_clientcerts,reject_unauth_destination -o smtpd_reject_unlisted_recipient=no \
-o smtpd_tls_protocols=>=TLSv1.2"

entries=(
    "127.0.0.1:$PROXY_PORT inet n - y - - smtpd -o syslog_name=postfix/proxy -o smtpd_upstream_proxy_protocol=haproxy -o inet_protocols=all"
    "127.0.0.1:$PROXY_TLS_PORT inet n - y - - smtpd -o syslog_name=postfix/proxy-tls -o smtpd_upstream_proxy_protocol=haproxy -o smtpd_tls_wrappermode=yes"
    "127.0.0.1:$XCLIENT_PORT inet n - y - - smtpd -o syslog_name=postfix/xclient -o smtpd_authorized_xclient_hosts=127.0.0.0/8 -o smtpd_authorized_xforward_hosts=127.0.0.0/8"
    "127.0.0.1:$CLIENTCERT_PORT inet n - y - - smtpd -o syslog_name=postfix/clientcert $CLIENTCERT_OPTIONS"
    "127.0.0.1:$CLIENTCERT_TLS_PORT inet n - y - - smtpd -o syslog_name=postfix/clientcert-tls -o smtpd_tls_wrappermode=yes $CLIENTCERT_OPTIONS"
)
changed=$CHANGED  # a new relay_clientcerts is read on reload
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
for port in "$PROXY_PORT" "$PROXY_TLS_PORT" "$XCLIENT_PORT" "$CLIENTCERT_PORT" "$CLIENTCERT_TLS_PORT"; do
    for _ in $(seq 50); do
        port_busy "$port" && break
        sleep 0.1
    done
    port_busy "$port" || die "Postfix does not listen on 127.0.0.1:$port; see /var/log/postfix.log"
done
log "Postfix listens on 127.0.0.1:$PROXY_PORT for PROXY protocol v1/v2 headers (:$PROXY_TLS_PORT with TLS after" \
    "them), on :$XCLIENT_PORT for XCLIENT/XFORWARD, on :$CLIENTCERT_PORT (:$CLIENTCERT_TLS_PORT implicit TLS) relaying" \
    "for the client certificate $CERT_DIR/client.pem"
