"""Serving without the simulation: a registry of tiny models fitted on hand-made data, the
service's snapshot built from it by the real loader code, and requests made by hand; plus
the handle on a real service on loopback used by the server tests."""

from __future__ import annotations

import contextlib
import http.client
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from movierec.catalog.cache import OK, CacheEntry, CatalogCache
from movierec.catalog.records import UserRecord
from movierec.http.messages import Request
from movierec.http.server import ServerThread
from movierec.models.base import Recommender, TrainingData
from movierec.models.coldstart import ColdStartRecommender
from movierec.models.itemknn import ItemKNNRecommender
from movierec.registry.versions import Registry
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.serving.loader import ModelLoader
from movierec.serving.snapshot import Snapshot, build


@dataclass
class Running:
    """The real service on loopback, with the threads that feed it."""

    service: RecommendationService
    loader: ModelLoader
    server: ServerThread
    models: Path
    log: Path
    freshness: Freshness | None

    @property
    def port(self) -> int:
        return self.server.port

    def get(self, path: str, method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            conn.close()


# A user the catalogue knows but the simulated site never saw, so no model knows them
# either: the serving tests' guaranteed case of a fallback by demographic segment.
CATALOGUED_STRANGER = UserRecord(1_900_000, 40, "F", "writer")


def catalogue_with_a_stranger(source: Path, copy: Path) -> Path:
    """A copy of the store's catalogue with CATALOGUED_STRANGER added to it."""
    with (
        contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as original,
        contextlib.closing(sqlite3.connect(copy)) as duplicate,
    ):
        original.backup(duplicate)
    cache = CatalogCache(copy)
    try:
        user = CATALOGUED_STRANGER
        cache.write([CacheEntry("user", user.user_id, OK, record=user, fetched_at=0.0)])
    finally:
        cache.close()
    return copy


@dataclass
class HandMadeModels:
    """A registry holding one serving model and one cold-start model, both fitted on `data`."""

    data: TrainingData
    registry: Registry
    model: Recommender
    coldstart: ColdStartRecommender
    version: str
    coldstart_version: str

    def snapshot(self, version: str | None = None) -> Snapshot:
        """What the loader would install for `version` (the serving model by default)."""
        return build(self.registry, version or self.version, self.coldstart_version)

    def add(self, model: Recommender) -> str:
        """Register another version fitted on the same data (a model to swap to)."""
        return self.registry.add(model.fit(self.data), provenance_of(self.data))


def provenance_of(data: TrainingData) -> dict[str, object]:
    """The part of a version's provenance that serving reads: where its data ends."""
    end = datetime.fromtimestamp(data.now_ns / 1e9, UTC).isoformat()
    return {"data": {"from": end, "to": end}, "offline_metrics": {}}


def hand_made_models(root: Path, data: TrainingData, min_segment_users: int = 5) -> HandMadeModels:
    """Item-kNN in production beside a cold-start model whose segments need only
    `min_segment_users` users (the hand-made data has a dozen or so per segment)."""
    registry = Registry(root)
    model = ItemKNNRecommender().fit(data)
    coldstart = ColdStartRecommender(min_segment_users=min_segment_users).fit(data)
    version = registry.add(model, provenance_of(data))
    coldstart_version = registry.add(coldstart, provenance_of(data))
    registry.promote(version, "hand-made for a test")
    return HandMadeModels(data, registry, model, coldstart, version, coldstart_version)


def request(target: str, method: str = "GET") -> Request:
    """A request as the HTTP core hands it over: the raw path, not percent-decoded."""
    path, _, query = target.partition("?")
    return Request(method, target, path, query, "HTTP/1.1", {"host": "127.0.0.1"})


def item_names(model: Recommender, ranked: np.ndarray) -> list[str]:
    """Movie ids of the first 20 entries of a ranking (its -1 padding dropped)."""
    return [str(model.item_ids[i]) for i in ranked.tolist() if i >= 0][:20]


def header(response: object, name: str) -> str | None:
    for key, value in getattr(response, "headers", None) or []:
        if key.lower() == name.lower():
            return value
    return None
