# Shared helpers for the scripts in scripts/env/ (sourced, not run). Each script sets ENV_NAME first.
# Everything here listens on 127.0.0.1 only; nothing is sent anywhere but loopback.

MTA_ROOT=/srv/smtprun-mtas                        # one chroot per MTA below this (tests/support/mtas.py)
CERT_DIR=/etc/smtprun-test                        # test CA and server certificate (scripts/test-env.sh)
MAIL_HOST=mail.smtprun.test
SUITE=bookworm                                    # the chroots are Debian 12 whatever the host is
# Mailbox users and their passwords, the same on every server (tests/support/mtas.py says the same).
TEST_USERS=(alice:alice-password bob:bob-password)

# `printf ... | put_text FILE` must run put_text in this shell, or its CHANGED=1 is lost in a subshell.
shopt -s lastpipe

log() { printf '%s: %s\n' "$ENV_NAME" "$*"; }
die() { printf '%s: error: %s\n' "$ENV_NAME" "$*" >&2; exit 1; }

# The Debian archive URIs this host's apt uses: "main" (the suite without a dash) or "security"
# (the -security suite). From deb822 sources (debian.sources) or one-line sources.list files.
debian_uri() {
    local want=$1 file uri
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -r "$file" ] || continue
        uri=$(awk -v want="$want" '
            BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; uris = ""; suites = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^[ \t]*#/) continue
                    if ($i ~ /^Types:/)  types  = substr($i, 7)
                    if ($i ~ /^URIs:/)   uris   = substr($i, 6)
                    if ($i ~ /^Suites:/) suites = substr($i, 8)
                }
                if (types !~ /(^|[ \t])deb([ \t]|$)/) next
                n = split(suites, s, /[ \t]+/); split(uris, u, /[ \t]+/)
                first = u[1] != "" ? u[1] : u[2]
                for (j = 1; j <= n; j++) {
                    if (s[j] == "") continue
                    if ((want == "main" && s[j] !~ /-/) || (want == "security" && s[j] ~ /-security$/)) {
                        print first; exit
                    }
                }
            }' "$file")
        [ -n "$uri" ] && { printf '%s\n' "$uri"; return 0; }
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$file" ] || continue
        uri=$(sed -e 's/\[[^]]*\]//' "$file" | awk -v want="$want" '
            $1 == "deb" && ((want == "main" && $3 !~ /-/) || (want == "security" && $3 ~ /-security$/)) {
                print $2; exit
            }')
        [ -n "$uri" ] && { printf '%s\n' "$uri"; return 0; }
    done
    return 1
}

# One-line apt sources for a bookworm chroot, from this host's mirrors; extra suites as arguments
# (e.g. bookworm-backports).
chroot_sources() {
    local main security suite
    main=$(debian_uri main) || die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or sources.list"
    security=$(debian_uri security || true)
    printf 'deb %s %s main\n' "$main" "$SUITE" "$main" "$SUITE-updates"
    [ -z "$security" ] || printf 'deb %s %s main\n' "$security" "$SUITE-security"
    for suite in "$@"; do printf 'deb %s %s main\n' "$main" "$suite"; done
}

# A uid (and gid of the same number) from START up that neither this host nor anything already chosen uses.
# Chroot users with the host's uids would show up in `ps` under the host's names (and could signal them).
_taken_ids=" "
free_id() {
    local id=$1
    while getent passwd "$id" >/dev/null || getent group "$id" >/dev/null || [[ "$_taken_ids" == *" $id "* ]]; do
        id=$((id + 1))
    done
    _taken_ids+="$id "
    printf '%s\n' "$id"
}

# An mmdebstrap --essential-hook script adding users before the packages' postinsts run (those keep
# existing users). Arguments: NAME:UID:HOME:SHELL ... (gid = uid, group of the same name).
write_user_hook() {
    local hook=$1 spec name id home shell
    shift
    {
        printf '#!/bin/sh\nset -e\nroot="$1"\n'
        for spec in "$@"; do
            IFS=: read -r name id home shell <<<"$spec"
            printf 'echo "%s:x:%s:%s::%s:%s" >>"$root/etc/passwd"\n' "$name" "$id" "$id" "$home" "$shell"
            printf 'echo "%s:x:%s:" >>"$root/etc/group"\n' "$name" "$id"
            printf 'echo "%s:*:19000:0:99999:7:::" >>"$root/etc/shadow"\n' "$name"
            printf 'echo "%s:*::" >>"$root/etc/gshadow"\n' "$name"
        done
    } >"$hook"
    chmod 0755 "$hook"
}

# Build a chroot at ROOT with mmdebstrap unless one built from the same SPEC is already there.
# ensure_chroot ROOT SPEC HOOK SOURCES_FILE MMDEBSTRAP_ARGS...
ensure_chroot() {
    local root=$1 spec=$2 hook=$3 sources=$4 started
    shift 4
    if [ -f "$root/.smtprun-chroot" ] && [ "$(cat "$root/.smtprun-chroot")" = "$spec" ]; then
        log "chroot kept: $root"
        return 0
    fi
    command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"
    stop_chroot_processes "$root"
    rm -rf "$root" "$root.new"
    mkdir -p "$(dirname "$root")"
    log "building chroot $root (mmdebstrap, $SUITE) ..."
    started=$SECONDS
    if ! mmdebstrap --variant=essential --mode=root \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --essential-hook="$hook \"\$1\"" "$@" "$SUITE" "$root.new" - <"$sources" 2>&1 |
            while IFS= read -r line; do printf '%s %s\n' "$(date +%T)" "$line"; done >"$root.log"; then
        tail -n 30 "$root.log" >&2
        die "mmdebstrap failed for $root (full log: $root.log)"
    fi
    printf '%s\n' "$spec" >"$root.new/.smtprun-chroot"
    mv "$root.new" "$root"
    log "chroot built in $((SECONDS - started)) s: $root"
}

