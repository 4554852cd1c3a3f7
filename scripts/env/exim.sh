#!/usr/bin/env bash
# Exim 4.96 (Debian 12's exim4-daemon-light) on 127.0.0.1:2525, in its own chroot: Exim, OpenSMTPD and
# Postfix each provide mail-transport-agent, so they cannot be installed side by side on the host.
# Builds the chroot once (mmdebstrap), then on every run: config, certificate, users, and a start only
# when the daemon does not answer (or its config changed). Run as root; safe to re-run.
set -euo pipefail
ENV_NAME=exim
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

ROOT=$MTA_ROOT/exim
PORT=2525
LOG=/var/log/smtprun-exim.log   # the daemon's stderr; Exim's own logs are $ROOT/var/log/exim4/{main,reject,panic}log
SPEC="exim4-daemon-light $SUITE v1"

[ "$(id -u)" -eq 0 ] || die "must run as root"
for file in ca.pem server.pem server.key; do
    [ -s "$CERT_DIR/$file" ] || die "$CERT_DIR/$file missing: run scripts/test-env.sh (it writes the test certificate)"
done

# --- chroot ---------------------------------------------------------------------------------
if ! [ -f "$ROOT/.smtprun-chroot" ] || [ "$(cat "$ROOT/.smtprun-chroot")" != "$SPEC" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    write_user_hook "$work/users.sh" "Debian-exim:$(free_id 920):/var/spool/exim4:/usr/sbin/nologin" \
        "alice:$(free_id 2920):/home/alice:/usr/sbin/nologin" "bob:$(free_id 2921):/home/bob:/usr/sbin/nologin"
    chroot_sources >"$work/sources.list"
    ensure_chroot "$ROOT" "$SPEC" "$work/users.sh" "$work/sources.list" --include=exim4-daemon-light
else
    log "chroot kept: $ROOT"
fi
[ -x "$ROOT/usr/sbin/exim4" ] || die "$ROOT/usr/sbin/exim4 missing: delete $ROOT and re-run"

# --- files inside the chroot ----------------------------------------------------------------
exim_gid=$(chroot_gid "$ROOT" Debian-exim) || die "group Debian-exim missing in $ROOT: delete $ROOT and re-run"
put_file "$HERE/exim4.conf" "$ROOT/etc/exim4/exim4.conf" 0644 0:0
put_file "$CERT_DIR/server.pem" "$ROOT/etc/mtas/server.pem" 0644 0:0
put_file "$CERT_DIR/server.key" "$ROOT/etc/mtas/server.key" 0640 "0:$exim_gid"
put_file "$CERT_DIR/ca.pem" "$ROOT/etc/mtas/ca.pem" 0644 0:0
# AUTH PLAIN/LOGIN passwords (lsearch: "user: password"), read by the exim user.
printf '%s\n' "${TEST_USERS[@]/:/: }" | put_text "$ROOT/etc/mtas/passwords" 0640 "0:$exim_gid"
printf '%s\n' "$MAIL_HOST" | put_text "$ROOT/etc/mailname" 0644 0:0
# Names resolve from files only; the one nameserver is loopback, where nothing answers.
printf '127.0.0.1\tlocalhost %s\n' "$MAIL_HOST" | put_text "$ROOT/etc/hosts" 0644 0:0
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' | put_text "$ROOT/etc/resolv.conf" 0644 0:0
for spec in "${TEST_USERS[@]}"; do
    user=${spec%%:*}
    uid=$(chroot_uid "$ROOT" "$user") || die "user $user missing in $ROOT: delete $ROOT and re-run"
    install -d -m 0700 -o "$uid" -g "$uid" "$ROOT/home/$user"
done
chroot "$ROOT" /usr/sbin/exim4 -bV >/dev/null 2>"$LOG.check" || {
    cat "$LOG.check" >&2
    die "Exim refuses its configuration ($HERE/exim4.conf)"
}
rm -f "$LOG.check"

# --- daemon ---------------------------------------------------------------------------------
if ((CHANGED == 0)) && answers 127.0.0.1 "$PORT" "220 *Exim*"; then
    log "already running on 127.0.0.1:$PORT, configuration unchanged"
    exit 0
fi
stop_chroot_processes "$ROOT"
if port_busy "$PORT"; then
    die "127.0.0.1:$PORT is taken by a process outside $ROOT"
fi
start_detached "$LOG" chroot "$ROOT" /usr/sbin/exim4 -bdf -q1m
wait_for 127.0.0.1 "$PORT" "220 *Exim*" 20 "$LOG" "$ROOT/var/log/exim4/mainlog" "$ROOT/var/log/exim4/paniclog"
log "logs: $LOG, $ROOT/var/log/exim4/mainlog; Maildirs: $ROOT/home/<user>/Maildir"
