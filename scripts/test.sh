#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: set-up, lint, a real Kafka broker (started by
# scripts/kafka.py when Java is present), then every test with coverage; after them, the
# coverage floor and the offline model report (below).
# Extra arguments go to pytest (e.g. scripts/test.sh tests/movierec_sim -k ledger).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache

kafka_dir=.kafka/test
stop_kafka() { .venv/bin/python scripts/kafka.py stop --dir "$kafka_dir" >/dev/null 2>&1 || true; }
if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
  stop_kafka
  if out=$(.venv/bin/python scripts/kafka.py start --port 19392 --controller-port 19393 --dir "$kafka_dir"); then
    trap stop_kafka EXIT
    export MOVIEREC_KAFKA_BOOTSTRAP="${out#bootstrap=}"
    echo "test: Kafka broker ready at $MOVIEREC_KAFKA_BOOTSTRAP" >&2
  elif [ -n "${CI:-}" ]; then
    echo "test: the Kafka broker could not be started; Kafka tests must run in CI" >&2
    exit 1
  fi
elif [ -n "${CI:-}" ]; then
  echo "test: CI needs Java and Maven to run the real Kafka broker" >&2
  exit 1
fi

mkdir -p reports
.venv/bin/pytest --durations=25 --cov --cov-report=term --cov-report=json:reports/coverage.json \
  --cov-report=html:reports/coverage "$@"
stop_kafka  # the tests were its only users

# After the whole suite only (no arguments): a subset's coverage says nothing against the
# floor, and the model report is CI's. The floor in .ci/coverage-floor fails a run below it
# and rises after one above it; the model report (reports/model/) trains and evaluates on a
# small simulated world when the pipeline code changed since the last one.
if [ $# -eq 0 ]; then
  .venv/bin/python scripts/coverage_floor.py
  .venv/bin/python scripts/model_report.py
fi