# The processes whose root directory is ROOT (the daemons started in that chroot).
chroot_processes() {
    local root proc link
    root=$(readlink -f "$1")
    for proc in /proc/[0-9]*; do
        link=$(readlink "$proc/root" 2>/dev/null) || continue
        [ "$link" = "$root" ] && printf '%s\n' "${proc#/proc/}"
    done
}

stop_chroot_processes() {
    local root=$1 pids _
    [ -d "$root" ] || return 0
    mapfile -t pids < <(chroot_processes "$root")
    ((${#pids[@]})) || return 0
    log "stopping processes in $root: ${pids[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
        mapfile -t pids < <(chroot_processes "$root")
        ((${#pids[@]})) || return 0
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

# Copy SRC to DST (mode, owner UID:GID, numeric) when content or metadata differ; sets CHANGED=1 then.
CHANGED=0
put_file() {
    local src=$1 dst=$2 mode=$3 owner=$4
    if [ -f "$dst" ] && cmp -s "$src" "$dst" && [ "$(stat -c '%a %u:%g' "$dst")" = "${mode#0} $owner" ]; then
        return 0
    fi
    install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dst"
    CHANGED=1
}

# The numeric uid of a user or gid of a group in a chroot's own /etc/passwd or /etc/group.
chroot_uid() { awk -F: -v n="$2" '$1 == n { print $3; found = 1 } END { exit !found }' "$1/etc/passwd"; }
chroot_gid() { awk -F: -v n="$2" '$1 == n { print $3; found = 1 } END { exit !found }' "$1/etc/group"; }

# put_file for text given on standard input.
put_text() {
    local tmp
    tmp=$(mktemp)
    cat >"$tmp"
    put_file "$tmp" "$@"
    rm -f "$tmp"
}

# The first line a server sends on HOST:PORT, without CR; fails when nothing answers within 3 s.
# BYE (default "QUIT") is sent before closing.
banner_line() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && IFS= read -r line <&3 &&
        printf "%s\r\n" "$2" >&3 && printf "%s\n" "${line%$'"'\r'"'}"' "$1" "$2" "${3:-QUIT}" 2>/dev/null
}

# Whether HOST:PORT answers with a first line matching the glob PATTERN (e.g. "220 *Exim*").
answers() {
    local line
    line=$(banner_line "$1" "$2" "${4:-QUIT}") || return 1
    # shellcheck disable=SC2053  # the pattern is a glob on purpose
    [[ "$line" == $3 ]]
}

# Wait (bounded) until HOST:PORT answers a line matching PATTERN; else show the logs' tails and fail.
# Gives up early when the process start_detached started last ($DAEMON_PID) has exited.
# wait_for HOST PORT PATTERN SECONDS LOG...
wait_for() {
    local host=$1 port=$2 pattern=$3 seconds=$4 deadline line= log why
    shift 4
    deadline=$((SECONDS + seconds))
    why="after $seconds s"
    while ((SECONDS < deadline)); do
        if [ -n "${DAEMON_PID:-}" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            wait "$DAEMON_PID" 2>/dev/null && why="its process exited" || why="its process exited with status $?"
            break
        fi
        # shellcheck disable=SC2053
        if line=$(banner_line "$host" "$port") && [[ "$line" == $pattern ]]; then
            log "answers on $host:$port: $line"
            return 0
        fi
        sleep 0.2
    done
    for log in "$@"; do
        [ -f "$log" ] || continue
        printf '%s: --- last lines of %s ---\n' "$ENV_NAME" "$log" >&2
        tail -n 20 "$log" >&2
    done
    die "nothing answers '$pattern' on $host:$port: $why${line:+ (got: $line)}"
}

# Start a command detached from this script (own session, no terminal, output to LOG), so it outlives it.
start_detached() {
    local log=$1
    shift
    printf '\n=== %s: %s\n' "$(date -Is)" "$*" >>"$log"
    setsid nohup "$@" </dev/null >>"$log" 2>&1 &
    DAEMON_PID=$!
}

# A daemon started here whose pid is kept in /run/smtprun-NAME.pid: whether it still runs (the pid's
# program is EXE), and stopping it (only that pid).
tracked_running() {
    local pid
    pid=$(cat "/run/smtprun-$1.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$2" ]
}
stop_tracked() {
    local pid _
    tracked_running "$1" "$2" || { rm -f "/run/smtprun-$1.pid"; return 0; }
    pid=$(cat "/run/smtprun-$1.pid")
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "/run/smtprun-$1.pid"
}
start_tracked() {
    local name=$1
    shift
    start_detached "$@"
    printf '%s\n' "$DAEMON_PID" >"/run/smtprun-$name.pid"
}

# Whether something listens on 127.0.0.1:PORT (TCP).
port_busy() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}
