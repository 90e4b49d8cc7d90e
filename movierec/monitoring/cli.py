"""`movierec monitor`: the built-in monitor and its dashboard on 127.0.0.1:8090."""

from __future__ import annotations

import argparse
import logging
import sys

from movierec.config import add_options
from movierec.http.server import HTTPServer, run_forever
from movierec.monitoring.config import MonitorConfig
from movierec.monitoring.monitor import Monitor
from movierec.progress import Progress


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor",
        help="scrape the service and ingestion, follow the online figures, drift and alerts, "
        "and serve a dashboard",
    )
    add_options(p, MonitorConfig)
    p.set_defaults(handler=run_monitor)


def run_monitor(config: MonitorConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        monitor = Monitor(config, progress=Progress("monitor", enabled=not config.quiet))
    except OSError as error:
        print(f"movierec monitor: {error}", file=sys.stderr)
        return 2
    server = monitor.http_server(config.host, config.port)

    def ready(bound: HTTPServer) -> None:
        # On stderr even with --quiet: with --port 0 this line is the only way to find it.
        print(f"monitor: dashboard on {bound.url}/", file=sys.stderr, flush=True)
        monitor.start()

    try:
        run_forever(server, ready=ready)
    finally:
        monitor.stop()
    return 0
