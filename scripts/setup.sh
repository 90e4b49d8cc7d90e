#!/usr/bin/env bash
# Set-up shared by the two commands: a virtualenv in .venv with movierec and its pinned
# dependencies. Quick when nothing changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}

# A real browser for the tests of the HTML reports (Debian's Chromium; needs root and apt).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Chromium for the browser tests" >&2
  (apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }) \
    || echo "setup: could not install Chromium; browser tests will say so" >&2
fi
stamp=".venv/.stamp-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing movierec and its dependencies into .venv" >&2
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -c constraints.txt -e '.[dev]'
  rm -f .venv/.stamp-*
  touch "$stamp"
fi
