#!/usr/bin/env bash
# Courier-MTA 1.0 (Debian 12's courier-mta) on 127.0.0.1:2531, in its own chroot (it provides
# mail-transport-agent, as Postfix does). Built once (mmdebstrap); then on every run: esmtpd settings
# (scripts/env/courier-esmtpd), names, local domains, relay access, aliases, certificate, users' passwords,
# and a start only when the daemons do not answer (or something changed). Run as root; safe to re-run.
# Its greeting does not name it ("220 mail.smtprun.test ESMTP"); its EHLO does (XVERP=Courier).
# Courier runs several daemons (courierd, authdaemond, couriertcpd for esmtpd), each forking itself off.
set -euo pipefail
ENV_NAME=courier
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

ROOT=$MTA_ROOT/courier
PORT=2531
LOG=/var/log/smtprun-courier.log   # what the daemons print; their logs go to syslog, absent in the chroot
SPEC="courier-mta $SUITE v1"

[ "$(id -u)" -eq 0 ] || die "must run as root"
for file in ca.pem server.pem server.key; do
    [ -s "$CERT_DIR/$file" ] || die "$CERT_DIR/$file missing: run scripts/test-env.sh (it writes the test certificate)"
done

# --- chroot ---------------------------------------------------------------------------------
if ! [ -f "$ROOT/.smtprun-chroot" ] || [ "$(cat "$ROOT/.smtprun-chroot")" != "$SPEC" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    write_user_hook "$work/users.sh" "courier:$(free_id 950):/var/lib/courier:/usr/sbin/nologin" \
        "alice:$(free_id 2950):/home/alice:/usr/sbin/nologin" "bob:$(free_id 2951):/home/bob:/usr/sbin/nologin"
    chroot_sources >"$work/sources.list"
    ensure_chroot "$ROOT" "$SPEC" "$work/users.sh" "$work/sources.list" --include=courier-mta,openssl,ca-certificates
else
    log "chroot kept: $ROOT"
fi
[ -x "$ROOT/usr/sbin/courieresmtpd" ] || die "$ROOT/usr/sbin/courieresmtpd missing: delete $ROOT and re-run"

# --- files inside the chroot ----------------------------------------------------------------
courier_gid=$(chroot_gid "$ROOT" courier) || die "group courier missing in $ROOT: delete $ROOT and re-run"
etc=$ROOT/etc/courier
put_file "$HERE/courier-esmtpd" "$etc/esmtpd" 0644 0:0
printf '%s\n' "$MAIL_HOST" | put_text "$etc/me" 0644 0:0
# Unqualified addresses and reports go to this domain (Debian leaves it empty: reports to an alias vanish).
printf 'smtprun.test\n' | put_text "$etc/defaultdomain" 0644 0:0
printf '%s\n' localhost smtprun.test "$MAIL_HOST" | put_text "$etc/locals" 0644 0:0
# ESMTP takes mail only for the domains listed here (locals alone: "513 Relaying denied").
printf '%s\n' localhost smtprun.test "$MAIL_HOST" | put_text "$etc/esmtpacceptmailfor.dir/smtprun" 0644 0:0
# Debian's smtpaccess lets 127.0.0.1 relay (RELAYCLIENT): here no client may.
printf '127.0.0.1\tallow\n:0000:0000:0000:0000:0000:0000:0000:0001\tallow\n' | put_text "$etc/smtpaccess/default" 0644 0:0
printf 'postmaster: alice\nroot: postmaster\nabuse: postmaster\nmailer-daemon: postmaster\n' |
    put_text "$etc/aliases/system" 0644 0:0
cat "$CERT_DIR/server.pem" "$CERT_DIR/server.key" | put_text "$etc/esmtpd.pem" 0640 "0:$courier_gid"
put_file "$CERT_DIR/ca.pem" "$etc/ca.pem" 0644 0:0
printf '%s\n' "$MAIL_HOST" | put_text "$ROOT/etc/mailname" 0644 0:0
printf '127.0.0.1\t%s localhost\n' "$MAIL_HOST" | put_text "$ROOT/etc/hosts" 0644 0:0
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' | put_text "$ROOT/etc/resolv.conf" 0644 0:0
# Users: a Maildir each (Courier delivers to ./Maildir in the home, and does not create it) and the
# password AUTH checks (PAM, pam_unix: the chroot's /etc/shadow). A hash is kept while it verifies.
for spec in "${TEST_USERS[@]}"; do
    user=${spec%%:*} password=${spec#*:}
    uid=$(chroot_uid "$ROOT" "$user") || die "user $user missing in $ROOT: delete $ROOT and re-run"
    install -d -m 0700 -o "$uid" -g "$uid" "$ROOT/home/$user" "$ROOT/home/$user/Maildir"
    install -d -m 0700 -o "$uid" -g "$uid" "$ROOT/home/$user/Maildir/"{tmp,new,cur}
    hash=$(awk -F: -v u="$user" '$1 == u { print $2 }' "$ROOT/etc/shadow")
    if [[ "$hash" != \$6\$* ]] || [ "$(openssl passwd -6 -salt "$(cut -d'$' -f3 <<<"$hash")" "$password")" != "$hash" ]; then
        chroot "$ROOT" usermod -p "$(openssl passwd -6 "$password")" "$user"
        CHANGED=1
    fi
done
install -d -m 0755 -o 0 -g 0 "$ROOT/run/courier"
install -d -m 0750 -o "$(chroot_uid "$ROOT" courier)" -g "$courier_gid" "$ROOT/run/courier/authdaemon"
# The .dat files Courier reads, rebuilt from the text files above when those are newer.
rebuild() {  # rebuild TARGET SOURCE COMMAND...
    local target=$1 source=$2
    shift 2
    if ! [ -e "$target" ] || [ "$source" -nt "$target" ]; then
        chroot "$ROOT" "$@" >/dev/null || die "$* failed"
        CHANGED=1
    fi
}
rebuild "$etc/smtpaccess.dat" "$etc/smtpaccess/default" /usr/sbin/makesmtpaccess
rebuild "$etc/aliases.dat" "$etc/aliases/system" /usr/sbin/makealiases
rebuild "$etc/esmtpacceptmailfor.dat" "$etc/esmtpacceptmailfor.dir/smtprun" /usr/sbin/makeacceptmailfor

# --- daemons --------------------------------------------------------------------------------
if ((CHANGED == 0)) && answers 127.0.0.1 "$PORT" "220 $MAIL_HOST ESMTP"; then
    log "already running on 127.0.0.1:$PORT, configuration unchanged"
    exit 0
fi
stop_chroot_processes "$ROOT"
if port_busy "$PORT"; then
    die "127.0.0.1:$PORT is taken by a process outside $ROOT"
fi
# Each start command forks its daemon off and returns.
for command in "/usr/sbin/authdaemond start" "/usr/sbin/courier start" "/usr/sbin/esmtpd start"; do
    # shellcheck disable=SC2086  # the command and its argument
    start_detached "$LOG" chroot "$ROOT" $command
    wait "$DAEMON_PID" || die "$command failed in $ROOT (see $LOG)"
done
DAEMON_PID=
wait_for 127.0.0.1 "$PORT" "220 $MAIL_HOST ESMTP" 20 "$LOG"
log "log: $LOG; Maildirs: $ROOT/home/<user>/Maildir"
