#!/usr/bin/env bash
# The host's side of the mail loop: Unix users alice and bob (passwords in scripts/env/lib.sh) whose
# mailboxes the local Postfix delivers to. Run as root after Postfix is configured; safe to re-run.
set -euo pipefail
ENV_NAME=mailbox
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

MARK="smtprun test mailbox"   # the GECOS field of the users made here; others of the same name are left alone

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
