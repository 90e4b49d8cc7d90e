#!/usr/bin/env bash
# Set-up shared by the two commands: a virtualenv in .venv with movierec and its pinned
# dependencies. Quick when nothing changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
stamp=".venv/.stamp-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing movierec and its dependencies into .venv" >&2
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -c constraints.txt -e '.[dev]'
  rm -f .venv/.stamp-*
  touch "$stamp"
fi
