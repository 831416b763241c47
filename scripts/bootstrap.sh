#!/usr/bin/env bash
# Builds .venv with ordermill and its development tools, pinned by requirements.lock.
# Re-running is cheap: nothing is reinstalled unless pyproject.toml or the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON="$candidate"
      break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "ordermill needs Python 3.11 or newer; none was found on PATH." >&2
  exit 1
fi

stamp=.venv/.ordermill-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt requirements.lock ]; then
  exit 0
fi

echo "Setting up .venv with $($PYTHON --version) …"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -c requirements.lock -e '.[dev]'
touch "$stamp"
echo "Ready: .venv/bin/ordermill"
