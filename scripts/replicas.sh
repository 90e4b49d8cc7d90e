#!/usr/bin/env bash
# Several `movierec serve` replicas behind nginx on this machine: start, status, restart
# (rolling, one at a time), kill (a crash drill), stop. See scripts/replicas.py for options.
#   scripts/replicas.sh start --replicas 3 --models OUT/models --port 8082
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
exec "$root/.venv/bin/python" "$root/scripts/replicas.py" "$@"
