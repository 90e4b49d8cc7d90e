#!/usr/bin/env bash
# The main job: the simulated streaming site and movierec, end to end, on embedded defaults
# (a local log file instead of Kafka, files under data/). Options go to `movierec run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/movierec run "$@"
