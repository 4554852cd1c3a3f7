#!/usr/bin/env bash
# Sendmail 8.17 (Debian 12's sendmail-bin) on 127.0.0.1:2529, in its own chroot: like Exim and OpenSMTPD it
# provides mail-transport-agent and cannot sit beside Postfix on the host. Built once (mmdebstrap); then on
# every run: sendmail.cf (from scripts/env/sendmail.mc), access map, aliases, certificate, SASL users, and a
# start only when the daemon does not answer (or something changed). Run as root; safe to re-run.
# Local mail goes to the mbox /var/mail/<user> in the chroot (Sendmail's own way, not a Maildir).
set -euo pipefail
ENV_NAME=sendmail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

ROOT=$MTA_ROOT/sendmail
PORT=2529
LOG=/var/log/smtprun-sendmail.log   # the daemon's output; there is no syslog in the chroot
SPEC="sendmail-bin $SUITE v2"
SENDMAIL=/usr/libexec/sendmail/sendmail   # /usr/sbin/sendmail-mta: an alternatives link

[ "$(id -u)" -eq 0 ] || die "must run as root"
for file in ca.pem server.pem server.key; do
    [ -s "$CERT_DIR/$file" ] || die "$CERT_DIR/$file missing: run scripts/test-env.sh (it writes the test certificate)"
done

# --- chroot ---------------------------------------------------------------------------------
if ! [ -f "$ROOT/.smtprun-chroot" ] || [ "$(cat "$ROOT/.smtprun-chroot")" != "$SPEC" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    write_user_hook "$work/users.sh" "smmta:$(free_id 940):/var/lib/sendmail:/usr/sbin/nologin" \
        "smmsp:$(free_id 941):/var/lib/sendmail:/usr/sbin/nologin" \
        "alice:$(free_id 2940):/home/alice:/usr/sbin/nologin" "bob:$(free_id 2941):/home/bob:/usr/sbin/nologin"
    chroot_sources >"$work/sources.list"
    # procmail: sensible-mda's local delivery to /var/mail/<user>; sasl2-bin: saslpasswd2 for AUTH's users.
    ensure_chroot "$ROOT" "$SPEC" "$work/users.sh" "$work/sources.list" \
        --include=sendmail-bin,sendmail-cf,sensible-mda,procmail,sasl2-bin,libsasl2-modules,openssl,ca-certificates
else
    log "chroot kept: $ROOT"
fi
[ -x "$ROOT$SENDMAIL" ] || die "$ROOT$SENDMAIL missing: delete $ROOT and re-run"

# --- files inside the chroot ----------------------------------------------------------------
put_file "$HERE/sendmail.mc" "$ROOT/etc/mail/sendmail.mc" 0644 0:0
put_file "$HERE/sendmail-access" "$ROOT/etc/mail/access" 0644 0:0
printf '%s\n' smtprun.test localhost "$MAIL_HOST" | put_text "$ROOT/etc/mail/local-host-names" 0644 0:0
printf 'postmaster: alice\nroot: alice\nabuse: alice\nMAILER-DAEMON: postmaster\n' |
    put_text "$ROOT/etc/mail/aliases" 0644 0:0
put_file "$CERT_DIR/server.pem" "$ROOT/etc/mail/tls/server.pem" 0644 0:0
put_file "$CERT_DIR/server.key" "$ROOT/etc/mail/tls/server.key" 0600 0:0   # Sendmail refuses a readable key
put_file "$CERT_DIR/ca.pem" "$ROOT/etc/mail/tls/ca.pem" 0644 0:0
printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: /etc/sasldb2\n' |
    put_text "$ROOT/etc/sasl2/Sendmail.conf" 0644 0:0
printf '%s\n' "$MAIL_HOST" | put_text "$ROOT/etc/mailname" 0644 0:0
# Names resolve from files only (the host's own name too: Sendmail wants to canonify it at start).
printf '127.0.0.1\t%s localhost %s\n127.0.0.2\tclient2.smtprun.test\n' "$MAIL_HOST" "$(hostname)" |
    put_text "$ROOT/etc/hosts" 0644 0:0
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' | put_text "$ROOT/etc/resolv.conf" 0644 0:0
for spec in "${TEST_USERS[@]}"; do
    user=${spec%%:*}
    uid=$(chroot_uid "$ROOT" "$user") || die "user $user missing in $ROOT: delete $ROOT and re-run"
    install -d -m 0700 -o "$uid" -g "$uid" "$ROOT/home/$user"
done
install -d -m 0755 "$ROOT/run/sendmail/mta"

# Derived files, rebuilt when their source is newer: sendmail.cf (m4), access.db (makemap), aliases.db,
# and the SASL users (saslpasswd2, realm = the host name Sendmail gives as $j).
newer() { ! [ -e "$1" ] || [ "$2" -nt "$1" ]; }
if newer "$ROOT/etc/mail/sendmail.cf" "$ROOT/etc/mail/sendmail.mc"; then
    chroot "$ROOT" sh -c 'm4 /etc/mail/sendmail.mc >/etc/mail/sendmail.cf.new && mv /etc/mail/sendmail.cf.new /etc/mail/sendmail.cf' ||
        die "m4 failed on $HERE/sendmail.mc"
    CHANGED=1
fi
if newer "$ROOT/etc/mail/access.db" "$ROOT/etc/mail/access"; then
    chroot "$ROOT" sh -c 'makemap hash /etc/mail/access.db </etc/mail/access' || die "makemap failed on the access map"
    CHANGED=1
fi
if newer "$ROOT/etc/mail/aliases.db" "$ROOT/etc/mail/aliases"; then
    chroot "$ROOT" "$SENDMAIL" -bi >/dev/null || die "newaliases failed"
fi
sasl_stamp=$(printf '%s\n' "$MAIL_HOST" "${TEST_USERS[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$ROOT/etc/sasldb2.stamp" 2>/dev/null)" != "$sasl_stamp" ]; then
    rm -f "$ROOT/etc/sasldb2"
    for spec in "${TEST_USERS[@]}"; do
        printf '%s' "${spec#*:}" | chroot "$ROOT" saslpasswd2 -p -c -u "$MAIL_HOST" -f /etc/sasldb2 "${spec%%:*}" ||
            die "saslpasswd2 failed for ${spec%%:*}"
    done
    chmod 0600 "$ROOT/etc/sasldb2"
    printf '%s\n' "$sasl_stamp" >"$ROOT/etc/sasldb2.stamp"
    CHANGED=1
fi

# --- daemon ---------------------------------------------------------------------------------
if ((CHANGED == 0)) && answers 127.0.0.1 "$PORT" "220 *Sendmail*"; then
    log "already running on 127.0.0.1:$PORT, configuration unchanged"
    exit 0
fi
stop_chroot_processes "$ROOT"
if port_busy "$PORT"; then
    die "127.0.0.1:$PORT is taken by a process outside $ROOT"
fi
# -bD: the daemon in the foreground (stays this process); -q1m: a queue run every minute.
start_detached "$LOG" chroot "$ROOT" "$SENDMAIL" -bD -q1m
wait_for 127.0.0.1 "$PORT" "220 *Sendmail*" 20 "$LOG"
log "log: $LOG; mailboxes: $ROOT/var/mail/<user> (mbox)"
