"""resolve_mx against hostile name servers: exchangers or a DnsError naming the query, in bounded time.

tests/support/dnsgarbage.py answers each query as the example says, byte for byte: random bytes; valid
answers mutated (bits flipped, cut short, wrong ID, wrong question, QR unset, absurd counts, compression
pointer loops, labels over 63 octets, names over 255); TC set with the TCP side sending garbage, nothing, or a
length prefix larger than what follows; MX answers with many records, null MX among others, exchangers that
are CNAMEs or IP literals, A records in an AAAA answer; silence; answers after the deadline. Asserted:
`resolve_mx` returns an MxResult or raises DnsError whose message names the domain, never another exception;
within two DNS timeouts (the MX query, then the exchangers' A/AAAA at once) plus a margin; queries only from
loopback; no "internal error" anywhere; bounded memory. Scripted examples below pin each finding down, and a
few examples go through the CLI with an `mx:` target.
"""

from __future__ import annotations

import asyncio
import struct
import time

from hypothesis import given
from hypothesis import strategies as st

from runner.net.dns import MAX_EXCHANGERS, DnsError, MxResult, resolve_mx
from runner.net.resolver import ResolverConfig
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.guards import Hang, loopback_only, peak_rss_mb, time_limit
from tests.support.cli import run, write_plan
from tests.support.dnsgarbage import AA, QR, RA, RD, TC, TYPES, Answer, GarbageDns, Query, labels, message, rr

DOMAIN = "example.test"
TIMEOUT = 0.25  # the DNS timeout of every example
MARGIN = 1.0  # seconds past two timeouts that a loaded machine may take
RSS_GROWTH_MB = 256

# --- what the name server says ---------------------------------------------------------------------------

EXCHANGES = ["mx1.example.test", "mx2.example.test", "alias.example.test", "127.0.0.1", "[127.0.0.1]", "::1",
             "", "mx1.example.test", "x" * 63 + ".example.test", "UPPER.Example.TEST", "a\x00b.example.test",
             "bad label.example.test", "\x1b[2J.example.test", "-.example.test"]


def _records(query: Query, spec: dict) -> list[bytes]:
    """The answer records of a valid reply to query, as spec says (by query type)."""
    owner = labels(query.name)
    if query.qtype == TYPES["MX"]:
        # the owner compressed to the question's name (RFC 1035 §4.1.4), so 3,000 records fit one TCP message
        mx = [rr(b"\xc0\x0c", 15, struct.pack("!H", p) + labels(x)) for p, x in spec["mx"]]
        return mx * spec["repeat"]
    if query.name.startswith("alias."):  # a CNAME chain to mx1 (RFC 2181 §10.3 says an MX must not point here)
        chain, name = [], query.name
        for step in range(spec["chain"]):
            target = f"c{step}.example.test" if step < spec["chain"] - 1 else "mx1.example.test"
            chain.append(rr(labels(name), 5, labels(target)))
            name = target
        return [*chain, rr(labels(name), 1, bytes([127, 0, 0, 1]))]
    records = []
    for address in spec["addresses"]:
        if len(address) == 4 or query.qtype == TYPES["A"]:  # 4 octets in an AAAA answer: the wrong type's data
            records.append(rr(owner, 1, address[:4].ljust(4, b"\0")))
        else:
            records.append(rr(owner, 28, address.ljust(16, b"\0")))
    return records


def _valid(query: Query, spec: dict, flags: int = QR | AA | RD | RA) -> bytes:
    return message(query.id, flags, query.question, _records(query, spec), rcode=spec["rcode"])


def _mutate(wire: bytes, query: Query, mutation: tuple) -> bytes:
    kind, arg = mutation
    if kind == "flip":
        data = bytearray(wire)
        for bit in arg:
            data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
        return bytes(data)
    if kind == "cut":
        return wire[:arg % (len(wire) + 1)]
    if kind == "id":
        return struct.pack("!H", (query.id + arg) & 0xFFFF) + wire[2:]
    if kind == "question":
        return wire[:12] + labels(arg) + wire[12 + len(query.question) - 4:]
    if kind == "qr-unset":
        return wire[:2] + struct.pack("!H", struct.unpack("!H", wire[2:4])[0] & ~QR) + wire[4:]
    if kind == "counts":
        return wire[:4] + struct.pack("!HHHH", *arg) + wire[12:]
    return wire


