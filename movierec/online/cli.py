"""`movierec online`, `movierec experiment start|stop|report` and `movierec provenance`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import ClassVar

import orjson
from pydantic import Field

from movierec.config import Settings, add_options, option
from movierec.online.experiment import experiment_report
from movierec.online.figures import online_report
from movierec.online.provenance import NoAnswerError, parse_time, provenance
from movierec.registry.experiments import (
    Experiments,
    answer_log_dir,
    parse_arm,
    with_exploration,
)
from movierec.registry.versions import Registry


class OnlineCommand(Settings):
    component: ClassVar[str] = "online"

    store: Path = Field(description="the event store (the site's log, ingested)")
    models_dir: Path = Field(
        description="the model registry; its answers/ directory is the answer log",
        json_schema_extra=option("models"),
    )
    report: Path = Field(description="write the figures (JSON) here")
    state: Path | None = Field(
        None,
        description="directory of what earlier runs read, so a rerun reads only what is new "
        "(MODELS/online when unset)",
    )
    answers: Path | None = Field(None, description="the answer log (MODELS/answers when unset)")
    window: int = Field(30, ge=1, le=1440, description="conversion window, minutes")
    follow: int = Field(
        240, ge=1, le=10080, description="minutes after an answer that its minutes and stars count"
    )
    lateness: int = Field(10, ge=0, description="minutes a line may be logged late")
    limit_ms: int = Field(600, ge=1, description="the site's timeout: answers slower are failures")
    final: bool = Field(False, description="the log has ended: close every open window now")


class ExperimentStartCommand(Settings):
    component: ClassVar[str] = "experiment"

    models_dir: Path = Field(description="the model registry", json_schema_extra=option("models"))
    arm: tuple[str, ...] = Field(
        description="NAME=VERSION:SHARE, once per arm (shares add up to 1)"
    )
    min_effect: float = Field(
        0.1, gt=0, description="smallest relative change of conversion worth detecting"
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="false-positive rate of the verdict")
    power: float = Field(0.8, ge=0.5, lt=1, description="power the sample size is stated for")
    explore: tuple[str, ...] = Field(
        (),
        description="NAME=SLOTS: arm NAME's answers give their last SLOTS of 20 positions to "
        "movies outside the head (exploration slots; other arms: the service's setting)",
    )
    split_of: str | None = Field(
        None,
        description="an earlier experiment's id whose split of users this one keeps (arms "
        "going on with new versions keep their users)",
    )


class ExperimentStopCommand(Settings):
    component: ClassVar[str] = "experiment"

    models_dir: Path = Field(description="the model registry", json_schema_extra=option("models"))


class ExperimentReportCommand(OnlineCommand):
    component: ClassVar[str] = "experiment"

    report: Path = Field(description="write the experiment's report (JSON) here")
    experiment: str | None = Field(
        None, description="experiment id (default: the running one, else the latest)"
    )


class ProvenanceCommand(Settings):
    component: ClassVar[str] = "provenance"

    run_dir: Path | None = Field(
        None,
        description="a run folder (its models/ is the registry)",
        json_schema_extra=option("dir"),
    )
    models_dir: Path | None = Field(
        None,
        description="the model registry (instead of --dir)",
        json_schema_extra=option("models"),
    )
    answers: Path | None = Field(None, description="the answer log (MODELS/answers when unset)")
    user: int = Field(ge=1, description="the user whose answer to explain")
    time: str = Field(
        description="ISO 8601 (no zone: UTC) or Unix seconds: the answer at or before"
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("online", help="online figures from the log: per version, arm and hour")
    add_options(p, OnlineCommand)
    p.set_defaults(handler=run_online)
    e = sub.add_parser("experiment", help="A/B experiments between model versions")
    esub = e.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = esub.add_parser("start", help="split users among versions (the service follows)")
    add_options(start, ExperimentStartCommand)
    start.set_defaults(handler=run_start)
    stop = esub.add_parser("stop", help="end the running experiment: production answers all")
    add_options(stop, ExperimentStopCommand)
    stop.set_defaults(handler=run_stop)
    report = esub.add_parser("report", help="each arm's figures, tests and verdicts")
    add_options(report, ExperimentReportCommand)
    report.set_defaults(handler=run_report)
    why = sub.add_parser("provenance", help="where the answer a user got at a time came from")
    add_options(why, ProvenanceCommand)
    why.set_defaults(handler=run_provenance)


def _online(command: OnlineCommand, default_state: Path) -> dict:
    return online_report(
        command.store,
        command.models_dir,
        state=command.state or default_state,
        window_minutes=command.window,
        follow_minutes=command.follow,
        lateness_minutes=command.lateness,
        limit_ms=command.limit_ms,
        final=command.final,
        answers=command.answers,
    )


def _write(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


def run_online(command: OnlineCommand) -> int:
    try:
        report = _online(command, command.models_dir / "online")
    except ValueError as error:
        print(f"movierec online: {error}", file=sys.stderr)
        return 2
    _write(command.report, report)
    for warning in report["warnings"]:
        print(f"movierec online: warning: {warning}", file=sys.stderr)
    overall = report["overall"]
    keys = ("requests", "availability", f"conversion@{command.window}m", "latency_p99_ms")
    summary = {"overall": {k: overall[k] for k in keys}, "versions": len(report["versions"])}
    print(orjson.dumps({**summary, "read": report["read"], "seconds": report["seconds"]}).decode())
    return 0


def run_start(command: ExperimentStartCommand) -> int:
    known = {v["version"] for v in Registry(command.models_dir).read()["versions"]}
    experiments = Experiments(command.models_dir)
    try:
        arms = with_exploration([parse_arm(text) for text in command.arm], command.explore)
        salt = experiments.get(command.split_of).salt if command.split_of else None
        experiment = experiments.start(
            arms,
            known,
            salt=salt,
            min_effect=command.min_effect,
            alpha=command.alpha,
            power=command.power,
        )
    except ValueError as error:
        print(f"movierec experiment start: {error}", file=sys.stderr)
        return 2
    print(orjson.dumps(experiment.to_json()).decode())
    return 0


def run_stop(command: ExperimentStopCommand) -> int:
    stopped = Experiments(command.models_dir).stop()
    if stopped is None:
        print("movierec experiment stop: no experiment is running", file=sys.stderr)
        return 1
    print(orjson.dumps(stopped.to_json()).decode())
    return 0


def run_report(command: ExperimentReportCommand) -> int:
    experiments = Experiments(command.models_dir)
    try:
        if command.experiment:
            experiment = experiments.get(command.experiment)
        else:
            experiment = experiments.current() or (experiments.all() or [None])[-1]
            if experiment is None:
                raise ValueError(f"no experiment was ever started in {command.models_dir}")
        online = _online(command, command.models_dir / "experiments" / "online")
    except ValueError as error:
        print(f"movierec experiment report: {error}", file=sys.stderr)
        return 2
    report = experiment_report(experiment, online)
    _write(command.report, report)
    verdicts = {f"{c['arm']} {c['metric']}": c["verdict"] for c in report["comparisons"]}
    print(orjson.dumps({"experiment": experiment.id, "verdicts": verdicts}).decode())
    return 0


def run_provenance(command: ProvenanceCommand) -> int:
    def refuse(message: str) -> int:
        print(f"movierec provenance: {message}", file=sys.stderr)
        return 2

    if (command.run_dir is None) == (command.models_dir is None):
        return refuse("give exactly one of --dir RUN and --models MODELS")
    models = command.models_dir or command.run_dir / "models"  # type: ignore[operator]
    if not (models / "registry.json").is_file():
        return refuse(f"no registry at {models} (no registry.json)")
    try:
        moment = parse_time(command.time)
        found = provenance(models, command.answers or answer_log_dir(models), command.user, moment)
    except NoAnswerError as error:
        print(
            orjson.dumps(
                {"user": command.user, "error": str(error), "nearest": error.nearest}
            ).decode()
        )
        return refuse(str(error))
    except ValueError as error:
        return refuse(str(error))
    print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
    return 0
