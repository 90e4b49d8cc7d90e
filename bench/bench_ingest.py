"""Ingestion benchmark: lines/s from the local log (and Kafka with --kafka HOST:PORT) into the
event store, beside a straightforward line-by-line parser measured in the same run.
Prints one JSON object.

    .venv/bin/python bench/bench_ingest.py [--lines 5000000] [--kafka 127.0.0.1:19392]

Targets: at least 1,000,000 lines/s from the local log and 300,000 lines/s from Kafka on a
2-core machine. "warm" runs have the catalogue cache filled (the steady state of a running
service); "cold" runs start with an empty cache and the site API in this process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from movierec.catalog.client import CatalogClient
from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.logformat.reference import parse_line
from movierec.stream import open_sink, open_source
from movierec_sim.api import SiteApiServer
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.faults import FaultConfig
from movierec_sim.world import World, WorldConfig


def generate(world: World, url: str, lines: int) -> dict:
    sink = open_sink(url)
    try:
        config = SimConfig(
            seed=1, events=lines, faults=FaultConfig.build(0.05), service="http://127.0.0.1:9"
        )
        return Simulation(world, config, sink).run()
    finally:
        sink.close()


def ingest(source: str, store: Path, api: str | None, **options: object) -> dict:
    config = IngestConfig(
        source=source,
        store=str(store),
        api=api,
        batch_lines=1_000_000,
        catalogue_wait=0.0,
        api_rate_limit=5000.0,
        **options,
    )
    started = time.perf_counter()
    report = Ingestor(config).run()
    seconds = time.perf_counter() - started
    return {
        "lines": report["lines_read"],
        "seconds": round(seconds, 3),
        "lines_per_second": round(report["lines_read"] / seconds),
        "stored": sum(report["stored"].values()),
    }


def baseline_file(path: Path, limit: int) -> dict:
    """A straightforward reader: one line at a time, parsed with the reference parser."""
    started = time.perf_counter()
    count = 0
    with open(path, "rb") as handle:
        for line in handle:
            parse_line(line.rstrip(b"\n"))
            count += 1
            if count == limit:
                break
    seconds = time.perf_counter() - started
    return {
        "lines": count,
        "seconds": round(seconds, 3),
        "lines_per_second": round(count / seconds),
    }


def baseline_kafka(bootstrap: str, topic: str, limit: int) -> dict:
    """A straightforward consumer: poll one message at a time, parse it."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"base-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    started, count = None, 0
    while count < limit:
        message = consumer.poll(5.0)
        if message is None:
            break
        if message.error():
            continue
        started = started or time.perf_counter()
        parse_line(message.value())
        count += 1
    seconds = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return {
        "lines": count,
        "seconds": round(seconds, 3),
        "lines_per_second": round(count / max(seconds, 1e-9)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument(
        "--baseline-lines",
        type=int,
        default=1_000_000,
        help="lines the slow baseline reads (its rate is per line)",
    )
    parser.add_argument("--kafka", help="HOST:PORT of a broker for the Kafka figures")
    args = parser.parse_args()
    world = World(WorldConfig(users=100_000, movies=5_000, seed=1))
    result: dict = {
        "benchmark": "ingest",
        "lines": args.lines,
        "dirt": 0.05,
        "world": {"users": 100_000, "movies": 5_000},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log = root / "log"
        generate(world, f"file://{log}", args.lines)
        with SiteApiServer(world, port=0) as api:
            cold = ingest(f"file://{log}", root / "cold", api.url)
            # Let the catalogue finish, so the warm runs see every verdict.
            with CatalogClient(api.url, root / "cold" / "catalog.sqlite", rate_limit=5000) as c:
                c.request_movies(world.movie_ids)
                c.wait_idle(120)
        warm_store = root / "warm"
        warm_store.mkdir()
        shutil.copy(root / "cold" / "catalog.sqlite", warm_store / "catalog.sqlite")
        warm = ingest(f"file://{log}", warm_store, None)
        base = baseline_file(log, args.baseline_lines)
        result["local_log"] = {
            "warm": warm,
            "cold": cold,
            "baseline_line_by_line": base,
            "ratio_warm_to_baseline": round(warm["lines_per_second"] / base["lines_per_second"], 1),
            "target_lines_per_second": 1_000_000,
        }
        if args.kafka:
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            url = f"kafka://{args.kafka}/{topic}"
            sink = open_sink(url)
            source = open_source(f"file://{log}")
            while len(batch := source.read(500_000, 0.1)):
                sink.write(batch.values)
            sink.close()
            store = root / "kafka"
            store.mkdir()
            shutil.copy(root / "cold" / "catalog.sqlite", store / "catalog.sqlite")
            kafka = ingest(url, store, None, group=f"bench-{topic}")
            base = baseline_kafka(args.kafka, topic, args.baseline_lines)
            result["kafka"] = {
                "warm": kafka,
                "baseline_line_by_line": base,
                "ratio_to_baseline": round(kafka["lines_per_second"] / base["lines_per_second"], 1),
                "target_lines_per_second": 300_000,
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
