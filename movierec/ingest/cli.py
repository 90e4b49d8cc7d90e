"""`movierec ingest`: the site's log into the event store."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import orjson

from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.progress import Progress
from movierec.stream import parse_stream_url


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="read the event stream into the store, cleaned")
    p.add_argument("--source", required=True, help="file://PATH or kafka://HOST:PORT/TOPIC")
    p.add_argument("--store", required=True, type=Path, help="the event store directory")
    p.add_argument("--report", type=Path, help="write the data-quality report (JSON) here")
    p.add_argument("--follow", action="store_true", help="keep up with the live stream")
    p.add_argument("--group", default="movierec-ingest", help="Kafka consumer group")
    p.add_argument(
        "--api",
        default="http://127.0.0.1:8080",
        help="the site's user/movie API ('' for none: catalogue checks wait)",
    )
    p.add_argument("--api-rate-limit", type=float, default=50.0, help="API requests/s")
    p.add_argument("--batch-lines", type=int, default=500_000, help="lines per batch")
    p.add_argument("--rating-scale", type=int, choices=(5, 10), default=5)
    p.add_argument(
        "--catalogue-wait",
        type=float,
        default=30.0,
        help="seconds the catalogue may take to fill in at the end of a run",
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="forget stored events and read the stream again from the start",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
    try:
        parse_stream_url(args.source)
        config = IngestConfig(
            source=args.source,
            store=str(args.store),
            group=args.group,
            api=args.api or None,
            follow=args.follow,
            batch_lines=args.batch_lines,
            rating_scale=args.rating_scale,
            catalogue_wait=args.catalogue_wait,
            api_rate_limit=args.api_rate_limit,
            rebuild=args.rebuild,
        )
    except ValueError as error:
        print(f"movierec ingest: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ingestor = Ingestor(config, progress=Progress("ingest", enabled=not args.quiet))
    report = ingestor.run(should_stop=stop.is_set)
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_bytes(text)
    summary = {k: report[k] for k in ("lines_read", "stored", "rejected", "duplicates")}
    summary["warnings"] = len(report["quality"]["warnings"])
    if report["provisional"]["events"]:
        summary["provisional"] = report["provisional"]
    print(orjson.dumps(summary).decode())
    return 0
