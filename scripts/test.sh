#!/usr/bin/env bash
# The whole test run on a fresh Debian machine, as root: install what the tests need, start the
# real servers they talk to (Postfix on 127.0.0.1:25), install smtprun with its test extras, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  bash scripts/test-env.sh
else
  echo "test.sh: not root: Postfix, dnsmasq and Chromium are not set up; their tests will skip" >&2
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m ruff check runner tests
lint-imports --no-cache   # the layering in docs/architecture.md (contracts in pyproject.toml)
exec python3 -m pytest -q "$@"
