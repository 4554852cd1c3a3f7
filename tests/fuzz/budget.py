"""How much fuzzing a run does: a fixed, reproducible budget in CI, a much larger one on request.

    SMTPRUN_FUZZ=long python3 -m pytest tests/fuzz      # or: python3 -m pytest tests/fuzz --fuzz-long
    SMTPRUN_FUZZ_SEEDS=17,42 python3 -m pytest tests/fuzz/test_library_vs_garbage.py   # replay garbage seeds

The CI profile is derandomized (the same examples every run, no example database), so a red CI run
is red again on a laptop. The long profile draws fresh random examples each run; Hypothesis prints
the failing example and a `@reproduce_failure` blob, and the garbage-server tests print their seed.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

__all__ = ["GARBAGE_SEEDS", "LONG", "fuzz_settings"]

LONG = os.environ.get("SMTPRUN_FUZZ", "").strip().lower() == "long"

_COMMON = {
    "deadline": None,  # the tests bound each example's time themselves (SIGALRM), with a clearer message
    "print_blob": True,
    # No explain phase: it traces every line (sys.settrace), which makes a 70 KB YAML scalar take past the
    # per-example time bound and turns a real failure into a reported "hang".
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                              HealthCheck.function_scoped_fixture],
}
settings.register_profile("smtprun-fuzz-ci", derandomize=True, database=None, **_COMMON)
settings.register_profile("smtprun-fuzz-long", derandomize=False, **_COMMON)
PROFILE = settings.get_profile("smtprun-fuzz-long" if LONG else "smtprun-fuzz-ci")


def fuzz_settings(ci: int, long: int) -> settings:
    """The active profile with this test's number of examples: `ci` in CI, `long` with SMTPRUN_FUZZ=long."""
    return settings(PROFILE, max_examples=long if LONG else ci)


def _seeds() -> list[int]:
    given = os.environ.get("SMTPRUN_FUZZ_SEEDS", "").strip()
    if given:
        return [int(s) for s in given.replace(",", " ").split()]
    if LONG:
        start = int(os.environ.get("SMTPRUN_FUZZ_SEED_START", "1000"))
        return list(range(start, start + int(os.environ.get("SMTPRUN_FUZZ_SEED_COUNT", "40"))))
    return list(range(1, 9))


GARBAGE_SEEDS = _seeds()  # seeds of the garbage server, per library plan
