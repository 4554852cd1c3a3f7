#!/usr/bin/env bash
# The closed mail loop on the host, around the Postfix on 127.0.0.1:25 (scripts/test-env.sh configures
# the rest of it; run this after it, as root; safe to re-run, restarts only what does not answer):
# - Unix users alice and bob (passwords in lib.sh); Postfix delivers local mail to ~/Maildir/;
# - domains that Postfix accepts and then: bounces (next hop smtp-sink on 127.0.0.1:2599 refuses RCPT,
#   so a "failed" DSN goes back to the sender), relays to [127.0.0.1]:2600 (where a test listens),
#   discards (discard: transport), or defers (next hop smtp-sink on 127.0.0.1:2598 answers RCPT with 4xx:
#   kept in the queue and retried, never delivered, no DSN unless NOTIFY=DELAY; a retry: or error:
#   transport would not do for these, Postfix refuses such a recipient already at RCPT);
# - OpenDKIM milter on 127.0.0.1:8891 signing From: *@signed.smtprun.test (selector "test"), verifying
#   mail from non-internal clients; the TXT record data in /etc/smtprun-test/dkim.txt;
# - a private Dovecot (IMAP 143, IMAPS 993, POP3 110, POP3S 995, LMTP 2424 on 127.0.0.1, LMTP on the UNIX socket
#   /run/smtprun-dovecot/lmtp) reading and delivering into those Maildirs.
set -euo pipefail
ENV_NAME=mailbox
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

MARK="smtprun test mailbox"   # the GECOS field of the users made here; others of the same name are left alone
BOUNCE_DOMAIN=bounce.smtprun.test
RELAY_DOMAIN=relay.smtprun.test
RELAY_PORT=2600
DISCARD_DOMAIN=discard.smtprun.test
SINK_PORT=2599
SINK_LOG=/var/log/smtprun-smtp-sink.log
DEFER_DOMAIN=defer.smtprun.test
DEFER_PORT=2598
DEFER_LOG=/var/log/smtprun-defer-sink.log
DKIM_DOMAIN=signed.smtprun.test
DKIM_SELECTOR=test
DKIM_DIR=$CERT_DIR/dkim
DKIM_PORT=8891
DKIM_LOG=/var/log/smtprun-opendkim.log
DOVECOT_CONF=$CERT_DIR/dovecot/dovecot.conf
DOVECOT_LOG=/var/log/smtprun-dovecot.log
TRANSPORT_MAP=/etc/postfix/smtprun_transport

[ "$(id -u)" -eq 0 ] || die "must run as root"

