"""`movierec provenance`: hand-made answer logs and registries whose right answer is known,
then the real service's own answer log over a trained registry."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from movierec.online.provenance import parse_time
from movierec.registry.experiments import Arm, Experiment
from movierec.registry.versions import Registry
from tests.registry.test_releases import hand_made
from tests.serving.conftest import serving  # noqa: F401  (the fixture, used by name)
from tests.support.commands import movierec
from tests.support.serving import Running
from tests.support.waiting import wait_until

EXPERIMENT = Experiment("exp-1", 7, (Arm("control", "a", 0.5), Arm("treat", "b", 0.5)), "t")


def answer(at: str, user: int, version: str, items: str, **extra: object) -> bytes:
    record = {"time": at, "user": user, "version": version, "experiment": None, "arm": None}
    return orjson.dumps({**record, "source": "model", "items": items, **extra})


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run folder: versions a and b with known provenance, an experiment, and an answer
    log over three hourly files (user 4 beside user 42, to catch a sloppy match)."""
    registry = hand_made(tmp_path / "models", ["a", "b"])
    for version, ndcg in (("a", 0.1), ("b", 0.2)):
        provenance = {
            "version": version,
            "model": "als",
            "code": {"commit": f"commit-{version}", "dirty": False},
            "data": {
                "from": "2026-01-01",
                "to": "2026-01-02",
                "store_batch": 3,
                "content_hash": "h",
            },
            "hyperparameters": {"factors": 8},
            "offline_metrics": {"ndcg@20": ndcg},
        }
        path = registry.versions_dir / version / "provenance.json"
        path.write_text(json.dumps(provenance))
    registry.promote("a", "trained", evidence={"ndcg": 0.1})
    (tmp_path / "models" / "experiments").mkdir()
    (tmp_path / "models" / "experiments" / "exp-1.json").write_text(
        json.dumps(EXPERIMENT.to_json())
    )
    log = tmp_path / "models" / "answers"
    log.mkdir()
    files = {
        "answers-2026120708.jsonl": [
            answer("2026-12-07T08:10:00.000000+00:00", 42, "a", "x, y"),
            answer("2026-12-07T08:20:00.000000+00:00", 4, "a", "p, q"),
        ],
        # flushed just after the hour: the 08:59:59.9 answer lives in the 09 file
        "answers-2026120709.jsonl": [
            answer(
                "2026-12-07T08:59:59.900000+00:00", 4, "b", "r", experiment="exp-1", arm="treat"
            ),
            answer("2026-12-07T09:30:00.000000+00:00", 4, "a", "s"),
        ],
        # an impossible record (timed before its file's hour) proves the file goes unread
        "answers-2026120712.jsonl": [answer("2026-12-07T08:00:00.000000+00:00", 4, "a", "never")],
    }
    for name, lines in files.items():
        (log / name).write_bytes(b"\n".join(lines) + b"\n")
    return tmp_path


def explain(*args: str) -> tuple[int, dict, str]:
    done = movierec("provenance", *args)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def test_the_answer_just_before_the_time_with_its_version_and_arm(run: Path) -> None:
    code, found, _ = explain("--dir", str(run), "--user", "4", "--time", "2026-12-07T09:00:00")
    assert code == 0
    assert found["answer"]["time"] == "2026-12-07T08:59:59.900000+00:00"
    assert found["answer"]["items"] == ["r"] and found["answer"]["source"] == "model"
    assert found["version"] == "b" and found["code"] == {"commit": "commit-b", "dirty": False}
    assert found["offline_metrics"] == {"ndcg@20": 0.2}
    assert found["data"]["content_hash"] == "h" and found["hyperparameters"] == {"factors": 8}
    assert found["experiment"]["arm"] == "treat"
    assert found["experiment"]["record"]["arms"][1] == {
        "name": "treat",
        "version": "b",
        "share": 0.5,
    }


def test_every_spelling_of_the_time_gives_the_same_answer(run: Path) -> None:
    spellings = ("2026-12-07T08:25:00", "2026-12-07T09:25:00+01:00", "2026-12-07T08:25:00Z")
    unix = str(datetime(2026, 12, 7, 8, 25, tzinfo=UTC).timestamp())
    for spelling in (*spellings, unix):
        code, found, _ = explain("--models", str(run / "models"), "--user", "4", "--time", spelling)
        assert code == 0 and found["answer"]["items"] == ["p", "q"], spelling
        assert found["version"] == "a" and found["releases"][0]["evidence"] == {"ndcg": 0.1}


def test_files_flushed_well_after_the_time_are_not_read(run: Path) -> None:
    code, found, _ = explain("--dir", str(run), "--user", "4", "--time", "2026-12-07T10:00:00")
    assert code == 0 and found["answer"]["items"] == ["s"]


def test_no_answer_before_the_time_is_loud_with_the_nearest(run: Path) -> None:
    code, found, error = explain("--dir", str(run), "--user", "4", "--time", "2026-12-07T08:00:00")
    assert code == 2 and "only answers after" in error and "--telemetry-sample" in error
    assert [a["items"] for a in found["nearest"]] == [["p", "q"], ["r"], ["s"]]
    code, found, error = explain("--dir", str(run), "--user", "5", "--time", "2026-12-08")
    assert code == 2 and "no answer at all" in error and found["nearest"] == []


def test_bad_input_is_refused_clearly(run: Path) -> None:
    code, _, error = explain("--dir", str(run), "--user", "4", "--time", "yesterday")
    assert code == 2 and "neither ISO 8601" in error
    code, _, error = explain("--dir", str(run), "--models", str(run), "--user", "4", "--time", "0")
    assert code == 2 and "exactly one" in error
    (run / "models" / "answers" / "answers-2026120713.jsonl").write_bytes(
        answer("2026-12-07T13:00:00+00:00", 9, "gone", "z") + b"\n"
    )
    code, _, error = explain("--dir", str(run), "--user", "9", "--time", "2026-12-07T14:00:00")
    assert code == 2 and "'gone'" in error


def test_parse_time_reads_unix_seconds_and_zoneless_iso_as_utc() -> None:
    assert parse_time("0") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_time("2026-12-07T08:00") == datetime(2026, 12, 7, 8, tzinfo=UTC)
    for nonsense in ("inf", "nan", "1e30", ""):
        with pytest.raises(ValueError, match="neither ISO 8601"):
            parse_time(nonsense)


def test_an_answer_of_the_real_service_is_explained(serving: Running) -> None:  # noqa: F811
    status, body, headers = serving.get("/recommend/7")
    assert status == 200
    asked = time.time()
    log = serving.service.answers.directory
    assert log is not None
    wait_until(
        lambda: any(b'"user":7,' in p.read_bytes() for p in log.glob("answers-*.jsonl")),
        what="the answer log to hold user 7's answer",
    )
    code, found, error = explain(
        "--models", str(serving.models), "--answers", str(log), "--user", "7", "--time", str(asked)
    )
    assert code == 0, error
    version = headers["X-Model-Version"]
    assert found["version"] == version
    assert found["answer"]["items"] == [item.strip() for item in body.decode().split(",")]
    trained = Registry(serving.models).provenance(version)
    assert found["code"] == trained["code"] and found["data"] == trained["data"]
    assert found["hyperparameters"] == trained["hyperparameters"]
    assert found["offline_metrics"] == trained["offline_metrics"]
