"""`movierec ingest`: the site's log into the event store."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import orjson
from pydantic import Field

from movierec.config import add_options
from movierec.ingest.config import IngestConfig
from movierec.ingest.group import GroupIngestor
from movierec.ingest.metrics import serve_metrics
from movierec.ingest.runner import Ingestor
from movierec.progress import Progress
from movierec.stream import StreamUnavailableError


class IngestCommand(IngestConfig):
    """The ingestion's settings and what the command does with its outcome."""

    report: Path | None = Field(None, description="write the data-quality report (JSON) here")
    quiet: bool = Field(False, description="no progress lines")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="read the event stream into the store, cleaned")
    add_options(p, IngestCommand)
    p.set_defaults(handler=run_ingest)


def run_ingest(command: IngestCommand) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    progress = Progress("ingest", enabled=not command.quiet)
    try:
        ingestor: Ingestor | GroupIngestor = (
            GroupIngestor(command, progress) if command.partitioned else Ingestor(command, progress)
        )
    except ValueError as error:  # a store of the other kind (one store / in parts)
        print(f"movierec ingest: {error}", file=sys.stderr)
        return 2
    server = None
    if command.metrics_port is not None:
        server = serve_metrics(ingestor, command.metrics_port)
        host, port = server.server_address[:2]
        # On stderr even with --quiet: with port 0 this line is the only way to find it.
        print(f"ingest: metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
    try:
        report = ingestor.run(should_stop=stop.is_set)
    except StreamUnavailableError as error:
        # Every committed batch is in the store and its position in the checkpoint: a
        # restart (by hand, the supervisor or the container's policy) resumes there.
        print(
            f"movierec ingest: the stream {command.source} is unreachable ({error}); "
            "stopped at the last committed batch",
            file=sys.stderr,
        )
        return 1
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2)
    if command.report:
        command.report.parent.mkdir(parents=True, exist_ok=True)
        command.report.write_bytes(text)
    summary = {k: report[k] for k in ("lines_read", "stored", "rejected", "duplicates")}
    summary["warnings"] = len(report["quality"]["warnings"])
    if report["provisional"]["events"]:
        summary["provisional"] = report["provisional"]
    print(orjson.dumps(summary).decode())
    return 0
