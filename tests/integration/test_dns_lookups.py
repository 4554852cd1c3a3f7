"""One run's DNS (runner.net.resolver.Lookups): each name and type asked once, a cap on queries in flight,
and a timeout that names the name, the record type, the name server and how long it waited."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import pytest

from runner.net.dns import DnsError, Lookups, ResolverConfig, resolve_host, resolve_mx
from runner.tools.server import EmbeddedServer
from tests.support.cli import run, write_plan
from tests.support.dnsserver import DnsServer

DOMAINS = 20
PLAN = """\
name: fleet
target: {{port: {port}, timeout: 5, nameserver: "127.0.0.1:{dns}"}}
steps:
  - expect: 220
  - send: EHLO smtprun.test
    expect: 250
  - send: QUIT
    expect: 221
"""


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as s:
        yield s


def queries(log_text: str, rdtype: str, name: str) -> int:
    """How often dnsmasq logged a query of name/rdtype ("query[A] mx.shared.test from 127.0.0.1"), in any case."""
    return len(re.findall(rf"query\[{rdtype}\] {re.escape(name)} from ", log_text, re.IGNORECASE))


def run_mx_fleet(tmp_path, server, dns, count: int) -> tuple[int, str, str, list[dict]]:
    """The plan over `count` targets mx:d0.fleet.test, mx:d1.fleet.test, ... asking `dns`: the exit status, the
    output and each case's JSON."""
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"mx:d{i}.fleet.test\n" for i in range(count)))
    plan = write_plan(tmp_path, PLAN.format(port=server.port, dns=dns.port))
    code, out, err = run(plan, "--targets", str(targets), "--json", str(tmp_path / "r.json"), "--no-report")
    cases = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"] if code in (0, 1) else []
    return code, out, err, cases


def test_a_fleet_sharing_one_mail_host_asks_for_its_addresses_once(tmp_path, server, dnsmasq_factory):
    dns = dnsmasq_factory(*(f"--mx-host=d{i}.fleet.test,mx.shared.test,10" for i in range(DOMAINS)),
                          "--host-record=mx.shared.test,127.0.0.1")
    code, out, err, cases = run_mx_fleet(tmp_path, server, dns, DOMAINS)
    assert code == 0, out + err
    assert [c["status"] for c in cases] == ["passed"] * DOMAINS
    assert all("   10 mx.shared.test: 127.0.0.1" in c["notes"] for c in cases)
    log = dns.log.read_text(errors="replace")
    assert [queries(log, "MX", f"d{i}.fleet.test") for i in range(DOMAINS)] == [1] * DOMAINS
    assert (queries(log, "A", "mx.shared.test"), queries(log, "AAAA", "mx.shared.test")) == (1, 1)


def test_lookups_of_one_name_under_way_at_once_share_one_query(dnsmasq_factory):
    dns = dnsmasq_factory("--mx-host=a.test,mx.shared.test,10", "--mx-host=b.test,mx.shared.test,20",
                          "--host-record=mx.shared.test,127.0.0.1,::1")
    config = ResolverConfig(nameservers=dns.nameservers, timeout=2.0)

    async def resolve() -> tuple:
        async with Lookups() as lookups:
            found = await asyncio.gather(resolve_mx("a.test", config, lookups), resolve_mx("b.test", config, lookups),
                                         resolve_host("MX.Shared.Test.", config, lookups))
            return found, lookups.asked

    (a, b, host), asked = asyncio.run(resolve())
    assert a.exchangers[0].addresses == b.exchangers[0].addresses == host == ("127.0.0.1", "::1")
    assert asked == 4  # two MX, then one A and one AAAA for the host the three lookups share
    log = dns.log.read_text(errors="replace")
    assert (queries(log, "A", "mx.shared.test"), queries(log, "AAAA", "mx.shared.test")) == (1, 1)


def test_a_failure_is_shared_too_and_named_for_every_domain(dnsmasq_factory):
    dns = dnsmasq_factory("--mx-host=a.test,gone.test,10", "--mx-host=b.test,gone.test,10")
    config = ResolverConfig(nameservers=dns.nameservers, timeout=2.0)

    async def resolve() -> list:
        async with Lookups() as lookups:
            return await asyncio.gather(resolve_mx("a.test", config, lookups), resolve_mx("b.test", config, lookups))

    for found in asyncio.run(resolve()):
        assert [(e.host, e.addresses, e.error) for e in found.exchangers] == [
            ("gone.test", (), "NXDOMAIN for gone.test A/AAAA")]
    assert queries(dns.log.read_text(errors="replace"), "A", "gone.test") == 1


