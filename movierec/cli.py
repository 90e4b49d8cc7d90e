"""The `movierec` command: one subcommand per role."""

from __future__ import annotations

import argparse
import sys

from movierec import __version__
from movierec import run as run_role
from movierec.audit import cli as audit_cli
from movierec.config import ConfigError, from_args
from movierec.ingest import cli as ingest_cli
from movierec.monitoring import cli as monitoring_cli
from movierec.online import cli as online_cli
from movierec.release import cli as release_cli
from movierec.release import scheduler as release_scheduler
from movierec.release import train as release_train
from movierec.serving import cli as serving_cli
from movierec.training import cli as training_cli
from movierec_sim import cli as sim_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="movierec", description=__doc__)
    parser.add_argument("--version", action="version", version=f"movierec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_role.add_parsers(sub)
    sim_cli.add_parsers(sub)
    ingest_cli.add_parsers(sub)
    release_train.add_parsers(sub)  # train: training, then the release gate
    training_cli.add_parsers(sub)
    serving_cli.add_parsers(sub)
    online_cli.add_parsers(sub)
    monitoring_cli.add_parsers(sub)
    audit_cli.add_parsers(sub)
    release_cli.add_parsers(sub)
    release_scheduler.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, validate the command's settings (exit 2 naming every bad value), run it."""
    args = build_parser().parse_args(argv)
    try:
        settings = from_args(args)
    except ConfigError as error:
        for problem in error.problems:
            print(f"movierec {args.command}: {problem}", file=sys.stderr)
        return 2
    return int(args.handler(settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
