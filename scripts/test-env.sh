#!/usr/bin/env bash
# Prepare a Debian 12 machine (as root) for the integration tests: install the servers and
# tools they use and run a Postfix on 127.0.0.1:25 with a test certificate, Exim (127.0.0.1:2525),
# OpenSMTPD (:2527), Sendmail (:2529), Courier (:2531) and qpsmtpd (:2533) in chroots, Haraka (:2535) from
# npm, and the mail loop around Postfix: Maildirs, Dovecot, OpenDKIM
# (scripts/env/; tests/support/mtas.py lists ports, users and paths). Safe to re-run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PACKAGES=(postfix swaks dnsmasq chromium chromium-driver tmux openssl mmdebstrap dovecot-imapd dovecot-pop3d opendkim
          dovecot-lmtpd prometheus curl testssl.sh
          libnet-ssleay-perl)  # swaks' TLS (--tls, --tls-cert): only Recommended, so not installed without it
MAIL_HOST=mail.smtprun.test
CERT_DIR=/etc/smtprun-test
POSTFIX_LOG=/var/log/postfix.log

log() { printf 'test-env: %s\n' "$*"; }
die() { printf 'test-env: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts Postfix)"

# --- packages -------------------------------------------------------------------------------
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update
    # Answer Postfix's install questions up front; the settings below replace them anyway.
    printf '%s\n' "postfix postfix/main_mailer_type select Local only" \
        "postfix postfix/mailname string $MAIL_HOST" | debconf-set-selections
    # No package may start its system-wide daemon (Dovecot would take 0.0.0.0:143, ...): the servers are
    # started below, on loopback, with their own configs. Docker's images have this policy already.
    policy=/usr/sbin/policy-rc.d policy_made=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && policy_made=1
        trap 'rm -f "$policy"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    if [ -n "$policy_made" ]; then rm -f "$policy"; trap - EXIT; fi
else
    log "packages already installed: ${PACKAGES[*]}"
fi

# --- test CA and server certificate ---------------------------------------------------------
cert_ok() {
    [ -s "$CERT_DIR/ca.pem" ] && [ -s "$CERT_DIR/server.pem" ] && [ -s "$CERT_DIR/server.key" ] &&
        openssl verify -CAfile "$CERT_DIR/ca.pem" "$CERT_DIR/server.pem" >/dev/null 2>&1 &&
        openssl x509 -checkend 86400 -noout -in "$CERT_DIR/server.pem" >/dev/null
}
if cert_ok; then
    log "test certificate kept: $CERT_DIR/server.pem"
else
    mkdir -p "$CERT_DIR"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=smtprun test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$MAIL_HOST" \
        -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:$MAIL_HOST,DNS:localhost,IP:127.0.0.1" \
        "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
        >"$work/server.ext"
    openssl x509 -req -days 825 -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -CAcreateserial -extfile "$work/server.ext" -out "$work/server.pem" 2>/dev/null
    install -m 0644 "$work/ca.pem" "$CERT_DIR/ca.pem"
    install -m 0644 "$work/server.pem" "$CERT_DIR/server.pem"
    install -m 0600 "$work/server.key" "$CERT_DIR/server.key"
    log "test CA and certificate for $MAIL_HOST, localhost, 127.0.0.1 written to $CERT_DIR"
fi

# --- dnsmasq (tests/integration/test_dnsmasq.py) -------------------------------------------
# Nothing is started here: each DNS test starts its own dnsmasq on a free 127.0.0.1 port and stops it
# (tests/support/dnsmasq.py). This only checks that the binary runs. The section sits before Postfix's
# so that it runs whatever Postfix does.
dnsmasq_bin=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
dnsmasq_version=$("$dnsmasq_bin" --version 2>/dev/null | sed -n 1p) || die "$dnsmasq_bin --version failed"
log "${dnsmasq_version:-dnsmasq, version unknown}: the DNS tests start their own instances on 127.0.0.1"

# --- Exim, OpenSMTPD, Sendmail, Courier, qpsmtpd: a chroot each; Haraka (scripts/env/<name>.sh) -------
# The Debian ones conflict with Postfix as packages (all are mail-transport-agent); Haraka is an npm
# package run with this machine's Node.js. Set up in parallel (the first time, about two minutes for all,
# mostly downloads), started in the background; any failing fails this script: the tests need them all.
mta_failed=()
mtas=(exim opensmtpd sendmail courier qpsmtpd haraka) mta_jobs=()
for mta in "${mtas[@]}"; do
    bash "$HERE/env/$mta.sh" & mta_jobs+=($!)
done
for i in "${!mtas[@]}"; do
    wait "${mta_jobs[$i]}" || mta_failed+=("${mtas[$i]} (scripts/env/${mtas[$i]}.sh)")
done
((${#mta_failed[@]} == 0)) || die "could not set up: ${mta_failed[*]}"

# --- Postfix --------------------------------------------------------------------------------
listen_before=$(postconf -h inet_interfaces inet_protocols | tr '\n' ' ')
# 127.0.0.1 is deliberately outside mynetworks, so a relay attempt from the tests is refused
# with 554 5.7.1 (reject_unauth_destination; Debian's defer_unauth_destination would say 454).
# Outbound, Postfix uses STARTTLS where its next hop offers it (smtp_tls_security_level = may), as
# most MTAs on the internet do: plans/outbound.yaml's listener offers it when given a certificate.
postconf -e \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "myhostname = $MAIL_HOST" \
    "mydestination = \$myhostname, localhost, smtprun.test" \
    "mynetworks = 127.0.0.2/32" \
    "smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination" \
    "maillog_file = $POSTFIX_LOG" \
    "smtpd_tls_cert_file = $CERT_DIR/server.pem" \
    "smtpd_tls_key_file = $CERT_DIR/server.key" \
    "smtpd_tls_security_level = may" \
    "smtp_tls_security_level = may" \
    "smtp_tls_loglevel = 1"
listen_after=$(postconf -h inet_interfaces inet_protocols | tr '\n' ' ')
newaliases
# Debian's service wrapper copies resolv.conf, hosts etc. into the chroot before starting.
if [ -x /usr/lib/postfix/configure-instance.sh ]; then
    /usr/lib/postfix/configure-instance.sh - >/dev/null
fi
postfix check

if postfix status >/dev/null 2>&1; then
    if [ "$listen_before" != "$listen_after" ]; then
        postfix stop >/dev/null 2>&1   # listening addresses change only on a restart
        postfix start >/dev/null 2>&1
        log "Postfix restarted"
    else
        postfix reload >/dev/null 2>&1
        log "Postfix reloaded"
    fi
else
    postfix start >/dev/null 2>&1 || die "postfix start failed; see $POSTFIX_LOG"
    log "Postfix started"
fi

banner() {
    timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/25 && IFS= read -r line <&3 &&
        printf "QUIT\r\n" >&3 && printf "%s\n" "${line%$'"'\r'"'}"' 2>/dev/null
}
postfix_up=
for _ in $(seq 50); do
    line=$(banner || true)
    if [[ "$line" == 220\ * ]]; then
        log "Postfix $(postconf -h mail_version) answers on 127.0.0.1:25: $line"
        log "log: $POSTFIX_LOG; CA for STARTTLS: $CERT_DIR/ca.pem"
        postfix_up=1
        break
    fi
    sleep 0.2
done
if [ -z "$postfix_up" ]; then
    tail -n 20 "$POSTFIX_LOG" >&2 2>/dev/null || true
    die "Postfix does not answer 220 on 127.0.0.1:25"
fi

# --- the mail loop around Postfix (scripts/env/mailbox.sh) ------------------------------------
# Users alice and bob with Maildirs, bounce/relay/discard domains, OpenDKIM milter, private Dovecot.
bash "$HERE/env/mailbox.sh" || die "could not set up the mail loop (scripts/env/mailbox.sh)"

# --- extra Postfix listeners: PROXY protocol (scripts/env/postfix-listeners.sh) -----------------
bash "$HERE/env/postfix-listeners.sh" || die "could not add the Postfix listeners (scripts/env/postfix-listeners.sh)"

# --- Prometheus scraping smtprun exporter (scripts/env/prometheus.sh; tests/integration/test_prometheus.py) ---
bash "$HERE/env/prometheus.sh" || die "could not set up Prometheus (scripts/env/prometheus.sh)"
# --- DNSSEC test zones: NSD :5310, a validating unbound :5311 (scripts/env/dnssec.sh; tests/support/dnssec.py) ---
bash "$HERE/env/dnssec.sh" || die "could not set up the DNSSEC zones (scripts/env/dnssec.sh)"
log "ready: SMTP Postfix 127.0.0.1:25, Exim :2525, OpenSMTPD :2527, Sendmail :2529, Courier :2531," \
    "qpsmtpd :2533, Haraka :2535; IMAP :143/:993, POP3 :110/:995;" \
    "OpenDKIM :8891; Prometheus :19090 (ports, users, paths: tests/support/mtas.py, tests/support/prometheus.py)"
