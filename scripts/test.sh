#!/usr/bin/env bash
# The whole test suite: lint, types, then every test tier.
# PostgreSQL and Chromium are found or started by the test set-up itself (see docs/development.md).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh || exit 1

# Browser tests need Debian's chromium; install it when we are allowed to.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing chromium for the browser tests …"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
    echo "chromium could not be installed; browser tests will say why they skip." >&2
fi

set -e
echo "== ruff"
.venv/bin/ruff check src tests bench examples
.venv/bin/ruff format --check src tests bench examples
echo "== mypy (strict, src/)"
.venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/pytest "$@"
status=$?
# pytest exits 5 when it collected nothing; with a filter given on the command line that is
# not a failure of the suite.
if [ "$status" = 5 ] && [ "$#" -gt 0 ]; then
  echo "no test matched the given selection"
  status=0
fi
exit "$status"
