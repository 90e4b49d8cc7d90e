"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker started by `scripts/kafka.py start`, from MOVIEREC_KAFKA_BOOTSTRAP.

    Skipped without it on a developer machine, but in CI a missing broker is an error:
    Kafka tests that silently skip would make a green build mean nothing.
    """
    bootstrap = os.environ.get("MOVIEREC_KAFKA_BOOTSTRAP", "").strip()
    if bootstrap:
        return bootstrap
    message = "MOVIEREC_KAFKA_BOOTSTRAP is not set (start a broker: python3 scripts/kafka.py start)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; Kafka tests must run in CI", pytrace=False)
    pytest.skip(message)