def test_queries_in_flight_are_capped_and_the_rest_wait_their_turn():
    """Six lookups of names that are never answered, three at a time: the server sees only three until the
    first three time out, and every one of the six still gets its own full timeout."""
    names = [f"s{i}.silent.test" for i in range(6)]
    with DnsServer({name + ".": {"A": ["127.0.0.1"]} for name in names}) as server:
        server.silent.update(name + "." for name in names)
        config = ResolverConfig(nameservers=server.nameservers, timeout=3.0, families=("ipv4",))

        async def resolve() -> tuple[list, set[str], int]:
            async with Lookups(in_flight=3) as lookups:
                pending = asyncio.gather(*(resolve_host(n, config, lookups) for n in names), return_exceptions=True)
                while len({q[0] for q in server.queries}) < 3:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.3)  # well inside the 3 s the first three wait for their answers
                seen_early = {q[0] for q in server.queries}
                return await pending, seen_early, lookups.peak

        results, seen_early, peak = asyncio.run(resolve())
    assert seen_early == {name + "." for name in names[:3]} and peak == 3
    assert [str(r) for r in results] == [
        f"DNS timeout after 3s for {name} A (name server 127.0.0.1:{server.port})" for name in names]
    assert {q[0] for q in server.queries} == {name + "." for name in names}


def test_an_address_lookup_that_times_out_names_the_type_the_server_and_the_wait(tmp_path, server):
    zone = {"example.test.": {"MX": ["10 mx1.example.test."]}, "mx1.example.test.": {"A": ["127.0.0.1"]},
            "slow6.test.": {"MX": ["10 mx.slow6.test."]}, "mx.slow6.test.": {"A": ["127.0.0.1"]}}
    with DnsServer(zone) as dns:
        dns.silent.add("mx1.example.test.")
        config = ResolverConfig(nameservers=dns.nameservers, timeout=1.0)
        (exchanger,) = asyncio.run(resolve_mx("example.test", config)).exchangers
        assert exchanger.addresses == ()
        assert exchanger.error == f"DNS timeout after 1s for mx1.example.test A/AAAA (name server 127.0.0.1:{dns.port})"

        targets = tmp_path / "targets.txt"
        targets.write_text(f"mx:example.test:{server.port}\n")
        plan = write_plan(tmp_path, PLAN.format(port=server.port, dns=dns.port).replace("timeout: 5", "dns_timeout: 1"))
        code, out, _ = run(plan, "--targets", str(targets), "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 1
    (case,) = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]
    assert case["reason"] == (f"no MX host has an address (mx1.example.test: DNS timeout after 1s for "
                              f"mx1.example.test A/AAAA (name server 127.0.0.1:{dns.port}))")
    assert case["reason"] in out
    assert case["duration"] >= 1.0  # the case took the DNS wait, though no session began
    assert f"({case['duration']:.2f}s)" in out


def test_an_ipv6_only_lookup_that_times_out_names_aaaa():
    with DnsServer({"v6.test.": {"AAAA": ["::1"]}}) as dns:
        dns.silent.add("v6.test.")
        config = ResolverConfig(nameservers=dns.nameservers, timeout=1.0, families=("ipv6",))
        with pytest.raises(DnsError, match=rf"^DNS timeout after 1s for v6.test AAAA "
                                           rf"\(name server 127.0.0.1:{dns.port}\)$"):
            asyncio.run(resolve_host("v6.test", config))


def test_a_lookup_after_the_run_ended_is_refused():
    async def late() -> None:
        lookups = Lookups()
        lookups.close()
        await lookups.query("example.test", "MX", ResolverConfig(nameservers=(("127.0.0.1", 9),)))

    with pytest.raises(DnsError, match=r"^DNS lookup of example.test MX after the run ended$"):
        asyncio.run(late())


