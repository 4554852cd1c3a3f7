"""runner/run/execute.py: running plans' cases, against the scripted in-memory server.

A case with `retry:` is tried again on a new connection; the result says which try passed.
"""

from __future__ import annotations

from runner.results import PASSED
from runner.run.execute import RunOptions, run_plans
from tests.support.engine import BANNER, QUIT, plan_of
from tests.support.peer import Close, Say, ScriptedServer


def test_a_retried_case_passes_on_its_second_connection():
    plan = plan_of("""\
        cases:
          - name: flaky
            retry: {times: 2, delay: 0}
            steps:
              - expect: 220
              - send: QUIT
                expect: 221
        """)
    server = ScriptedServer([Say(b"554 5.3.2 busy, try later\r\n"), Close()],
                            [BANNER, *QUIT])
    run_result = run_plans([plan], RunOptions(connect=server.connect, jobs=1))
    result = run_result.plans[0].cases[0]
    assert result.status == PASSED, result.reason
    assert len(result.attempts) == 1
    assert result.attempts[0].reason.endswith("expected 220, got 554 5.3.2 busy, try later")
    assert result.notes[-1] == "passed on try 2 of 3"
    assert len(server.connections) == 2
    server.assert_done()
