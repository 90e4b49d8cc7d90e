"""`movierec train` and `movierec evaluate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from movierec.evaluation.pipeline import evaluate_registry, write_report
from movierec.features.feedback import FeedbackConfig
from movierec.progress import Progress
from movierec.training.pipeline import DEFAULT_MODELS, TrainConfig, train


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train, evaluate and register models from the store")
    p.add_argument("--store", required=True, type=Path, help="the event store directory")
    p.add_argument("--models", required=True, type=Path, help="the model registry directory")
    p.add_argument(
        "--model",
        action="append",
        dest="kinds",
        metavar="KIND",
        help=f"model kinds to train (default: all of {', '.join(DEFAULT_MODELS)})",
    )
    p.add_argument("--metric", default="ndcg@20", help="what picks the production model")
    p.add_argument(
        "--budget", type=float, default=120.0, help="seconds for the hyperparameter search"
    )
    p.add_argument(
        "--train-share", type=float, default=0.8, help="share of the time range before the test cut"
    )
    p.add_argument(
        "--half-life-days", type=float, default=60.0, help="recency half-life of implicit feedback"
    )
    p.add_argument("--rating-scale", type=int, choices=(5, 10), default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=run_train)

    e = sub.add_parser("evaluate", help="offline evaluation of the registered models")
    e.add_argument("--store", required=True, type=Path)
    e.add_argument("--models", required=True, type=Path)
    e.add_argument("--report", required=True, type=Path, help="JSON report (HTML beside it)")
    e.add_argument("--train-share", type=float, default=0.8)
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(handler=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    kinds = tuple(args.kinds) if args.kinds else DEFAULT_MODELS
    if "popularity" not in kinds:
        kinds = ("popularity", *kinds)
    try:
        config = TrainConfig(
            store=str(args.store),
            models_dir=str(args.models),
            models=kinds,
            metric=args.metric,
            budget_seconds=args.budget,
            train_share=args.train_share,
            seed=args.seed,
            feedback=FeedbackConfig(
                recency_half_life_days=args.half_life_days, rating_scale=args.rating_scale
            ),
        )
        summary = train(config, Progress("train", enabled=not args.quiet))
    except ValueError as error:
        print(f"movierec train: {error}", file=sys.stderr)
        return 2
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    try:
        report = evaluate_registry(str(args.store), str(args.models), args.train_share, args.seed)
    except ValueError as error:
        print(f"movierec evaluate: {error}", file=sys.stderr)
        return 2
    page = write_report(report, args.report)
    summary = {
        name: {k: result[k] for k in ("ndcg@20", "recall@20", "coverage")}
        for name, result in report["models"].items()
    }
    print(orjson.dumps({"best": report["best"], "models": summary, "html": str(page)}).decode())
    return 0