# --- users ----------------------------------------------------------------------------------
for spec in "${TEST_USERS[@]}"; do
    user=${spec%%:*} password=${spec#*:}
    if ! getent passwd "$user" >/dev/null; then
        useradd --create-home --shell /usr/sbin/nologin --comment "$MARK" "$user"
        log "user $user created"
    elif [ "$(getent passwd "$user" | cut -d: -f5)" != "$MARK" ]; then
        die "a user $user exists that this script did not make (GECOS is not '$MARK'): not touching it"
    fi
    hash=$(getent shadow "$user" | cut -d: -f2)
    salt=$(cut -d'$' -f3 <<<"$hash")
    if [[ "$hash" != '$6$'* ]] || [ "$(openssl passwd -6 -salt "$salt" "$password")" != "$hash" ]; then
        printf "%s:%s\n" "$user" "$(openssl passwd -6 "$password")" | chpasswd --encrypted
        log "password of $user set"
    fi
done

# --- next hops that refuse every RCPT: smtp-sink, 5xx (bounce) and 4xx (defer) ----------------------
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$SMTP_SINK" ] || die "smtp-sink missing (it comes with the postfix package)"
# sink NAME HOSTNAME PORT LOG REFUSAL: an smtp-sink (tracked as NAME) refusing every RCPT (-f: 5xx, -r: 4xx)
sink() {
    local name=$1 host=$2 port=$3 logfile=$4 refusal=$5
    if tracked_running "$name" "$SMTP_SINK" && answers 127.0.0.1 "$port" "220 $host*"; then
        log "$name already answers on 127.0.0.1:$port"
        return
    fi
    stop_tracked "$name" "$SMTP_SINK"
    ! port_busy "$port" || die "127.0.0.1:$port is taken by another process"
    start_tracked "$name" "$logfile" "$SMTP_SINK" -u nobody -h "$host" "$refusal" rcpt 127.0.0.1:"$port" 16
    wait_for 127.0.0.1 "$port" "220 $host*" 10 "$logfile"
}
sink smtp-sink sink.smtprun.test "$SINK_PORT" "$SINK_LOG" -f
sink defer-sink defer-sink.smtprun.test "$DEFER_PORT" "$DEFER_LOG" -r

# --- OpenDKIM ---------------------------------------------------------------------------------
OPENDKIM=$(command -v opendkim || echo /usr/sbin/opendkim)
[ -x "$OPENDKIM" ] || die "opendkim missing (apt-get install opendkim)"
CHANGED=0
install -d -m 0750 -o root -g opendkim "$DKIM_DIR"
if ! openssl pkey -in "$DKIM_DIR/$DKIM_SELECTOR.private" -noout 2>/dev/null; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$DKIM_DIR/$DKIM_SELECTOR.private" 2>/dev/null
    log "DKIM key made: $DKIM_DIR/$DKIM_SELECTOR.private"
    CHANGED=1
fi
chown opendkim:opendkim "$DKIM_DIR/$DKIM_SELECTOR.private"
chmod 0600 "$DKIM_DIR/$DKIM_SELECTOR.private"
# The TXT record's data (RFC 6376 s 3.6.1), one line; a DNS server must split it into strings of at most
# 255 octets (tests/support/mtas.py does, for dnsmasq).
txt="v=DKIM1; k=rsa; p=$(openssl pkey -in "$DKIM_DIR/$DKIM_SELECTOR.private" -pubout -outform DER | base64 -w0)"
printf '%s\n' "$txt" | put_text "$CERT_DIR/dkim.txt" 0644 0:0
printf '%s._domainkey.%s %s\n' "$DKIM_SELECTOR" "$DKIM_DOMAIN" "$txt" | put_text "$DKIM_DIR/keys" 0640 "0:$(getent group opendkim | cut -d: -f3)"
put_file "$HERE/opendkim.conf" "$CERT_DIR/opendkim.conf" 0644 0:0
if ((CHANGED == 0)) && tracked_running opendkim "$OPENDKIM" && port_busy "$DKIM_PORT"; then
    log "OpenDKIM already listens on 127.0.0.1:$DKIM_PORT"
else
    stop_tracked opendkim "$OPENDKIM"
    ! port_busy "$DKIM_PORT" || die "127.0.0.1:$DKIM_PORT is taken by another process"
    "$OPENDKIM" -n -x "$CERT_DIR/opendkim.conf" || die "OpenDKIM refuses $HERE/opendkim.conf"
    start_tracked opendkim "$DKIM_LOG" "$OPENDKIM" -f -x "$CERT_DIR/opendkim.conf"
    for _ in $(seq 50); do
        port_busy "$DKIM_PORT" && break
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.2
    done
    port_busy "$DKIM_PORT" || { tail -n 20 "$DKIM_LOG" >&2; die "OpenDKIM does not listen on 127.0.0.1:$DKIM_PORT"; }
    log "OpenDKIM listens on 127.0.0.1:$DKIM_PORT (signs From: *@$DKIM_DOMAIN, selector $DKIM_SELECTOR)"
fi

# --- Postfix: Maildir delivery, the bounce/relay/discard domains, the milter ----------------------
before=$(postconf -n; cat "$TRANSPORT_MAP" 2>/dev/null || true)
printf '%s\n' "$BOUNCE_DOMAIN smtp:[127.0.0.1]:$SINK_PORT" "$RELAY_DOMAIN smtp:[127.0.0.1]:$RELAY_PORT" \
    "$DISCARD_DOMAIN discard:" "$DEFER_DOMAIN smtp:[127.0.0.1]:$DEFER_PORT" | put_text "$TRANSPORT_MAP" 0644 0:0
[ "$TRANSPORT_MAP.db" -nt "$TRANSPORT_MAP" ] || postmap "hash:$TRANSPORT_MAP"
# Mail the test relay could not pass on is bounced within the hour, not kept for days.
settings=(
    "home_mailbox = Maildir/"
    "relay_domains = $BOUNCE_DOMAIN, $RELAY_DOMAIN, $DISCARD_DOMAIN, $DEFER_DOMAIN"
    "transport_maps = hash:$TRANSPORT_MAP"
    "smtpd_milters = inet:127.0.0.1:$DKIM_PORT"
    "non_smtpd_milters = inet:127.0.0.1:$DKIM_PORT"
    "milter_default_action = accept"
    "maximal_queue_lifetime = 1h"
    "bounce_queue_lifetime = 1h"
)
changes=()
for setting in "${settings[@]}"; do
    [ "$(postconf -h "${setting%% = *}")" = "${setting#* = }" ] || changes+=("$setting")
done
# Only when something differs: postconf right after an edit of main.cf waits a second or two.
((${#changes[@]} == 0)) || postconf -e "${changes[@]}"
if [ "$before" != "$(postconf -n; cat "$TRANSPORT_MAP")" ]; then
    postfix check
    postfix reload >/dev/null 2>&1 || die "postfix reload failed; see /var/log/postfix.log"
    log "Postfix reloaded: Maildir delivery; $BOUNCE_DOMAIN bounces, $RELAY_DOMAIN goes to [127.0.0.1]:$RELAY_PORT, $DISCARD_DOMAIN is discarded, $DEFER_DOMAIN deferred"
else
    log "Postfix settings unchanged"
fi

# --- Dovecot, a private instance --------------------------------------------------------------
DOVECOT=$(command -v dovecot || echo /usr/sbin/dovecot)
[ -x "$DOVECOT" ] || die "dovecot missing (apt-get install dovecot-imapd dovecot-pop3d)"
# LMTP (RFC 2033) into the same Maildirs: its own package
[ -x /usr/lib/dovecot/lmtp ] || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dovecot-lmtpd \
    >/dev/null || die "could not install dovecot-lmtpd"
CHANGED=0
install -d -m 0755 "$CERT_DIR/dovecot"
put_file "$HERE/dovecot.conf" "$DOVECOT_CONF" 0644 0:0
# passwd-file users with the same SHA512-CRYPT hashes as their Unix passwords.
users=$(mktemp)
for spec in "${TEST_USERS[@]}"; do
    user=${spec%%:*}
    IFS=: read -r _ _ uid gid _ home _ < <(getent passwd "$user")
    printf '%s:%s:%s:%s::%s::\n' "$user" "$(getent shadow "$user" | cut -d: -f2)" "$uid" "$gid" "$home" >>"$users"
done
put_file "$users" "$CERT_DIR/dovecot/users" 0640 "0:$(getent group dovecot | cut -d: -f3)"
rm -f "$users"
install -d -m 0750 /var/lib/smtprun-dovecot
"$DOVECOT" -c "$DOVECOT_CONF" -n >/dev/null 2>"$DOVECOT_LOG.check" || {
    cat "$DOVECOT_LOG.check" >&2
    die "Dovecot refuses $HERE/dovecot.conf"
}
rm -f "$DOVECOT_LOG.check"
certs=$(cat "$CERT_DIR/server.pem" "$CERT_DIR/server.key" | sha256sum)
[ "$(cat /var/lib/smtprun-dovecot/cert.sum 2>/dev/null)" = "$certs" ] || CHANGED=1   # ssl_cert is read at start
if ((CHANGED == 0)) && answers 127.0.0.1 143 "\* OK*Dovecot*" "a LOGOUT" && answers 127.0.0.1 110 "+OK*Dovecot*"; then
    log "Dovecot already answers on 127.0.0.1:143 and :110"
else
    "$DOVECOT" -c "$DOVECOT_CONF" stop >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        port_busy 143 || port_busy 110 || break
        sleep 0.1
    done
    for port in 143 993 110 995; do
        ! port_busy "$port" || die "127.0.0.1:$port is taken by a process other than this Dovecot instance"
    done
    printf '\n=== %s: %s -c %s\n' "$(date -Is)" "$DOVECOT" "$DOVECOT_CONF" >>"$DOVECOT_LOG"
    DAEMON_PID=
    "$DOVECOT" -c "$DOVECOT_CONF" </dev/null >>"$DOVECOT_LOG" 2>&1 || { tail -n 20 "$DOVECOT_LOG" >&2; die "dovecot did not start"; }
    wait_for 127.0.0.1 143 "\* OK*Dovecot*" 15 "$DOVECOT_LOG"
    wait_for 127.0.0.1 110 "+OK*Dovecot*" 5 "$DOVECOT_LOG"
    port_busy 993 && port_busy 995 || die "Dovecot does not listen on 127.0.0.1:993 and :995"
    printf '%s\n' "$certs" >/var/lib/smtprun-dovecot/cert.sum
    port_busy 2424 || die "Dovecot does not listen on 127.0.0.1:2424 (LMTP)"
    log "Dovecot: IMAP 127.0.0.1:143 (STARTTLS), IMAPS :993, POP3 :110 (STLS), POP3S :995, LMTP :2424 and" \
        "/run/smtprun-dovecot/lmtp; log $DOVECOT_LOG"
fi
