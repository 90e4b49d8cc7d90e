"""`movierec serve`: the recommendation service on port 8082."""

from __future__ import annotations

import argparse
import logging
import sys

from movierec.config import add_options
from movierec.http.server import run_forever
from movierec.registry.experiments import answer_log_dir
from movierec.serving.app import RecommendationService
from movierec.serving.config import ServeConfig
from movierec.serving.freshness import Freshness
from movierec.serving.loader import ModelLoader
from movierec.serving.shard import Shard
from movierec.store.events import EventStore


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="answer GET /recommend/<userid> from the production model")
    add_options(p, ServeConfig)
    p.set_defaults(handler=run_serve)


def run_serve(config: ServeConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        answers = config.telemetry or answer_log_dir(config.models_dir)
        service = RecommendationService(
            config.models_dir,
            answers,
            config.sample,
            config.adult_for_unknown_age,
            config.explore_slots,
            config.explore_head,
            Shard.parse(config.shard),
        )
    except ValueError as error:
        print(f"movierec serve: {error}", file=sys.stderr)
        return 2
    catalogue = EventStore(config.store).catalog_path if config.store else None
    loader = ModelLoader(service, config.poll, config.threads, catalogue)
    freshness = (
        Freshness(
            service,
            config.source,
            rating_scale=config.rating_scale,
            future_tolerance_ns=round(config.future_tolerance * 1e9),
            store=config.store,
        )
        if config.source
        else None
    )
    if freshness is not None:
        loader.on_install.append(freshness.model_changed)
    loader.start()
    if freshness is not None:
        freshness.start()
    server = service.http_server(config.host, config.port)
    try:
        run_forever(server)
    finally:
        loader.stop()
        if freshness is not None:
            freshness.stop()
        service.answers.close()
    return 0
