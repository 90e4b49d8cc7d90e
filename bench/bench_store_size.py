"""What a log line costs on disk, in the event store: simulated lines (5% dirt) ingested in
large batches with the catalogue vouching for every movie, and, given `--store`, any
store already written (e.g. a live `movierec run`'s RUN/store, committed a batch a second).
Prints one JSON object: bytes per line for the events, the quarantine, the state and the
whole store, beside the raw log's.

    .venv/bin/python bench/bench_store_size.py [--lines 2000000] [--store RUN/store]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from movierec.catalog.client import CatalogClient
from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.store.events import EventStore
from movierec.stream import open_sink
from movierec_sim.api import SiteApiServer
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.faults import FaultConfig
from movierec_sim.world import World, WorldConfig


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def per_line(store: Path, lines: int) -> dict[str, float | int]:
    parts = {name: size(store / name) for name in ("events", "quarantine", "provisional", "state")}
    total = size(store)
    return {
        "lines": lines,
        **{f"{name}_bytes_per_line": round(b / lines, 2) for name, b in parts.items()},
        "store_bytes_per_line": round(total / lines, 2),
        "store_bytes": total,
    }


def bulk(lines: int) -> dict:
    world = World(WorldConfig(users=100_000, movies=5_000, seed=1))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log = root / "log"
        sink = open_sink(f"file://{log}")
        config = SimConfig(
            seed=1, events=lines, faults=FaultConfig.build(0.05), service="http://127.0.0.1:9"
        )
        Simulation(world, config, sink).run()
        sink.close()
        store = root / "store"
        store.mkdir()
        with SiteApiServer(world, port=0) as api:
            with CatalogClient(api.url, store / "catalog.sqlite", rate_limit=5000) as client:
                client.request_movies(world.movie_ids)
                client.wait_idle(600, settled=True)
            Ingestor(
                IngestConfig(source=f"file://{log}", store=str(store), api=api.url,
                             batch_lines=500_000, api_rate_limit=5000)
            ).run()  # fmt: skip
        out = per_line(store, lines)
        out["log_bytes_per_line"] = round(log.stat().st_size / lines, 2)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--store", type=Path, help="also measure this store")
    args = parser.parse_args()
    result: dict = {"benchmark": "store_size", "bulk": bulk(args.lines)}
    if args.store:
        checkpoint = EventStore(args.store).checkpoint()
        lines = checkpoint.counters.get("lines_read", 0) if checkpoint else 0
        if not lines:
            raise SystemExit(f"bench_store_size: {args.store} holds no committed lines")
        result["given"] = {"store": str(args.store), **per_line(args.store, lines)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
