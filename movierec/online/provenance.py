"""Where one answer came from: the answer a user got at or just before a time, joined with
the registry's record of the version that gave it (code, data, hyperparameters, offline
scores) and the experiment arm it was served under.

The answer log is read as a stream, one line at a time, and only the lines of the asked
user are parsed, so its size does not matter. Files are `answers-YYYYMMDDHH.jsonl`, named
by the hour they were flushed in: a record made just before an hour's end can land in the
next hour's file, so the files kept are those up to the hour after T's (later ones hold
only answers after T and are skipped unread).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from movierec.registry.experiments import Experiments
from movierec.registry.versions import Registry

NEAREST = 3  # answers after T shown when none came before it
SAMPLED = (
    "the answer log may be sampled (movierec serve --telemetry-sample): an answer the "
    "service gave need not be in it"
)


class NoAnswerError(LookupError):
    """No answer to the user at or before the time; carries the nearest ones there are."""

    def __init__(self, message: str, nearest: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.nearest = nearest


@dataclass(frozen=True)
class Answer:
    at: datetime
    record: dict[str, Any]
    file: str

    def to_json(self) -> dict[str, Any]:
        items = [part.strip() for part in str(self.record.get("items", "")).split(",")]
        return {
            "time": self.at.isoformat(timespec="microseconds"),
            "items": [item for item in items if item],
            "source": self.record.get("source"),
            "version": self.record.get("version"),
            "experiment": self.record.get("experiment"),
            "arm": self.record.get("arm"),
            "file": self.file,
        }


def parse_time(text: str) -> datetime:
    """ISO 8601 (no zone: UTC) or Unix seconds; a clear ValueError otherwise."""
    stripped = text.strip()
    try:
        return datetime.fromtimestamp(float(stripped), UTC)
    except (ValueError, OverflowError, OSError):
        pass  # not a number, or one no clock reaches ("inf", "1e30"): try ISO, then refuse
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"time {text!r} is neither ISO 8601 (2026-12-07T08:30:00, zone optional: UTC) "
            "nor Unix seconds"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _hour_of(path: Path) -> datetime | None:
    try:
        return datetime.strptime(path.stem.removeprefix("answers-"), "%Y%m%d%H").replace(tzinfo=UTC)
    except ValueError:
        return None


def user_answers(directory: Path, user: int, until: datetime | None = None) -> Iterator[Answer]:
    """The user's answers in the log, file by file, line by line; files flushed more than an
    hour after `until` are skipped."""
    needle = b'"user":%d,' % user  # orjson writes no spaces: a cheap filter before parsing
    for path in sorted(directory.glob("answers-*.jsonl")):
        hour = _hour_of(path)
        if until is not None and hour is not None and hour > until + timedelta(hours=1):
            continue
        with open(path, "rb") as handle:
            for line in handle:
                if needle not in line:
                    continue
                try:
                    record = orjson.loads(line)
                    if int(record["user"]) != user:
                        continue
                    at = datetime.fromisoformat(record["time"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # a torn last line of a file being written: not an answer yet
                yield Answer(at if at.tzinfo else at.replace(tzinfo=UTC), record, path.name)


def last_answer(directory: Path, user: int, moment: datetime) -> Answer:
    """The user's latest answer at or before `moment`; NoAnswerError with the nearest later
    ones when there is none."""
    if not directory.is_dir():
        raise NoAnswerError(f"no answer log at {directory}; {SAMPLED}", [])
    best: Answer | None = None
    for answer in user_answers(directory, user, until=moment):
        if answer.at <= moment and (best is None or answer.at >= best.at):
            best = answer
    if best is not None:
        return best
    later = (a for a in user_answers(directory, user) if a.at > moment)
    nearest = heapq.nsmallest(NEAREST, later, key=lambda a: a.at)
    what = "no answer at all" if not nearest else f"only answers after {moment.isoformat()}"
    raise NoAnswerError(
        f"user {user}: {what} in {directory}; {SAMPLED}", [a.to_json() for a in nearest]
    )


def provenance(models: Path, answers: Path, user: int, moment: datetime) -> dict[str, Any]:
    """The answer and everything that made it. Raises NoAnswerError, or ValueError when
    the version that answered is not in the registry."""
    answer = last_answer(answers, user, moment)
    version = str(answer.record.get("version"))
    registry = Registry(models)
    path = registry.versions_dir / version / "provenance.json"
    if not path.is_file():
        raise ValueError(
            f"user {user} was answered at {answer.at.isoformat()} by version {version!r}, "
            f"which has no provenance.json in {registry.versions_dir}"
        )
    record = registry.provenance(version)
    experiment = None
    if answer.record.get("experiment"):
        experiment_id = str(answer.record["experiment"])
        try:
            found = Experiments(models).get(experiment_id).to_json()
        except ValueError:
            found = None  # said so below rather than failing: the answer is still known
        experiment = {"id": experiment_id, "arm": answer.record.get("arm"), "record": found}
    releases = [r.to_json() for r in registry.releases() if r.to_version == version and r.moves]
    return {
        "user": user,
        "asked": moment.isoformat(),
        "answer": answer.to_json(),
        "version": version,
        "model": record.get("model"),
        "trained_at": record.get("trained_at"),
        "code": record.get("code"),
        "data": record.get("data"),
        "hyperparameters": record.get("hyperparameters"),
        "validation": record.get("validation"),
        "offline_metrics": record.get("offline_metrics"),
        "libraries": record.get("libraries"),
        "experiment": experiment,
        "releases": releases,
        "note": SAMPLED,
    }