def test_an_aaaa_timeout_beside_an_a_answer_is_reported_and_the_a_address_used(tmp_path, server):
    zone = {"example.test.": {"MX": ["10 mx1.example.test."]}, "mx1.example.test.": {"A": ["127.0.0.1"]}}
    with DnsServer(zone) as dns:
        dns.silent_types.add(("mx1.example.test", "AAAA"))
        config = ResolverConfig(nameservers=dns.nameservers, timeout=1.0)
        (exchanger,) = asyncio.run(resolve_mx("example.test", config)).exchangers
        timeout = f"DNS timeout after 1s for mx1.example.test AAAA (name server 127.0.0.1:{dns.port})"
        assert (exchanger.addresses, exchanger.error, exchanger.partly) == (("127.0.0.1",), None, timeout)

        targets = tmp_path / "targets.txt"
        targets.write_text(f"mx:example.test:{server.port}\n")
        plan = write_plan(tmp_path, PLAN.format(port=server.port, dns=dns.port).replace("timeout: 5", "dns_timeout: 1"))
        code, out, err = run(plan, "--targets", str(targets), "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    (case,) = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]
    assert f"   10 mx1.example.test: 127.0.0.1; {timeout}" in case["notes"]


def test_a_plans_mx_lookup_that_times_out_is_the_cases_time(tmp_path):
    with DnsServer({"example.test.": {"MX": ["10 mx1.example.test."]}}) as dns:
        dns.silent.add("example.test.")
        plan = write_plan(tmp_path, f"""\
name: one domain
target: {{mx: example.test, port: 25, nameserver: "127.0.0.1:{dns.port}", dns_timeout: 1}}
steps:
  - expect: 220
""")
        code, out, _ = run(plan, "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 1
    (case,) = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]
    assert case["reason"] == f"DNS timeout after 1s for example.test MX (name server 127.0.0.1:{dns.port})"
    assert case["duration"] >= 1.0 and f"({case['duration']:.2f}s)" in out


def test_mx_hosts_past_the_cap_are_named_in_the_notes(tmp_path, server):
    zone = {"many.test.": {"MX": [f"{n} mx{n}.many.test." for n in range(1, 41)]},
            **{f"mx{n}.many.test.": {"A": ["127.0.0.1"]} for n in range(1, 41)}}
    with DnsServer(zone) as dns:
        text = PLAN.format(port=server.port, dns=dns.port).replace("port:", "mx: many.test, port:", 1)
        plan = write_plan(tmp_path, text)
        code, _, err = run(plan, "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, err
    notes = json.loads((tmp_path / "r.json").read_text())["plans"][0]["notes"]
    assert notes[-1] == "(8 more MX hosts past the first 32: not looked up, not tried)"
    assert "   32 mx32.many.test: 127.0.0.1" in notes and not any("mx33." in n for n in notes)


def test_an_mx_host_left_out_of_the_route_is_said_with_the_case(tmp_path, server):
    zone = {"two.test.": {"MX": ["10 mx1.two.test.", "20 mx2.two.test."]}, "mx1.two.test.": {"A": ["127.0.0.1"]},
            "mx2.two.test.": {"A": ["127.0.0.1"]}}
    with DnsServer(zone) as dns:
        dns.silent.add("mx1.two.test.")
        text = PLAN.format(port=server.port, dns=dns.port).replace("timeout: 5,", "mx: two.test, dns_timeout: 1,")
        code, out, err = run(write_plan(tmp_path, text), "--json", str(tmp_path / "r.json"), "--no-report")
    assert code == 0, out + err
    skipped = (f"MX mx1.two.test: not tried: DNS timeout after 1s for mx1.two.test A/AAAA "
               f"(name server 127.0.0.1:{dns.port})")
    (case,) = json.loads((tmp_path / "r.json").read_text())["plans"][0]["cases"]
    assert skipped in case["notes"]
    assert f"        {skipped}\n" in out  # on the console too, under the PASS line


def test_a_fleet_of_more_mx_domains_than_are_looked_up_at_once_routes_each_its_own_way(tmp_path, server,
                                                                                         dnsmasq_factory):
    from runner.run.route import FLEET_RESOLVING

    count = FLEET_RESOLVING + 40  # some wait for a place, and every third one does not exist
    known = [i for i in range(count) if i % 3]
    dns = dnsmasq_factory(*(f"--mx-host=d{i}.fleet.test,mx{i}.fleet.test,{i % 50}" for i in known),
                          *(f"--host-record=mx{i}.fleet.test,127.0.0.1" for i in known))
    code, out, err, cases = run_mx_fleet(tmp_path, server, dns, count)
    assert code == 1, out + err
    assert [c["status"] for c in cases] == ["passed" if i % 3 else "failed" for i in range(count)]
    for i, case in enumerate(cases):
        if i % 3:
            assert f"{i % 50:>5} mx{i}.fleet.test: 127.0.0.1" in case["notes"]
        else:
            assert case["reason"].endswith(f"NXDOMAIN for d{i}.fleet.test MX"), case["reason"]
    log = dns.log.read_text(errors="replace")
    assert [queries(log, "MX", f"d{i}.fleet.test") for i in range(count)] == [1] * count
