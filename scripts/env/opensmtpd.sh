#!/usr/bin/env bash
# OpenSMTPD 7.4 (Debian's bookworm-backports build) on 127.0.0.1:2527, in its own chroot. Bookworm's own
# 6.8.0p2 cannot do STARTTLS with OpenSSL 3 (upstream issues #1171, #1239; fixed in 7.x), and the MTAs
# conflict as packages, hence the chroot. Built once (mmdebstrap); then on every run: config, certificate,
# users, and a start only when the daemon does not answer (or its config changed). Run as root.
set -euo pipefail
ENV_NAME=opensmtpd
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

ROOT=$MTA_ROOT/opensmtpd
PORT=2527
LOG=/var/log/smtprun-opensmtpd.log   # smtpd -d logs to stderr: everything is here
SPEC="opensmtpd/$SUITE-backports $SUITE v1"

[ "$(id -u)" -eq 0 ] || die "must run as root"
for file in ca.pem server.pem server.key; do
    [ -s "$CERT_DIR/$file" ] || die "$CERT_DIR/$file missing: run scripts/test-env.sh (it writes the test certificate)"
done

# --- chroot ---------------------------------------------------------------------------------
if ! [ -f "$ROOT/.smtprun-chroot" ] || [ "$(cat "$ROOT/.smtprun-chroot")" != "$SPEC" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    write_user_hook "$work/users.sh" "opensmtpd:$(free_id 930):/var/lib/opensmtpd/empty:/usr/sbin/nologin" \
        "opensmtpq:$(free_id 931):/var/lib/opensmtpd/empty:/usr/sbin/nologin" \
        "alice:$(free_id 2930):/home/alice:/usr/sbin/nologin" "bob:$(free_id 2931):/home/bob:/usr/sbin/nologin"
    chroot_sources "$SUITE-backports" >"$work/sources.list"
    # ca-certificates: without a CA file smtpd exits at startup (tls_config_set_ca_file).
    ensure_chroot "$ROOT" "$SPEC" "$work/users.sh" "$work/sources.list" \
        --include="opensmtpd/$SUITE-backports,openssl,ca-certificates"
else
    log "chroot kept: $ROOT"
fi
[ -x "$ROOT/usr/sbin/smtpd" ] || die "$ROOT/usr/sbin/smtpd missing: delete $ROOT and re-run"

# --- files inside the chroot ----------------------------------------------------------------
smtpd_gid=$(chroot_gid "$ROOT" opensmtpd) || die "group opensmtpd missing in $ROOT: delete $ROOT and re-run"
put_file "$HERE/smtpd.conf" "$ROOT/etc/smtpd.conf" 0644 0:0
put_file "$CERT_DIR/server.pem" "$ROOT/etc/mtas/server.pem" 0644 0:0
put_file "$CERT_DIR/server.key" "$ROOT/etc/mtas/server.key" 0600 0:0
put_file "$CERT_DIR/ca.pem" "$ROOT/etc/mtas/ca.pem" 0644 0:0
printf 'postmaster: alice\nroot: alice\nabuse: alice\n' | put_text "$ROOT/etc/mtas/aliases" 0644 0:0
# AUTH credentials: "user <crypt(3) hash>". Hashed once; kept while the passwords verify.
creds=$(mktemp)
for spec in "${TEST_USERS[@]}"; do
    user=${spec%%:*} password=${spec#*:}
    hash=$(awk -v u="$user" '$1 == u { print $2 }' "$ROOT/etc/mtas/creds" 2>/dev/null || true)
    if [ -z "$hash" ] || [ "$(openssl passwd -6 -salt "$(cut -d'$' -f3 <<<"$hash")" "$password")" != "$hash" ]; then
        hash=$(openssl passwd -6 "$password")
    fi
    printf '%s %s\n' "$user" "$hash" >>"$creds"
done
put_file "$creds" "$ROOT/etc/mtas/creds" 0640 "0:$smtpd_gid"
rm -f "$creds"
printf '%s\n' "$MAIL_HOST" | put_text "$ROOT/etc/mailname" 0644 0:0
printf '127.0.0.1\tlocalhost %s\n' "$MAIL_HOST" | put_text "$ROOT/etc/hosts" 0644 0:0
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' | put_text "$ROOT/etc/resolv.conf" 0644 0:0
for spec in "${TEST_USERS[@]}"; do
    user=${spec%%:*}
    uid=$(chroot_uid "$ROOT" "$user") || die "user $user missing in $ROOT: delete $ROOT and re-run"
    install -d -m 0700 -o "$uid" -g "$uid" "$ROOT/home/$user"
done
chroot "$ROOT" /usr/sbin/smtpd -n -f /etc/smtpd.conf >"$LOG.check" 2>&1 || {
    cat "$LOG.check" >&2
    die "OpenSMTPD refuses its configuration ($HERE/smtpd.conf)"
}
rm -f "$LOG.check"

# --- daemon ---------------------------------------------------------------------------------
if ((CHANGED == 0)) && answers 127.0.0.1 "$PORT" "220 *OpenSMTPD*"; then
    log "already running on 127.0.0.1:$PORT, configuration unchanged"
    exit 0
fi
stop_chroot_processes "$ROOT"
if port_busy "$PORT"; then
    die "127.0.0.1:$PORT is taken by a process outside $ROOT"
fi
start_detached "$LOG" chroot "$ROOT" /usr/sbin/smtpd -d -f /etc/smtpd.conf
wait_for 127.0.0.1 "$PORT" "220 *OpenSMTPD*" 20 "$LOG"
log "log: $LOG; Maildirs: $ROOT/home/<user>/Maildir"
