"""`movierec serve`: the recommendation service on port 8082."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from movierec.http.server import HTTPServer, run_forever
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.serving.loader import ModelLoader
from movierec.store.events import EventStore
from movierec.stream import parse_stream_url


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="answer GET /recommend/<userid> from the production model")
    p.add_argument("--models", required=True, type=Path, help="the model registry directory")
    p.add_argument("--port", type=int, default=8082)
    p.add_argument("--host", default="0.0.0.0", help="address to listen on")
    p.add_argument(
        "--store", type=Path, help="event store whose catalogue gives new users' demographics"
    )
    p.add_argument(
        "--source", help="event stream to follow for fresh lists (file://PATH, kafka://...)"
    )
    p.add_argument("--telemetry", type=Path, help="directory for the log of answers")
    p.add_argument("--sample", type=float, default=1.0, help="share of answers logged")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between registry checks")
    p.add_argument("--threads", type=int, default=1, help="threads for building lists")
    p.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        if args.source:
            parse_stream_url(args.source)
        service = RecommendationService(args.models, args.telemetry, args.sample)
    except ValueError as error:
        print(f"movierec serve: {error}", file=sys.stderr)
        return 2
    catalogue = EventStore(args.store).catalog_path if args.store else None
    loader = ModelLoader(service, args.poll, args.threads, catalogue)
    freshness = Freshness(service, args.source) if args.source else None
    if freshness is not None:
        loader.on_install.append(freshness.model_changed)
    loader.start()
    if freshness is not None:
        freshness.start()
    server = HTTPServer(service.handle, host=args.host, port=args.port)
    try:
        run_forever(server)
    finally:
        loader.stop()
        if freshness is not None:
            freshness.stop()
        service.answers.close()
    return 0
