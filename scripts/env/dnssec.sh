#!/usr/bin/env bash
# DNSSEC test zones (tests/support/dnssec.py; tests/integration/test_dnssec.py, test_dane.py): NSD serves them on
# 127.0.0.1:5310, unbound validates them on 127.0.0.1:5311 with the test zone's own trust anchor.
#
#   dnssec.test            signed; the trust anchor (its DS is unbound's trust-anchor-file)
#   signed.dnssec.test     signed, with a DS in its parent: "secure"
#   bogus.dnssec.test      signed, with a DS, but its signatures expired in 2020: "bogus" (RFC 4035 §5.3.1)
#   unsigned.dnssec.test   delegated without a DS (the parent's NSEC proves it): "insecure"
#
# Each has an MX host mx.<zone> at 127.0.0.1 (the test Postfix) with TLSA records at _25._tcp.mx.<zone> made
# from the test certificate (scripts/test-env.sh); signed.dnssec.test has more, one mail domain per DANE case:
# ee. (3 1 1 only), ta. (2 0 1 on the CA only), wrong. (3 1 1 matching nothing), next. (3 1 1 of the current
# key and of the next one), types. (3 0 0, 3 0 2, 3 1 0, 3 1 2), none. (no TLSA: a secure denial), tampered.
# (a 3 1 1 of the server's key put in after signing: bogus, while the MX and A records stay secure).
# Nothing here touches the machine's resolver (/etc/resolv.conf) or the packages' own daemons: both servers run
# with this script's configs, on loopback only. Safe to re-run: zones are re-signed when their source or the
# certificate changes, or when the signatures are older than 30 days.
set -euo pipefail
ENV_NAME=dnssec
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"

NSD_PORT=5310         # tests/support/dnssec.py says the same
UNBOUND_PORT=5311
DIR=$CERT_DIR/dnssec  # keys, zones, configs
RUN=/var/lib/smtprun-dnssec
NSD_LOG=/var/log/smtprun-nsd.log
UNBOUND_LOG=/var/log/smtprun-unbound.log
PARENT=dnssec.test
CHILDREN=(signed bogus unsigned)

