#!/usr/bin/env bash
# Set-up shared by the two commands: a virtualenv in .venv with movierec and its pinned
# dependencies. Quick when nothing changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}

# Debian packages: a real browser for the tests of the HTML reports, and the HTTP load
# tool of the serving benchmark (needs root and apt; skipped quietly otherwise).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing ${missing[*]} from Debian's packages" >&2
  (apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 \
         && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; }) \
    || echo "setup: could not install ${missing[*]}; the tests that need them will say so" >&2
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
