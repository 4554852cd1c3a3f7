"""The HTML report's view of a tls_offer step (runner/report/tlsfacts.py), from a real scan of an implicit-TLS
server whose certificate names carry markup: the suite, group and chain tables are there, the failing rows marked,
and the server's text escaped."""

from __future__ import annotations

import re

import pytest
import trustme

from runner.tools.server import EmbeddedServer, ServerTls, server_tls_context
from tests.support.cli import run, write_plan

pytestmark = pytest.mark.timeout(120)

HOSTILE = "<b>mx</b>&<script>x</script>"


def test_the_offer_is_a_table_with_failures_marked_and_server_text_escaped(tmp_path):
    ca = trustme.CA(organization_unit_name=HOSTILE)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    leaf = ca.issue_cert("localhost", common_name=HOSTILE, key_type=trustme.KeyType.RSA)
    leaf.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    with EmbeddedServer(tls=ServerTls(server_tls_context(str(tmp_path / "server.pem")), implicit=True)) as server:
        plan = write_plan(tmp_path, f"""
target: {{host: 127.0.0.1, port: {server.port}, tls: implicit, cafile: "{tmp_path / 'ca.pem'}", server_name: localhost}}
cases:
  - name: offer
    steps:
      - expect: 220
      - tls_offer: {{profile: ncsc-good}}
""")
        code, out, err = run(plan, "--report-dir", str(tmp_path / "html"), "-v")
    assert code == 1, out + err  # TLS 1.2 is offered: ncsc-good allows TLS 1.3 only
    page = next((tmp_path / "html").glob("plan-*.html")).read_text()
    assert "<h3>Step 2: the TLS offer" in page
    suites = re.search(r'<table class="offer suites">.*?</table>', page, re.S)
    assert suites and "<th class=\"num\">TLSv1.2</th><th class=\"num\">TLSv1.3</th>" in suites[0]
    failed = re.findall(r'<tr class="fail"><td class="t"><span class="badge failed">✗</span> ([^<]+)</td>', suites[0])
    assert "ECDHE-RSA-AES128-SHA256" in failed and "ECDHE-RSA-AES256-GCM-SHA384" not in failed  # CBC is below good
    groups = re.search(r'<table class="offer groups">.*?</table>', page, re.S)
    assert groups and ">X25519<" in groups[0]
    chain = re.search(r'<table class="offer chain">.*?</table>', page, re.S)
    # RFC 4514 escapes < and > with a backslash; the page escapes them again for HTML
    assert chain and r"CN=\&lt;b\&gt;mx\&lt;/b\&gt;&amp;\&lt;script\&gt;x" in chain[0].replace("<wbr>", "")
    assert "<script>x</script>" not in page and "<b>mx</b>" not in page
    assert re.search(r'<tr class="fail"><td>OCSP stapling</td><td class="t">no</td></tr>', page)  # ncsc-good asks it
    assert "finding: OCSP stapling is not offered" in out  # -v: one line per finding