def _hostile(query: Query, kind: str, size: int) -> bytes:
    """Answers no mutation of a valid one makes: pointer loops, labels over 63 octets, names over 255."""
    owner, head = labels(query.name), 12 + len(query.question)
    if kind == "loop":  # the exchange is a pointer to itself (RFC 1035 §4.1.4 allows only earlier offsets)
        at = head + len(owner) + 10 + 2
        exchange = struct.pack("!H", 0xC000 | at)
    elif kind == "forward":  # a pointer past the end of the message
        exchange = struct.pack("!H", 0xC000 | 0x3FFF)
    elif kind == "long-label":  # RFC 1035 §2.3.4: labels are 63 octets or less; the length byte says 64..255
        exchange = bytes([64 + size % 192]) + b"a" * (64 + size % 192) + b"\0"
    else:  # RFC 1035 §2.3.4: names are 255 octets or less
        exchange = (b"\x3f" + b"b" * 63) * (4 + size % 4) + b"\0"
    record = rr(owner, 15, struct.pack("!H", 10) + exchange)
    return message(query.id, QR | AA | RD | RA, query.question, [record])


def respond(query: Query, behaviours: dict, spec: dict) -> Answer:
    kind, arg = behaviours.get(query.qtype, behaviours["other"])
    if query.transport == "tcp":  # c-ares came back after TC: the TCP side of the behaviour
        wire = _valid(query, spec)
        if arg == "garbage":
            return Answer(tcp=spec["garbage"])
        if arg == "long-prefix":
            return Answer(tcp=struct.pack("!H", len(wire) + 100) + wire)
        if arg == "short-prefix":
            return Answer(tcp=struct.pack("!H", max(len(wire) - 5, 0)) + wire)
        if arg == "valid":
            return Answer(tcp=struct.pack("!H", len(wire)) + wire)
        return Answer()  # nothing: closed at once
    if kind == "silent":
        return Answer()
    if kind == "random":
        return Answer(udp=spec["garbage"])
    if kind == "tc":
        return Answer(udp=message(query.id, QR | AA | RD | RA | TC, query.question, []))
    if kind == "hostile":
        return Answer(udp=_hostile(query, arg, len(spec["garbage"])))
    wire = _mutate(_valid(query, spec), query, arg)
    return Answer(udp=wire, delay=TIMEOUT + 0.1 if kind == "late" else 0.0)


MUTATIONS = st.one_of(
    st.just(("none", None)),
    st.tuples(st.just("flip"), st.lists(st.integers(0, 4096), min_size=1, max_size=8)),
    st.tuples(st.just("cut"), st.integers(0, 600)),
    st.tuples(st.just("id"), st.integers(1, 0xFFFF)),
    st.tuples(st.just("question"), st.sampled_from(["other.test", "example.tesu", "", "EXAMPLE.TEST"])),
    st.just(("qr-unset", None)),
    st.tuples(st.just("counts"), st.tuples(*[st.sampled_from([0, 1, 2, 255, 0xFFFF])] * 4)),
)
BEHAVIOURS = st.one_of(
    st.tuples(st.just("answer"), MUTATIONS),
    st.tuples(st.just("answer"), st.just(("none", None))),
    st.tuples(st.just("random"), st.none()),
    st.tuples(st.just("tc"), st.sampled_from(["garbage", "nothing", "long-prefix", "short-prefix", "valid"])),
    st.tuples(st.just("hostile"), st.sampled_from(["loop", "forward", "long-label", "long-name"])),
    st.tuples(st.just("silent"), st.none()) | st.tuples(st.just("late"), st.just(("none", None))),
)
SPECS = st.fixed_dictionaries({
    "mx": st.lists(st.tuples(st.sampled_from([0, 10, 10, 20, 65535]), st.sampled_from(EXCHANGES)), max_size=6),
    "repeat": st.sampled_from([1, 1, 1, 2, 40]),
    "chain": st.integers(1, 12),
    "addresses": st.lists(st.sampled_from([bytes([127, 0, 0, 1]), bytes(16), b"\x7f\0\0\x02", b"\x20\x01" + bytes(14),
                                           bytes([10, 0, 0, 1])]), max_size=4),
    "rcode": st.sampled_from([0, 0, 0, 0, 2, 3, 5, 4, 1, 9, 15]),
    "garbage": st.binary(max_size=600),
})


