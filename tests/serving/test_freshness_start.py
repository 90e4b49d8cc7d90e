"""Where freshness starts reading: right after the batch the production model was trained
at (its provenance's data.store_batch), at the position the store recorded for it, not at
the stream's start; at the start only when nothing says where the model's data ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from movierec.ingest.config import IngestConfig
from movierec.ingest.runner import Ingestor
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.store.events import EventStore
from tests.models.contract import planted_data
from tests.support.serving import HandMadeModels, hand_made_models, provenance_of
from tests.support.waiting import wait_until

LINES = 50  # per batch
MOVIE = "the+matrix+1999"


def chunk(batch: int) -> bytes:
    """Batch `batch`'s lines: users 100*batch + i each watch a minute (2025, long past)."""
    return b"".join(
        f"2025-01-0{batch}T10:{i:02d}:00,{100 * batch + i},GET /data/m/{MOVIE}/{i}.mpg\n".encode()
        for i in range(LINES)
    )


@pytest.fixture
def stream(tmp_path: Path) -> tuple[str, Path]:
    """A local log of three batches, ingested one batch at a time; (its url, the store)."""
    log, store = tmp_path / "log", tmp_path / "store"
    log.write_bytes(chunk(1) + chunk(2) + chunk(3))
    url = f"file://{log}"
    config = IngestConfig(
        source=url, store=str(store), api="", batch_lines=LINES, catalogue_wait=0.0
    )
    assert Ingestor(config).run()["batches"] == 3
    return url, store


def production(root: Path, data: dict[str, object]) -> HandMadeModels:
    """A registry whose production model's provenance has these data fields added."""
    models = hand_made_models(root, planted_data())
    provenance = provenance_of(models.data)
    provenance["data"] = {**provenance["data"], **data}  # type: ignore[dict-item]
    version = models.registry.add(models.model, provenance)
    models.registry.promote(version, "trained at a known batch, for a test")
    return models


def test_freshness_resumes_after_the_models_last_batch(
    tmp_path: Path, stream: tuple[str, Path]
) -> None:
    url, store = stream
    models = production(tmp_path / "models", {"store": str(store), "store_batch": 2})
    service = RecommendationService(models.registry.root)
    freshness = Freshness(service, url, poll=0.05)
    assert freshness.start_position() == len(chunk(1) + chunk(2))  # the byte after batch 2
    assert freshness.started_after == 2
    freshness.start()
    try:
        wait_until(lambda: service.metrics.fresh_events >= LINES, what="batch 3's events")
    finally:
        freshness.stop()
    # Batch 3's lines, and none of the two batches the model was trained on.
    assert service.metrics.fresh_events == LINES
    assert set(freshness.recent) == {300 + i for i in range(LINES)}
    service.answers.close()


def test_the_store_given_to_serve_beats_the_provenances(
    tmp_path: Path, stream: tuple[str, Path]
) -> None:
    url, store = stream
    models = production(tmp_path / "models", {"store": "/nowhere", "store_batch": 1})
    service = RecommendationService(models.registry.root)
    assert Freshness(service, url, store=store).start_position() == len(chunk(1))
    service.answers.close()


def test_without_a_batch_or_with_another_streams_store_reading_starts_at_the_start(
    tmp_path: Path, stream: tuple[str, Path]
) -> None:
    url, store = stream
    no_batch = production(tmp_path / "a", {"store": str(store)})
    service = RecommendationService(no_batch.registry.root)
    assert Freshness(service, url).start_position() is None
    service.answers.close()
    other = production(tmp_path / "b", {"store": str(store), "store_batch": 2})
    service = RecommendationService(other.registry.root)
    freshness = Freshness(service, f"file://{tmp_path / 'another-log'}")
    assert freshness.start_position() is None and freshness.started_after is None
    service.answers.close()
    assert EventStore(store).position_after(2) == (2, len(chunk(1) + chunk(2)))
