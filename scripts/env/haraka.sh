#!/usr/bin/env bash
# Haraka 3 (the npm package, run with this machine's Node.js) on 127.0.0.1:2535, from a folder under
# /srv/smtprun-mtas/haraka: app/ (npm ci of scripts/env/haraka/package-lock.json), site/ (scripts/env/haraka:
# config and the site plugin), home/<user>/Maildir. Installed once; then on every run: config, certificate,
# AUTH users, Maildirs, and a start only when the daemon does not answer (or something changed).
# Run as root; safe to re-run.
set -euo pipefail
ENV_NAME=haraka
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

ROOT=$MTA_ROOT/haraka
PORT=2535
LOG=/var/log/smtprun-haraka.log   # Haraka logs to its standard output
SRC=$HERE/haraka

[ "$(id -u)" -eq 0 ] || die "must run as root"
for file in ca.pem server.pem server.key; do
    [ -s "$CERT_DIR/$file" ] || die "$CERT_DIR/$file missing: run scripts/test-env.sh (it writes the test certificate)"
done
NODE=$(command -v node) || die "node missing: Haraka 3 needs Node.js 20 or newer (and npm)"
NODE=$(readlink -f "$NODE")
command -v npm >/dev/null || die "npm missing: it installs Haraka"
node_major=$("$NODE" -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node.js $("$NODE" --version) is too old: Haraka 3 needs 20 or newer"

# --- Haraka itself (npm ci: exactly the versions of the lock file) -------------------------------
mkdir -p "$ROOT/app"
if [ -d "$ROOT/app/node_modules/Haraka" ] && cmp -s "$SRC/package-lock.json" "$ROOT/app/package-lock.json"; then
    log "Haraka kept: $ROOT/app"
else
    started=$SECONDS
    stop_tracked haraka "$NODE"
    install -m 0644 "$SRC/package.json" "$SRC/package-lock.json" "$ROOT/app/"
    # --ignore-scripts: the one install script (modern-syslog's native build) is for a plugin not used here.
    (cd "$ROOT/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) >"$ROOT/npm.log" 2>&1 || {
        tail -n 30 "$ROOT/npm.log" >&2
        die "npm ci failed in $ROOT/app (full log: $ROOT/npm.log)"
    }
    log "Haraka installed in $((SECONDS - started)) s: $ROOT/app"
fi
HARAKA_BIN=$ROOT/app/node_modules/Haraka/bin/haraka

# --- the site: config, plugin, certificate, users, Maildirs -----------------------------------------
site=$ROOT/site
if ! [ -f "$site/config/connection.ini" ]; then
    # A new site, as Haraka's docs make one: its default config files, which the files below then replace.
    "$NODE" "$HARAKA_BIN" -i "$site" >"$ROOT/install.log" 2>&1 || {
        cat "$ROOT/install.log" >&2
        die "haraka -i $site failed"
    }
fi
for file in "$SRC"/config/* "$SRC"/plugins/*; do
    put_file "$file" "$site/${file#"$SRC"/}" 0644 0:0
done
printf '%s\n' "$MAIL_HOST" | put_text "$site/config/me" 0644 0:0
put_file "$CERT_DIR/server.pem" "$site/config/tls_cert.pem" 0644 0:0
put_file "$CERT_DIR/server.key" "$site/config/tls_key.pem" 0600 0:0
{
    printf '; AUTH users (scripts/env/haraka.sh, from scripts/env/lib.sh TEST_USERS)\n'
    printf '[core]\nmethods=PLAIN,LOGIN\n\n[users]\n'
    printf '%s\n' "${TEST_USERS[@]/:/=}"
} | put_text "$site/config/auth_flat_file.ini" 0600 0:0
for spec in "${TEST_USERS[@]}"; do
    install -d -m 0700 "$ROOT/home/${spec%%:*}/Maildir/"{tmp,new,cur}
done

# --- daemon ---------------------------------------------------------------------------------
if ((CHANGED == 0)) && tracked_running haraka "$NODE" && answers 127.0.0.1 "$PORT" "220 *Haraka*"; then
    log "already running on 127.0.0.1:$PORT, configuration unchanged"
    exit 0
fi
stop_tracked haraka "$NODE"
if port_busy "$PORT"; then
    die "127.0.0.1:$PORT is taken by another process"
fi
start_tracked haraka "$LOG" "$NODE" "$HARAKA_BIN" -c "$site"
wait_for 127.0.0.1 "$PORT" "220 *Haraka*" 30 "$LOG"
log "log: $LOG; Maildirs: $ROOT/home/<user>/Maildir"