# --- the property ----------------------------------------------------------------------------------------

def resolve(server: GarbageDns, timeout: float = TIMEOUT) -> MxResult | DnsError:
    """resolve_mx against server under the guards: its result or its DnsError; any other exception fails."""
    config = ResolverConfig(server.nameservers, timeout, ("ipv4", "ipv6"))
    start = time.monotonic()
    try:
        with loopback_only() as refused, time_limit(2 * timeout + MARGIN + 2, "resolve_mx"):
            try:
                outcome: MxResult | DnsError = asyncio.run(resolve_mx(DOMAIN, config))
            except DnsError as error:
                outcome = error
    except Hang as hang:
        raise AssertionError(f"{hang}; queries: {server.queries}") from None
    elapsed = time.monotonic() - start
    assert not refused, refused
    assert server.peers <= {"127.0.0.1"}, server.peers
    assert elapsed < 2 * timeout + MARGIN, f"resolve_mx took {elapsed:.2f}s with a {timeout}s DNS timeout"
    if isinstance(outcome, DnsError):
        text = str(outcome)
        assert DOMAIN in text.lower(), text
        assert "internal error" not in text, text
    else:
        for exchanger in outcome.exchangers:
            for note in (exchanger.error, exchanger.partly):
                assert "internal error" not in (note or ""), note
            assert exchanger.addresses or exchanger.error, exchanger
    return outcome


@fuzz_settings(ci=25, long=1000)
@given(behaviours=st.fixed_dictionaries({TYPES["MX"]: BEHAVIOURS, TYPES["A"]: BEHAVIOURS,
                                          TYPES["AAAA"]: BEHAVIOURS, "other": BEHAVIOURS}), spec=SPECS)
def test_resolve_mx_under_hostile_answers(behaviours, spec):
    rss = peak_rss_mb()
    with GarbageDns(lambda q: respond(q, behaviours, spec)) as server:
        resolve(server)
    assert peak_rss_mb() - rss < RSS_GROWTH_MB


# --- scripted examples -----------------------------------------------------------------------------------

def scripted(mx: list[tuple[int, str]], **spec_overrides) -> dict:
    spec = {"mx": mx, "repeat": 1, "chain": 3, "addresses": [bytes([127, 0, 0, 1])], "rcode": 0, "garbage": b""}
    return {**spec, **spec_overrides}


ANSWER = ("answer", ("none", None))


def test_thousands_of_mx_records_over_tcp_resolve_in_bounded_time():
    spec = scripted([(10, "mx1.example.test"), (20, "mx2.example.test")], repeat=1000)
    behaviours = {TYPES["MX"]: ("tc", "valid"), "other": ANSWER}
    with GarbageDns(lambda q: respond(q, behaviours, spec)) as server:
        found = resolve(server)
    assert isinstance(found, MxResult), found
    assert [ex.host for ex in found.exchangers] == ["mx1.example.test", "mx2.example.test"]  # each asked once


def test_null_mx_among_others_is_refused_by_name():
    spec = scripted([(0, ""), (10, "mx1.example.test")])
    with GarbageDns(lambda q: respond(q, {"other": ANSWER}, spec)) as server:
        error = resolve(server)
    assert str(error) == ("null MX (RFC 7505): example.test accepts no mail "
                          "(it also lists other MX records, which RFC 7505 §3 forbids)")