# --- packages (their own daemons never started: policy-rc.d says no) ---------------------------------------
need=()
for package in nsd unbound ldnsutils; do dpkg -s "$package" >/dev/null 2>&1 || need+=("$package"); done
if ((${#need[@]})); then
    log "installing ${need[*]}"
    policy=/usr/sbin/policy-rc.d policy_made=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && policy_made=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null ||
        { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
    [ -n "$policy_made" ] && rm -f "$policy"
fi
[ -s "$CERT_DIR/server.pem" ] && [ -s "$CERT_DIR/ca.pem" ] || die "no test certificate in $CERT_DIR (scripts/test-env.sh)"
mkdir -p "$DIR/keys" "$DIR/zones" "$RUN"

# --- keys: one signing key per zone (ECDSA P-256, RFC 6605), kept across runs -----------------------------
key_of() {  # the key file base name (Kzone.+013+tag) of ZONE, made the first time
    local zone=$1 base
    base=$(cd "$DIR/keys" && ls "K$zone.+013+"*.key 2>/dev/null | head -n 1)
    if [ -z "$base" ]; then
        base=$(cd "$DIR/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$zone").key
        log "signing key for $zone: ${base%.key}" >&2
    fi
    printf '%s\n' "${base%.key}"
}
# The next key of the rollover fixture: published as "3 1 1", never used by the server.
[ -s "$DIR/keys/next-key.pem" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$DIR/keys/next-key.pem" 2>/dev/null

# --- TLSA association data from the test certificate (RFC 6698 §2.1) --------------------------------------
spki() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER; }
cert_der() { openssl x509 -in "$1" -outform DER; }
hexof() { od -An -v -tx1 | tr -d ' \n'; }
digest() { openssl dgst "-$1" -binary | hexof; }
LEAF_SPKI_256=$(spki "$CERT_DIR/server.pem" | digest sha256)
LEAF_SPKI_512=$(spki "$CERT_DIR/server.pem" | digest sha512)
LEAF_SPKI_FULL=$(spki "$CERT_DIR/server.pem" | hexof)
LEAF_CERT_FULL=$(cert_der "$CERT_DIR/server.pem" | hexof)
LEAF_CERT_512=$(cert_der "$CERT_DIR/server.pem" | digest sha512)
CA_SPKI_256=$(spki "$CERT_DIR/ca.pem" | digest sha256)
CA_CERT_256=$(cert_der "$CERT_DIR/ca.pem" | digest sha256)
NEXT_SPKI_256=$(openssl pkey -in "$DIR/keys/next-key.pem" -pubout -outform DER | digest sha256)
OTHER_256=$(printf 'a key no server has' | digest sha256)

soa() { printf '$ORIGIN %s.\n$TTL 300\n@ SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n@ NS ns.%s.\n' \
    "$1" "$PARENT" "$PARENT" "$PARENT"; }
mail_host() {  # NAME TLSA-RDATA...: a mail domain NAME ("@": the zone), its MX host mx.NAME at 127.0.0.1 and
    local owner=$1 host=mx.$1   # the TLSA records of that host's port 25
    shift
    [ "$owner" != @ ] || host=mx
    printf '%s MX 10 %s\n%s A 127.0.0.1\n' "$owner" "$host" "$host"
    for rdata in "$@"; do printf '_25._tcp.%s TLSA %s\n' "$host" "$rdata"; done
}
child_source() {
    local zone=$1.$PARENT
    soa "$zone"
    mail_host @ "3 1 1 $LEAF_SPKI_256" "2 1 1 $CA_SPKI_256"
    [ "$1" = signed ] || return 0
    mail_host ee "3 1 1 $LEAF_SPKI_256"
    mail_host ta "2 0 1 $CA_CERT_256"
    mail_host wrong "3 1 1 $OTHER_256"
    mail_host next "3 1 1 $LEAF_SPKI_256" "3 1 1 $NEXT_SPKI_256"
    mail_host types "3 0 0 $LEAF_CERT_FULL" "3 0 2 $LEAF_CERT_512" "3 1 0 $LEAF_SPKI_FULL" "3 1 2 $LEAF_SPKI_512"
    mail_host none
    mail_host tampered "3 1 1 $OTHER_256"   # changed to the server's key after signing (below): bogus
}

# --- zones: children first, then the parent with their DS records ------------------------------------------
signed_changed=0
sign() {  # ZONE VALIDITY-ARGS...: sign $DIR/zones/ZONE.zone into ZONE.signed when it or its source changed
    local zone=$1 key
    shift
    key=$(key_of "$zone")
    if [ -s "$DIR/zones/$zone.signed" ] && [ "$DIR/zones/$zone.signed" -nt "$DIR/zones/$zone.zone" ] &&
        [ -z "$(find "$DIR/zones/$zone.signed" -mtime +30)" ]; then
        return 0
    fi
    ldns-signzone "$@" -f "$DIR/zones/$zone.signed" "$DIR/zones/$zone.zone" "$DIR/keys/$key" ||
        die "ldns-signzone failed for $zone"
    signed_changed=1
    log "signed $zone"
}
write_zone() {  # ZONE: standard input becomes $DIR/zones/ZONE.zone if it differs (its mtime kept otherwise)
    CHANGED=0
    put_text "$DIR/zones/$1.zone" 0644 0:0
}
for child in "${CHILDREN[@]}"; do
    child_source "$child" | write_zone "$child.$PARENT"
done
now=$(date -u +%s)
sign "signed.$PARENT" -i "$(date -u -d @$((now - 86400)) +%Y%m%d%H%M%S)" -e "$(date -u -d @$((now + 90 * 86400)) +%Y%m%d%H%M%S)"
# A record edited after signing: its RRSIG no longer matches (bogus, RFC 4035 §5.3.3); its MX and A stay secure
sed -i "/^_25\._tcp\.mx\.tampered\./s/$OTHER_256/$LEAF_SPKI_256/I" "$DIR/zones/signed.$PARENT.signed"
sign "bogus.$PARENT" -i 20200101000000 -e 20200201000000   # expired long ago: bogus, never insecure
# unsigned.dnssec.test is served as written
{
    soa "$PARENT"
    printf 'ns A 127.0.0.1\n'
    for child in "${CHILDREN[@]}"; do
        printf '%s NS ns.%s.\n' "$child" "$PARENT"
        [ "$child" = unsigned ] || sed -n 's/^\([^ \t]*\)[ \t].*\(DS[ \t].*\)$/'"$child"' \2/p' \
            "$DIR/keys/$(key_of "$child.$PARENT").ds"
    done
} | write_zone "$PARENT"
sign "$PARENT" -i "$(date -u -d @$((now - 86400)) +%Y%m%d%H%M%S)" -e "$(date -u -d @$((now + 90 * 86400)) +%Y%m%d%H%M%S)"
cp "$DIR/keys/$(key_of "$PARENT").ds" "$DIR/trust-anchor.ds.new"
if ! cmp -s "$DIR/trust-anchor.ds.new" "$DIR/trust-anchor.ds" 2>/dev/null; then signed_changed=1; fi
mv "$DIR/trust-anchor.ds.new" "$DIR/trust-anchor.ds"

# --- NSD: the authoritative server -------------------------------------------------------------------------
{
    printf 'server:\n  ip-address: 127.0.0.1@%s\n  do-ip6: no\n  username: ""\n  chroot: ""\n' "$NSD_PORT"
    printf '  zonesdir: "%s"\n  database: ""\n  zonelistfile: "%s/zone.list"\n  xfrdfile: "%s/xfrd.state"\n' \
        "$DIR/zones" "$RUN" "$RUN"
    printf '  xfrdir: "%s"\n  pidfile: "%s/nsd.pid"\n  logfile: "%s"\n  server-count: 1\n  verbosity: 1\n' \
        "$RUN" "$RUN" "$NSD_LOG"
    printf 'remote-control:\n  control-enable: no\n'
    printf 'zone:\n  name: "%s"\n  zonefile: "%s.signed"\n' "$PARENT" "$PARENT"
    printf 'zone:\n  name: "signed.%s"\n  zonefile: "signed.%s.signed"\n' "$PARENT" "$PARENT"
    printf 'zone:\n  name: "bogus.%s"\n  zonefile: "bogus.%s.signed"\n' "$PARENT" "$PARENT"
    printf 'zone:\n  name: "unsigned.%s"\n  zonefile: "unsigned.%s.zone"\n' "$PARENT" "$PARENT"
} | { CHANGED=0; put_text "$DIR/nsd.conf" 0644 0:0; nsd_conf_changed=$CHANGED; }
nsd-checkconf "$DIR/nsd.conf" || die "nsd-checkconf rejects $DIR/nsd.conf"

# --- unbound: the validating resolver, asking NSD only -----------------------------------------------------
{
    printf 'server:\n  interface: 127.0.0.1@%s\n  port: %s\n  do-ip6: no\n  username: ""\n  chroot: ""\n' \
        "$UNBOUND_PORT" "$UNBOUND_PORT"
    printf '  directory: "%s"\n  pidfile: "%s/unbound.pid"\n  logfile: "%s"\n  use-syslog: no\n' \
        "$RUN" "$RUN" "$UNBOUND_LOG"
    printf '  access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n  num-threads: 1\n'
    printf '  trust-anchor-file: "%s/trust-anchor.ds"\n  module-config: "validator iterator"\n' "$DIR"
    printf '  ede: yes\n  val-log-level: 2\n  verbosity: 1\n  cache-max-ttl: 5\n  cache-max-negative-ttl: 5\n'
    printf '  qname-minimisation: no\n  local-zone: "test." nodefault\n'
    # Every other name goes to NSD too, which refuses it: nothing is ever asked beyond loopback.
    printf 'stub-zone:\n  name: "%s"\n  stub-addr: 127.0.0.1@%s\n' "$PARENT" "$NSD_PORT"
    printf 'stub-zone:\n  name: "."\n  stub-addr: 127.0.0.1@%s\n' "$NSD_PORT"
    printf 'remote-control:\n  control-enable: no\n'
} | { CHANGED=0; put_text "$DIR/unbound.conf" 0644 0:0; unbound_conf_changed=$CHANGED; }
unbound-checkconf "$DIR/unbound.conf" >/dev/null || die "unbound-checkconf rejects $DIR/unbound.conf"

answers_dns() {  # PORT NAME TYPE: whether the server on 127.0.0.1:PORT answers (any code but a timeout)
    timeout 3 dig +tries=1 +time=1 -p "$1" @127.0.0.1 "$2" "$3" >/dev/null 2>&1
}
NSD_BIN=$(readlink -f "$(command -v nsd || echo /usr/sbin/nsd)")
UNBOUND_BIN=$(readlink -f "$(command -v unbound || echo /usr/sbin/unbound)")
if [ "$signed_changed$nsd_conf_changed$unbound_conf_changed" != 000 ]; then
    stop_tracked unbound "$UNBOUND_BIN"
    stop_tracked nsd "$NSD_BIN"
fi
if ! tracked_running nsd "$NSD_BIN"; then
    port_busy "$NSD_PORT" && die "127.0.0.1:$NSD_PORT is taken by another program"
    start_tracked nsd "$NSD_LOG" "$NSD_BIN" -d -c "$DIR/nsd.conf"
fi
if ! tracked_running unbound "$UNBOUND_BIN"; then
    start_tracked unbound "$UNBOUND_LOG" "$UNBOUND_BIN" -d -c "$DIR/unbound.conf"
fi

# --- ready: each zone answers as it should ------------------------------------------------------------------
flags() { dig +tries=1 +time=2 +dnssec -p "$UNBOUND_PORT" @127.0.0.1 "$1" MX 2>/dev/null |
    sed -n 's/^;; ->>HEADER<<- opcode: [A-Z]*, status: \([A-Z]*\),.*/\1/p; s/^;; flags: \([a-z ]*\);.*/\1/p' | tr '\n' ' '; }
for _ in $(seq 50); do
    answers_dns "$NSD_PORT" "$PARENT" SOA && answers_dns "$UNBOUND_PORT" "$PARENT" SOA && break
    sleep 0.2
done
secure=$(flags "signed.$PARENT") bogus=$(flags "bogus.$PARENT") insecure=$(flags "unsigned.$PARENT")
[[ "$secure" == NOERROR*" ad"* ]] || { tail -n 20 "$UNBOUND_LOG" "$NSD_LOG" >&2; die "signed.$PARENT is not secure: $secure"; }
[[ "$bogus" == SERVFAIL* ]] || die "bogus.$PARENT is not bogus: $bogus"
[[ "$insecure" == NOERROR* && "$insecure" != *" ad"* ]] || die "unsigned.$PARENT is not insecure: $insecure"
log "NSD on 127.0.0.1:$NSD_PORT, unbound (validating, anchor $DIR/trust-anchor.ds) on 127.0.0.1:$UNBOUND_PORT:" \
    "signed.$PARENT secure, bogus.$PARENT bogus, unsigned.$PARENT insecure"
