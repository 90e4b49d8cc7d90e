"""What the adult filter (movierec/serving/safety.py) costs a request: the service's handler
timed in-process for adults, minors (filtered) and strangers (unknown age: the popular list,
filtered), with the filter enforced and without a catalogue (unenforced: the cost before
the filter existed, bar one attribute check); then `movierec serve` under wrk over
loopback, with and without --store (the catalogue), as bench/bench_serve.py drives it.
Prints one JSON object.

    .venv/bin/python bench/bench_safety.py [--requests 20000] [--adult-share 0.02]
                                           [--seconds 10] [--skip-wrk]

The small world of bench_serve.py (2,000 users, 500 movies, ALS): about 5% of its users
are minors, and --adult-share of its movies are marked adult in the catalogue.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers
from bench_serve import measure, registry_for, serve

from movierec.catalog.cache import OK, CacheEntry, CatalogCache
from movierec.catalog.records import MovieRecord, UserRecord
from movierec.http.messages import Request
from movierec.registry.versions import Registry
from movierec.serving.app import RecommendationService
from movierec.serving.loader import ModelLoader
from movierec.serving.safety import ADULT_AGE, AdultRule
from movierec.vocab import GENDERS, OCCUPATIONS
from movierec_sim.world import World, WorldConfig

USERS, MOVIES, PAIRS = 2000, 500, 60_000
WRK_LOADS = [64, 256]


def write_catalogue(path: Path, world: World) -> Path:
    """What the site's API says of every user and movie of the world."""
    cache = CatalogCache(path)
    users = [
        UserRecord(
            u + 1,
            int(world.user_age[u]),
            GENDERS[world.user_gender[u]],
            OCCUPATIONS[world.user_occupation[u]],
        )
        for u in range(world.n_users)
    ]
    movies = [
        MovieRecord(m, "T", None, (), *[None] * 7, bool(world.movie_adult[i]), None)
        for i, m in enumerate(world.movie_ids)
    ]
    cache.write(
        [CacheEntry("user", r.user_id, OK, r) for r in users]
        + [CacheEntry("movie", r.movie_id, OK, r) for r in movies]
    )
    cache.close()
    return path


def handler_us(service: RecommendationService, users: list[int], repeats: int = 5) -> float:
    """Median over repeats of the handler's mean microseconds per /recommend request."""
    requests = [
        Request("GET", f"/recommend/{u}", f"/recommend/{u}", "", "HTTP/1.1", {}) for u in users
    ]
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for request in requests:
            service.handle(request)
        runs.append((time.perf_counter() - started) / len(requests) * 1e6)
    return round(statistics.median(runs), 2)


def in_process(registry_root: Path, catalogue: Path, world: World, n: int) -> dict[str, Any]:
    service = RecommendationService(registry_root, sample=0.0)
    loader = ModelLoader(service, catalogue=catalogue)
    started = time.perf_counter()
    loader.read_catalogue()
    read_seconds = time.perf_counter() - started
    assert loader.check() and service.adult_rule.enforced
    snapshot = service.snapshot
    assert snapshot is not None
    started = time.perf_counter()
    rule = service.adult_rule
    AdultRule(rule.adult, rule.cleared).items_of(snapshot)
    items_seconds = time.perf_counter() - started
    ids = list(range(1, world.n_users + 1))
    grown = [u for u in ids if world.user_age[u - 1] >= ADULT_AGE]
    minors = [u for u in ids if world.user_age[u - 1] < ADULT_AGE]
    strangers = list(range(5_000_000, 5_000_000 + len(grown)))
    groups = {"adults": grown, "minors": minors, "strangers": strangers}
    draw = {name: (users * (n // len(users) + 1))[:n] for name, users in groups.items()}
    enforced = {name: handler_us(service, users) for name, users in draw.items()}
    filtered = service.metrics.adult_filtered
    restricted = service.metrics.restricted_answers.total()
    adult_movies = len(service.adult_rule.adult)
    service.install_adult_rule(AdultRule.unenforced("benchmark"))
    unenforced = {name: handler_us(service, users) for name, users in draw.items()}
    service.answers.close()
    return {
        "catalogue_read_seconds": round(read_seconds, 3),
        "adult_items_seconds": round(items_seconds, 4),
        "adult_movies": adult_movies,
        "minors": len(minors),
        "handler_us_enforced": enforced,
        "handler_us_unenforced": unenforced,
        "ratio_enforced_to_unenforced": {
            name: round(enforced[name] / unenforced[name], 3) for name in enforced
        },
        "adult_items_filtered_per_restricted_answer": round(filtered / max(1, restricted), 3),
    }


def with_store(registry: Registry, store: Path, port: int) -> peers.Server:
    """`movierec serve` as bench_serve.py starts it, reading the catalogue of `store`."""
    spec = serve(registry, port)
    spec.argv += ["--store", str(store)]
    spec.description += ", --store (adult filter enforced)"
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="per group, in-process")
    parser.add_argument("--adult-share", type=float, default=0.02)
    parser.add_argument("--seconds", type=int, default=10, help="per wrk load level")
    parser.add_argument("--skip-wrk", action="store_true", help="only the in-process timings")
    args = parser.parse_args()
    world = World(WorldConfig(users=USERS, movies=MOVIES, seed=1, adult_share=args.adult_share))
    result: dict[str, Any] = {"benchmark": "safety", "adult_share": args.adult_share}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        registry = registry_for(tmp / "models", USERS, MOVIES, PAIRS)
        store = tmp / "store"
        store.mkdir()
        catalogue = write_catalogue(store / "catalog.sqlite", world)
        result["in_process"] = in_process(registry.root, catalogue, world, args.requests)
        if not args.skip_wrk:
            peers.require("wrk")
            if len(os.sched_getaffinity(0)) < 2:
                raise SystemExit("needs 2 CPUs: the server runs on one, wrk on the other")
            plain = measure(serve(registry, peers.free_port()), USERS, WRK_LOADS, args.seconds)
            spec = with_store(registry, store, peers.free_port())
            enforced = measure(spec, USERS, WRK_LOADS, args.seconds)
            result["wrk"] = {
                "without_store": plain,
                "with_store": enforced,
                "max_rps_ratio": round(enforced["max_rps"] / plain["max_rps"], 3),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