def test_silence_for_aaaa_keeps_the_a_answer():
    spec = scripted([(10, "mx1.example.test")])
    behaviours = {TYPES["AAAA"]: ("silent", None), "other": ANSWER}
    with GarbageDns(lambda q: respond(q, behaviours, spec)) as server:
        found = resolve(server)
    [ex] = found.exchangers
    assert ex.addresses == ("127.0.0.1",)
    assert ex.partly == (f"DNS timeout after {TIMEOUT:g}s for mx1.example.test AAAA "
                         f"(name server 127.0.0.1:{server.port})")


def test_late_mx_answer_is_a_timeout():
    spec = scripted([(10, "mx1.example.test")])
    behaviours = {TYPES["MX"]: ("late", ("none", None)), "other": ANSWER}
    with GarbageDns(lambda q: respond(q, behaviours, spec)) as server:
        error = resolve(server)
    assert str(error) == f"DNS timeout after {TIMEOUT:g}s for example.test MX (name server 127.0.0.1:{server.port})"


CLI_PLAN = """\
target: {{mx: example.test, port: 9, timeout: 2, dns_timeout: {timeout}, nameserver: "127.0.0.1:{dns}"}}
steps:
  - expect: 220
"""


def test_cli_mx_target_against_hostile_answers(tmp_path):
    """A few hostile answers through `smtprun PLAN` with an mx: target: exit 1, a named reason, no traceback."""
    mx1 = [(10, "mx1.example.test")]
    cases = [({TYPES["MX"]: ("random", None), "other": ANSWER}, scripted([], garbage=b"\xff" * 40),
              "DNS error for example.test MX: misformatted dns reply"),
             ({TYPES["MX"]: ("hostile", "loop"), "other": ANSWER}, scripted([]),
              "DNS error for example.test MX: misformatted dns reply"),
             ({TYPES["MX"]: ("tc", "long-prefix"), "other": ANSWER}, scripted(mx1),
              f"DNS timeout after {TIMEOUT:g}s for example.test MX"),
             ({"other": ANSWER}, scripted([(10, "127.0.0.1"), (20, "alias.example.test")]),
              "cannot connect to alias.example.test [127.0.0.1]:9"),
             ({"other": ANSWER}, scripted([(10, "127.0.0.1")]),
              "no MX host has an address (127.0.0.1: MX target 127.0.0.1 is an IP address, not a host name "
              "(RFC 5321 §5.1); not used)")]
    for index, (behaviours, spec, expected) in enumerate(cases):
        with GarbageDns(lambda q, b=behaviours, s=spec: respond(q, b, s)) as server, loopback_only() as refused:
            plan = write_plan(tmp_path, CLI_PLAN.format(timeout=TIMEOUT, dns=server.port))
            start = time.monotonic()
            code, out, err = run(plan, "--report-dir", str(tmp_path / f"reports{index}"))
            elapsed = time.monotonic() - start
        assert code == 1, out + err
        assert "Traceback" not in out + err and "internal error" not in out + err, out + err
        assert expected in out, out
        assert not refused and server.peers <= {"127.0.0.1"}
        assert elapsed < 2 * TIMEOUT + 2 + MARGIN, elapsed


# finding 1: 2,000 copies of two MX records gave 2,000 exchangers, so a route tried mx1 1,000 times and an
# `all_mx` target made 2,000 jobs per case. A repeated record is one record (RFC 2181 §5): each host once.
def test_repeated_mx_records_are_one_exchanger_each():
    spec = scripted([(10, "mx1.example.test"), (20, "MX1.example.test"), (10, "mx2.example.test")], repeat=3)
    with GarbageDns(lambda q: respond(q, {"other": ANSWER}, spec)) as server:
        found = resolve(server)
    assert sorted((ex.preference, ex.host) for ex in found.exchangers) == [(10, "mx1.example.test"),
                                                                           (10, "mx2.example.test")]


