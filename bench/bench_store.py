"""The event store over a week of follow-mode ingestion: commit time, file count and
connect/query time as functions of the batches committed. Prints one JSON object;
progress on stderr.

    .venv/bin/python bench/bench_store.py [--days 7] [--batch-seconds 300] [--lines 100]

The real site logs about 1,000 lines/s, and follow-mode ingestion commits one batch per
`--max-wait` second (1 s): 604,800 commits a week, each writing a file per kind and date
it touches. What grows with time is the number of batches and files, not the lines in
them, so the week is compressed twice, both stated in the JSON: one batch stands for
`--batch-seconds` of the site (300: 2,016 batches a week, 1/300 of the real commit
count; the files a batch writes are the same), and holds `--lines` lines (100, not the
site's 300,000), with times spread over its seconds, so the dates roll over as they would.
Lines are written as the site writes them (movierec/logformat/writer.py): 94% watch, 3%
recommendation, 2% rate, 1% dirt (one quarantine file per batch, as the real log's 5%
dirt gives). The real `Ingestor` runs every batch (parse, checks, catalogue, files,
commit) with the site's API in this process and the catalogue cache warm; batches are cut
by line count rather than by the 1 s wait, which is the only difference from `--follow`.
Sampling (file count, connect + a count query) happens between batches and is not timed
as commit time. Compaction keeps the files it merged away for a grace period (wall-clock
seconds, 120 at the site's one commit a second); the bench's commits come about 20 times
faster, so `--grace` (1 s) keeps as many commits' worth. `files` counts Parquet files on
disk, `files_listed` those the manifest lists (what commit and connect see). The dedup
window is counted in lines (2M) and keeps a journal per batch it covers: 2,000 batches at
the site's 1,000 lines a commit, but 20,000 of the bench's 100-line batches, so
`--dedup-window` (default: the site's 2,000 batches' worth, 200,000 lines at 100 a batch)
keeps the journals, and the checkpoint's list of them, the size they have at the site.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from movierec.catalog.client import CatalogClient
from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.logformat import writer
from movierec.quality.dedup import DEFAULT_WINDOW
from movierec.store.events import EventStore
from movierec_sim.api import SiteApiServer
from movierec_sim.world import World, WorldConfig

START = 1_767_571_200  # 2026-01-05T00:00:00Z, Unix seconds
SITE_LINES_PER_SECOND = 1_000
FOLLOW_COMMIT_SECONDS = 1.0


def log(message: str) -> None:
    print(f"[bench_store] {message}", file=sys.stderr, flush=True)


def write_log(path: Path, world: World, batches: int, lines: int, seconds: int) -> int:
    """`batches` blocks of `lines` lines, block b dated within [b, b+1) * seconds."""
    rng = np.random.default_rng(1)
    movies = world.movie_ids
    users = world.n_users
    total = 0
    with open(path, "w") as out:
        for b in range(batches):
            at = np.sort(START + b * seconds + rng.integers(0, seconds, lines))
            times = writer.format_seconds(at)
            user = rng.integers(1, users + 1, lines).tolist()
            movie = [movies[i] for i in rng.integers(0, len(movies), lines).tolist()]
            kind = rng.choice(4, lines, p=[0.94, 0.03, 0.02, 0.01])
            block = []
            for i in range(lines):
                if kind[i] == 0:
                    block.append(f"{times[i]},{user[i]},GET /data/m/{movie[i]}/{i % 90}.mpg")
                elif kind[i] == 1:
                    result = ", ".join(movies[:20])
                    block.append(
                        writer.recommendation_line(
                            times[i], user[i], "127.0.0.1:8082", 200, result, 40
                        )
                    )
                elif kind[i] == 2:
                    block.append(f"{times[i]},{user[i]},GET /rate/{movie[i]}={1 + i % 5}")
                else:
                    block.append(f"{times[i]},{user[i]},GZET /data/m/{movie[i]}/1.mpg")
            out.write("\n".join(block) + "\n")
            total += lines
    return total


def count_files(root: Path) -> dict[str, int]:
    counts = {"parquet": 0, "directories": 0}
    for path in root.rglob("*"):
        if path.is_dir():
            counts["directories"] += 1
        elif path.suffix == ".parquet":
            counts["parquet"] += 1
    return counts


def query_ms(root: Path) -> tuple[float, float]:
    """(connect, connect + count of the watch view), in ms: what every reader pays first."""
    started = time.perf_counter()
    con = EventStore(root).connect()
    connected = time.perf_counter()
    con.sql("SELECT count(*) FROM watch").fetchall()
    done = time.perf_counter()
    con.close()
    return (connected - started) * 1e3, (done - started) * 1e3


class Sampler:
    """Times every commit; every `every` batches notes files and reader costs."""

    def __init__(self, ingestor: Ingestor, every: int) -> None:
        self.store = ingestor.store
        self.every = every
        self.commit_ms: list[float] = []
        self.window: list[float] = []
        self.samples: list[dict[str, Any]] = []
        self.last = time.perf_counter()
        commit = self.store.commit

        def timed(checkpoint: Any) -> None:
            started = time.perf_counter()
            commit(checkpoint)
            elapsed = (time.perf_counter() - started) * 1e3
            self.commit_ms.append(elapsed)
            self.window.append(elapsed)

        self.store.commit = timed  # type: ignore[method-assign]

    def __call__(self, status: dict[str, Any]) -> None:
        batches = status["batches"]
        if batches % self.every:
            return
        connect, query = query_ms(self.store.root)
        files = count_files(self.store.root)
        checkpoint = self.store.checkpoint()
        journals = sum(1 for _ in self.store.state_dir.glob("dedup-*.npy"))
        listed = getattr(checkpoint, "files", None)
        now = time.perf_counter()
        self.samples.append(
            {
                "batches": batches,
                "commit_ms_median": round(statistics.median(self.window), 2),
                "commit_ms_max": round(max(self.window), 2),
                "files": files["parquet"],
                "files_listed": files["parquet"] if listed is None else len(listed),
                "directories": files["directories"],
                "dedup_journals": journals,
                "checkpoint_bytes": self.store.checkpoint_path.stat().st_size,
                "connect_ms": round(connect, 1),
                "connect_and_count_ms": round(query, 1),
                "seconds_since_last_sample": round(now - self.last, 1),
            }
        )
        log(json.dumps(self.samples[-1]))
        self.window = []
        self.last = time.perf_counter()


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    batches = round(args.days * 86_400 / args.batch_seconds)
    world = World(WorldConfig(users=2_000, movies=500, seed=1))
    log_path = root / "log"
    lines = write_log(log_path, world, batches, args.lines, args.batch_seconds)
    log(f"{lines} lines in {batches} batches written")
    store = root / "store"
    store.mkdir()
    with SiteApiServer(world, port=0) as api:
        with CatalogClient(api.url, store / "catalog.sqlite", rate_limit=0) as catalog:
            catalog.request_movies(world.movie_ids)
            catalog.request_users(range(1, world.n_users + 1))
            catalog.wait_idle(300)
        config = IngestConfig(
            source=f"file://{log_path}",
            store=str(store),
            api=api.url,
            batch_lines=args.lines,
            catalogue_wait=0.0,
            api_rate_limit=0.0,
            dedup_window=dedup_window(args),
        )
        ingestor = Ingestor(config)
        if hasattr(ingestor.store, "policy"):
            ingestor.store.policy = dataclasses.replace(
                ingestor.store.policy, grace_seconds=args.grace
            )
        sampler = Sampler(ingestor, max(1, batches // args.samples))
        ingestor.progress = sampler
        started = time.perf_counter()
        report = ingestor.run()
        seconds = time.perf_counter() - started
    assert report["batches"] == batches, report["batches"]
    commits = sampler.commit_ms
    first, last = sampler.samples[0], sampler.samples[-1]
    return {
        "benchmark": "store",
        "compression": {
            "site_days": args.days,
            "site_seconds_per_batch": args.batch_seconds,
            "follow_mode_commits_a_week": round(7 * 86_400 / FOLLOW_COMMIT_SECONDS),
            "batches": batches,
            "batch_count_scale": round(FOLLOW_COMMIT_SECONDS / args.batch_seconds, 6),
            "lines_per_batch": args.lines,
            "site_lines_per_batch": round(args.batch_seconds * SITE_LINES_PER_SECOND),
            "dedup_window_lines": dedup_window(args),
            "dedup_window_batches": round(dedup_window(args) / args.lines),
        },
        "lines": lines,
        "stored": report["stored"],
        "seconds": round(seconds, 1),
        "commit_ms": {
            "median": round(statistics.median(commits), 2),
            "first_sample_median": first["commit_ms_median"],
            "last_sample_median": last["commit_ms_median"],
            "growth_last_to_first": round(
                last["commit_ms_median"] / max(first["commit_ms_median"], 1e-9), 1
            ),
        },
        "files": {"first_sample": first["files"], "last_sample": last["files"]},
        "files_listed": {
            "first_sample": first["files_listed"],
            "last_sample": last["files_listed"],
        },
        "connect_and_count_ms": {
            "first_sample": first["connect_and_count_ms"],
            "last_sample": last["connect_and_count_ms"],
        },
        "samples": sampler.samples,
    }


def dedup_window(args: argparse.Namespace) -> int:
    """The window in lines: as given, or as many batches as the site's 2M lines cover."""
    if args.dedup_window:
        return args.dedup_window
    site_batch_lines = SITE_LINES_PER_SECOND * FOLLOW_COMMIT_SECONDS
    return round(DEFAULT_WINDOW / site_batch_lines * args.lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=7.0, help="site days simulated")
    parser.add_argument(
        "--batch-seconds", type=int, default=300, help="site seconds one batch stands for"
    )
    parser.add_argument("--lines", type=int, default=100, help="lines per batch")
    parser.add_argument("--samples", type=int, default=12, help="sample points over the run")
    parser.add_argument(
        "--grace", type=float, default=1.0, help="seconds merged-away files are kept"
    )
    parser.add_argument(
        "--dedup-window", type=int, help="lines the dedup window holds (default: see above)"
    )
    parser.add_argument("--dir", type=Path, help="work here instead of a temporary directory")
    args = parser.parse_args()
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=False)
        result = run(args, args.dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(args, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
