#!/usr/bin/env bash
# qpsmtpd 0.94 (Debian 12's qpsmtpd, its forkserver) on 127.0.0.1:2533, in its own chroot (the package
# pulls in a Perl stack and wants its own /etc/qpsmtpd). Built once (mmdebstrap); then on every run: the
# plugin list (scripts/env/qpsmtpd-plugins), names, local domains, recipients, AUTH users, certificate,
# and a start only when the daemon does not answer (or something changed). Run as root; safe to re-run.
set -euo pipefail
ENV_NAME=qpsmtpd
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

ROOT=$MTA_ROOT/qpsmtpd
PORT=2533
LOG=/var/log/smtprun-qpsmtpd.log   # the daemon's stderr, its log (logging/warn)
SPEC="qpsmtpd $SUITE v1"

[ "$(id -u)" -eq 0 ] || die "must run as root"
for file in ca.pem server.pem server.key; do
    [ -s "$CERT_DIR/$file" ] || die "$CERT_DIR/$file missing: run scripts/test-env.sh (it writes the test certificate)"
done

# --- chroot ---------------------------------------------------------------------------------
if ! [ -f "$ROOT/.smtprun-chroot" ] || [ "$(cat "$ROOT/.smtprun-chroot")" != "$SPEC" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    write_user_hook "$work/users.sh" "qpsmtpd:$(free_id 960):/var/lib/qpsmtpd:/usr/sbin/nologin" \
        "alice:$(free_id 2960):/home/alice:/usr/sbin/nologin" "bob:$(free_id 2961):/home/bob:/usr/sbin/nologin"
    chroot_sources >"$work/sources.list"
    # libnet-ip-perl: not pulled in by the package, and qpsmtpd dies at start without it.
    # libio-socket-ssl-perl: the tls plugin.
    ensure_chroot "$ROOT" "$SPEC" "$work/users.sh" "$work/sources.list" \
        --include=qpsmtpd,libnet-ip-perl,libio-socket-ssl-perl,openssl,ca-certificates
else
    log "chroot kept: $ROOT"
fi
[ -x "$ROOT/usr/bin/qpsmtpd-forkserver" ] || die "$ROOT/usr/bin/qpsmtpd-forkserver missing: delete $ROOT and re-run"

# --- files inside the chroot ----------------------------------------------------------------
qp_uid=$(chroot_uid "$ROOT" qpsmtpd) || die "user qpsmtpd missing in $ROOT: delete $ROOT and re-run"
qp_gid=$(chroot_gid "$ROOT" qpsmtpd) || die "group qpsmtpd missing in $ROOT: delete $ROOT and re-run"
etc=$ROOT/etc/qpsmtpd
put_file "$HERE/qpsmtpd-plugins" "$etc/plugins" 0644 0:0
printf '%s\n' "$MAIL_HOST" | put_text "$etc/me" 0644 0:0
printf '%s\n' smtprun.test localhost "$MAIL_HOST" | put_text "$etc/rcpthosts" 0644 0:0
# Debian's lets 127.0.0.1 relay: here no client may.
: | put_text "$etc/relayclients" 0644 0:0
printf '1\n' | put_text "$etc/tls_before_auth" 0644 0:0
# Known users in the local domains; any other user there is refused; other domains fall through to rcpt_ok.
# (A /regex/ is matched without regard to case; it takes no flags.)
{
    printf '# users of the local domains (scripts/env/qpsmtpd.sh)\n'
    for spec in "${TEST_USERS[@]}"; do
        printf '/^%s@(smtprun\\.test|localhost|mail\\.smtprun\\.test)$/ OK\n' "${spec%%:*}"
    done
    printf '/@(smtprun\\.test|localhost|mail\\.smtprun\\.test)$/ DENY No such user\n'
    printf '/^.*$/ DECLINED\n'
} | put_text "$etc/rcpt_regexp" 0644 0:0
# AUTH logins are addresses (auth_flat_file wants user@domain): alice@smtprun.test, bob@smtprun.test.
printf '%s\n' "${TEST_USERS[@]/:/@smtprun.test:}" | put_text "$etc/flat_auth_pw" 0640 "0:$qp_gid"
put_file "$CERT_DIR/server.pem" "$etc/tls/server.pem" 0644 0:0
put_file "$CERT_DIR/server.key" "$etc/tls/server.key" 0640 "0:$qp_gid"
put_file "$CERT_DIR/ca.pem" "$etc/tls/ca.pem" 0644 0:0
printf '%s\n' "$MAIL_HOST" | put_text "$ROOT/etc/mailname" 0644 0:0
printf '127.0.0.1\t%s localhost\n127.0.0.2\tclient2.smtprun.test\n' "$MAIL_HOST" | put_text "$ROOT/etc/hosts" 0644 0:0
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' | put_text "$ROOT/etc/resolv.conf" 0644 0:0
install -d -m 0750 -o "$qp_uid" -g "$qp_gid" "$ROOT/var/lib/qpsmtpd" "$ROOT/var/lib/qpsmtpd/maildir"
install -d -m 0700 -o "$qp_uid" -g "$qp_gid" "$ROOT/var/spool/qpsmtpd"   # spool_dir: 0700 or it warns

# Its defaults otherwise: at most 15 connections, 5 from one address (-m). Each connection asks DNS for the
# client's name (Net::DNS, not /etc/hosts; 0.94's -H is parsed but never passed on), and nothing answers the
# chroot's nameserver: the banner comes about 1 s late (resolv.conf timeout:1). Kept in a file, so that a
# change restarts it.
DAEMON_ARGS=(-l 127.0.0.1 -p "$PORT" -u qpsmtpd)
printf '%s\n' "${DAEMON_ARGS[@]}" | put_text "$etc/.smtprun-args" 0644 0:0

# --- daemon ---------------------------------------------------------------------------------
if ((CHANGED == 0)) && answers 127.0.0.1 "$PORT" "220 *qpsmtpd*"; then
    log "already running on 127.0.0.1:$PORT, configuration unchanged"
    exit 0
fi
stop_chroot_processes "$ROOT"
if port_busy "$PORT"; then
    die "127.0.0.1:$PORT is taken by a process outside $ROOT"
fi
start_detached "$LOG" chroot "$ROOT" env QPSMTPD_CONFIG=/etc/qpsmtpd /usr/bin/qpsmtpd-forkserver "${DAEMON_ARGS[@]}"
wait_for 127.0.0.1 "$PORT" "220 *qpsmtpd*" 20 "$LOG"
log "log: $LOG; Maildirs: $ROOT/var/lib/qpsmtpd/maildir/<user>"
