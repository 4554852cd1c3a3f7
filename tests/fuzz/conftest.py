"""`--fuzz-long` selects the long fuzz budget (the same as SMTPRUN_FUZZ=long); see tests/fuzz/README.md."""

from __future__ import annotations

import os


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help="fuzz tests: many more examples and garbage-server seeds (same as SMTPRUN_FUZZ=long)")


def pytest_configure(config):
    if config.getoption("--fuzz-long", default=False):
        os.environ["SMTPRUN_FUZZ"] = "long"  # read by tests/fuzz/budget.py when the test modules import it
