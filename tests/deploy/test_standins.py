"""The Kafka stand-in reads KAFKA_* variables as the public apache/kafka image does:
prefix dropped, lower case, `_` a dot, `__` an underscore, `___` a dash."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

RUNNER = Path(__file__).resolve().parents[2] / "deploy/compose/standins/kafka_run.py"


def load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kafka_run", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("variable", "prop"),
    [
        ("KAFKA_NODE_ID", "node.id"),
        ("KAFKA_LOG_DIRS", "log.dirs"),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", "controller.quorum.voters"),
        ("KAFKA_LISTENER_NAME_CONTROLLER__SASL", "listener.name.controller_sasl"),
        ("KAFKA_CONFLUENT___SUPPORT", "confluent-support"),
    ],
)
def test_variables_become_the_public_images_properties(variable: str, prop: str) -> None:
    assert load_runner().property_name(variable) == prop


def test_jvm_variables_are_not_broker_properties() -> None:
    assert "KAFKA_HEAP_OPTS" in load_runner().NOT_PROPERTIES