# finding 2: 400 distinct exchangers, all silent, meant 800 A/AAAA queries 64 at a time: 13 DNS timeouts in a
# row (over a minute at the default 5 s). The first MAX_EXCHANGERS are looked up; the rest are counted.
def test_hundreds_of_silent_exchangers_take_two_timeouts_not_thirteen():
    spec = scripted([(i % 7, f"mx{i}.example.test") for i in range(400)])
    behaviours = {TYPES["MX"]: ("tc", "valid"), "other": ("silent", None)}
    with GarbageDns(lambda q: respond(q, behaviours, spec)) as server:
        found = resolve(server)
    assert len(found.exchangers) == MAX_EXCHANGERS and found.omitted == 400 - MAX_EXCHANGERS
    assert [ex.preference for ex in found.exchangers] == sorted(ex.preference for ex in found.exchangers)
    assert all(ex.error.startswith(f"DNS timeout after {TIMEOUT:g}s for {ex.host} ") for ex in found.exchangers)


# finding 3: an MX naming an IP address was looked up as a name, and the name server's answer for "127.0.0.1"
# used. RFC 5321 §5.1 (and RFC 2181 §10.3): an MX names a host; like Postfix, smtprun does not use it.
def test_an_mx_naming_an_ip_address_is_not_used():
    spec = scripted([(10, "127.0.0.1"), (20, "[127.0.0.1]"), (30, "::1"), (40, "mx1.example.test")])
    with GarbageDns(lambda q: respond(q, {"other": ANSWER}, spec)) as server:
        found = resolve(server)
    assert [(ex.host, ex.addresses, ex.error) for ex in found.exchangers] == [
        ("127.0.0.1", (), "MX target 127.0.0.1 is an IP address, not a host name (RFC 5321 §5.1); not used"),
        ("[127.0.0.1]", (), "MX target [127.0.0.1] is an IP address, not a host name (RFC 5321 §5.1); not used"),
        ("::1", (), "MX target ::1 is an IP address, not a host name (RFC 5321 §5.1); not used"),
        ("mx1.example.test", ("127.0.0.1",), None)]
    assert {q.name for q in server.queries} == {"example.test", "mx1.example.test"}


# finding 4: c-ares takes a 257-octet exchange name off the wire, and then asked for its addresses. RFC 1035
# §2.3.4: 255 octets at most.
def test_an_mx_name_over_255_octets_is_not_used():
    behaviours = {TYPES["MX"]: ("hostile", "long-name"), "other": ANSWER}
    with GarbageDns(lambda q: respond(q, behaviours, scripted([]))) as server:
        found = resolve(server)
    [ex] = found.exchangers
    assert ex.error == f"MX target {'b' * 40}... is 257 octets long, over the 255 RFC 1035 §2.3.4 allows; not used"
    assert ex.addresses == () and [q.name for q in server.queries] == ["example.test"]


def test_pointer_loops_and_long_labels_fail_the_mx_query_by_name():
    for kind in ("loop", "forward", "long-label"):  # RFC 1035 §4.1.4 pointers, §2.3.4 labels
        with GarbageDns(lambda q, k=kind: respond(q, {TYPES["MX"]: ("hostile", k), "other": ANSWER},
                                                  scripted([]))) as server:
            error = resolve(server)
        assert str(error) == "DNS error for example.test MX: misformatted dns reply", kind


def test_an_mx_that_is_a_cname_is_followed():
    """RFC 2181 §10.3 says an MX must not name an alias; senders (Postfix, Exim) follow it all the same, and so
    does smtprun: the exchanger keeps the name the MX gave, with the chain's final addresses."""
    with GarbageDns(lambda q: respond(q, {"other": ANSWER}, scripted([(10, "alias.example.test")], chain=5))) as s:
        found = resolve(s)
    assert [(ex.host, ex.addresses) for ex in found.exchangers] == [("alias.example.test", ("127.0.0.1",))]


def test_a_records_in_an_aaaa_answer_are_not_addresses():
    """An AAAA answer holding only A records (4-octet data) has no AAAA record: IPv6 only, no address."""
    spec = scripted([(10, "mx1.example.test")], addresses=[bytes([127, 0, 0, 1])])
    with GarbageDns(lambda q: respond(q, {"other": ANSWER}, spec)) as server:
        config = ResolverConfig(server.nameservers, TIMEOUT, ("ipv6",))
        found = asyncio.run(resolve_mx(DOMAIN, config))
    assert [(ex.addresses, ex.error) for ex in found.exchangers] == [((), "no AAAA record for mx1.example.test")]
