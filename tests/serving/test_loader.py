"""The loader's demographics come from the catalogue's cache through the one reader; with
nothing to serve yet it says why."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from movierec.catalog.cache import NOT_FOUND, OK, CacheEntry, CatalogCache
from movierec.catalog.records import UserRecord
from movierec.serving.app import RecommendationService
from movierec.serving.loader import ModelLoader
from movierec.serving.snapshot import segment_index
from movierec.vocab import OCCUPATIONS
from tests.support.serving import request


def test_demographics_follow_the_catalogue_and_survive_an_unreadable_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "catalog.sqlite"
    cache = CatalogCache(path)
    cache.write(
        [
            CacheEntry("user", 9, OK, UserRecord(9, 34, "F", "Scientist")),
            CacheEntry("user", 4, OK, UserRecord(4, None, "M", None)),
            CacheEntry("user", 6, NOT_FOUND),
        ]
    )
    cache.close()
    service = RecommendationService(tmp_path / "models", sample=0.0)
    loader = ModelLoader(service, catalogue=path)
    loader.read_catalogue()
    known = service.demographics
    assert known.user_ids.tolist() == [4, 9]
    assert known.segment(9) == segment_index(34, 1, OCCUPATIONS.index("scientist"))
    assert known.segment(4) == segment_index(-1, 0, -1)
    assert known.segment(6) is None

    path.write_bytes(b"overwritten by something that is not SQLite" * 50)
    with caplog.at_level(logging.WARNING, "movierec.serving"):
        loader.read_catalogue()
    assert service.demographics is known  # what was known keeps serving
    assert "catalogue unreadable" in caplog.text and "catalog.sqlite" in caplog.text
    service.answers.close()


def test_no_model_to_serve_is_said_once_per_cause_until_one_is_promoted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models = tmp_path / "models"
    service = RecommendationService(models, sample=0.0)
    loader = ModelLoader(service)
    with caplog.at_level(logging.WARNING, "movierec.serving"):
        assert not loader.check() and not loader.check()
        health = service.handle(request("/healthz"))
        assert health.status == 503
        assert orjson.loads(health.body)["waiting"] == f"no registry in {models} (no registry.json)"
        models.mkdir()
        (models / "registry.json").write_text('{"production": null, "versions": [], "history": []}')
        assert not loader.check()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said  # one line per cause, not one per poll
    assert "names no production version" in said[1] and "503" in said[1]
    service.answers.close()
