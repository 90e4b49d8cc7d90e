#!/usr/bin/env bash
# Set-up shared by the two commands: a virtualenv in .venv with movierec and its pinned
# dependencies. Quick when nothing changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}

# Debian packages: a real browser for the tests of the HTML reports, the HTTP load tool
# of the HTTP benchmarks and nginx, their practical limit, and Prometheus with promtool for
# the monitoring tests, Podman for the container tests (needs root and apt; skipped quietly otherwise). nginx lives in
# /usr/sbin, which is not on every user's PATH.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# Podman with runc, and mmdebstrap for a local Debian base image: the container tests.
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
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
  # bench: the Python servers the HTTP benchmarks compare movierec's core with.
  .venv/bin/pip install --quiet -c constraints.txt -e '.[dev,bench]'
  rm -f .venv/.stamp-*
  touch "$stamp"
fi
