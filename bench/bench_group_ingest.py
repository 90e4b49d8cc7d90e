"""Partitioned ingestion benchmark: lines/s into the store by 1, 2 and 4 workers of one
consumer group (`movierec ingest --partitioned`, real processes) sharing a 4-partition
topic, beside one `movierec ingest` reading the same lines from a 1-partition topic, and
the practical limit: a bare consumer that reads every message of the 4-partition topic
and does nothing with it. Every run starts with the catalogue cache filled (the steady
state). Prints one JSON object.

    .venv/bin/python bench/bench_group_ingest.py --kafka 127.0.0.1:19092 [--lines 2000000]

Each worker is a process of its own, so the group's figure is the machine's, not one
core's: on N cores, up to N workers should add up.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer

from movierec.catalog.client import CatalogClient
from movierec.stream import open_sink
from movierec.stream.kafka import KafkaSink, ensure_topic
from movierec_sim.api import SiteApiServer
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.faults import FaultConfig
from movierec_sim.world import World, WorldConfig

PARTITIONS = 4


def publish(bootstrap: str, topic: str, partitions: int, lines: list[bytes]) -> None:
    ensure_topic(bootstrap, topic, partitions=partitions)
    with KafkaSink(bootstrap, topic) as sink:
        for start in range(0, len(lines), 100_000):
            sink.write(lines[start : start + 100_000])


def ingest(bootstrap: str, topic: str, store: Path, api: str, workers: int) -> dict:
    command = [
        sys.executable, "-m", "movierec.cli", "ingest", "--source", f"kafka://{bootstrap}/{topic}",
        "--store", str(store), "--api", api, "--api-rate-limit", "5000", "--quiet",
        "--batch-lines", "500000", "--catalogue-wait", "0", "--group", f"b-{uuid.uuid4().hex}",
    ]  # fmt: skip
    if workers:
        command.append("--partitioned")
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(max(workers, 1))
    ]
    outs = [p.communicate(timeout=3600) for p in processes]
    seconds = time.perf_counter() - started
    for p, (_, err) in zip(processes, outs, strict=True):
        assert p.returncode == 0, err.decode()[-2000:]
    lines = max(json.loads(out)["lines_read"] for out, _ in outs)
    return {
        "workers": workers or "single",
        "lines": lines,
        "seconds": round(seconds, 2),
        "lines_per_second": round(lines / seconds),
    }


def bare_consumer(bootstrap: str, topic: str, total: int) -> dict:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"bare-{uuid.uuid4().hex}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )  # fmt: skip
    consumer.subscribe([topic])
    started, count = time.perf_counter(), 0
    while count < total:
        count += sum(m.error() is None for m in consumer.consume(100_000, 5.0))
    seconds = time.perf_counter() - started
    consumer.close()
    return {
        "lines": count,
        "seconds": round(seconds, 2),
        "lines_per_second": round(count / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kafka", required=True, help="HOST:PORT of a broker")
    parser.add_argument("--lines", type=int, default=2_000_000)
    args = parser.parse_args()
    world = World(WorldConfig(users=100_000, movies=5_000, seed=1))
    result: dict = {"benchmark": "group_ingest", "lines": args.lines, "partitions": PARTITIONS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log = root / "log"
        file_sink = open_sink(f"file://{log}")
        config = SimConfig(
            seed=1, events=args.lines, faults=FaultConfig.build(0.05), service="http://127.0.0.1:9"
        )
        Simulation(world, config, file_sink).run()
        file_sink.close()
        lines = log.read_bytes().split(b"\n")[:-1]
        one, many = f"one-{uuid.uuid4().hex[:6]}", f"many-{uuid.uuid4().hex[:6]}"
        publish(args.kafka, one, 1, lines)
        publish(args.kafka, many, PARTITIONS, lines)
        with SiteApiServer(world, port=0) as api:
            warm = root / "catalogue.sqlite"
            with CatalogClient(api.url, warm, rate_limit=5000) as client:
                client.request_movies(world.movie_ids)
                client.request_users(list(range(1, world.n_users + 1)))
                client.wait_idle(600, settled=True)
            runs = []
            for workers in (0, 1, 2, 4):
                store = root / f"store-{workers}"
                store.mkdir()
                shutil.copy(warm, store / "catalog.sqlite")
                runs.append(
                    ingest(args.kafka, one if workers == 0 else many, store, api.url, workers)
                )
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        limit = bare_consumer(args.kafka, many, len(lines))
    single = runs[0]["lines_per_second"]
    result["runs"] = runs
    result["bare_consumer"] = limit
    result["ratio_to_single"] = {
        str(r["workers"]): round(r["lines_per_second"] / single, 2) for r in runs[1:]
    }
    result["ratio_to_bare_consumer"] = {
        str(r["workers"]): round(r["lines_per_second"] / limit["lines_per_second"], 3) for r in runs
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
