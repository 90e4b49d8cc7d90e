#!/usr/bin/env bash
# The main job: the simulated streaming site and movierec, end to end, on embedded defaults
# (a local log file, files under data/), until Ctrl-C; a second run resumes the first.
# Options go to `movierec run`. With --kafka the log goes through a real Apache Kafka
# broker, which this script starts (once; it keeps its storage in .kafka-run/ across
# restarts, so a resumed run finds its log) unless one already answers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
for arg in "$@"; do
    if [[ "$arg" == "--kafka" ]]; then
        .venv/bin/python scripts/kafka.py start --dir .kafka-run --port 19094 \
            --controller-port 19095 --keep >&2
        set -- "$@" --kafka-bootstrap 127.0.0.1:19094
        break
    fi
done
exec .venv/bin/movierec run "$@"
