"""Hand-made inputs of the online figures: recommendation lines and watches in a store,
answer records in an answer log, each batch committed as ingestion would."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa

from movierec.ingest import tables
from movierec.registry.experiments import answer_log_dir
from movierec.store.events import Checkpoint, EventStore
from movierec.store.schema import RECOMMENDATION_SCHEMA
from tests.support.live import Live
from tests.support.store import write_rate, write_watch
from tests.support.waiting import wait_until

SEC = 10**9
TIMEOUT = "java.util.concurrent.TimeoutException: Request timeout to x/127.0.0.1:8082 after 600 ms"


@dataclass
class Request:
    t_ns: int
    user: int
    status: int = 200
    items: tuple[str, ...] = ()
    latency_ms: int = 5

    @property
    def result(self) -> str:
        if self.status == 200:
            return ", ".join(self.items)
        return TIMEOUT if self.status == 0 else "Internal Server Error"


@dataclass
class Answer:
    user: int
    version: str
    items: tuple[str, ...]
    experiment: str | None = None
    arm: str | None = None


@dataclass
class OnlineWorld:
    """A store and a registry directory that tests grow batch by batch."""

    root: Path
    seq: int = 0
    clock_us: int = 1_800_000_000_000_000  # the service's clock: unrelated to the log's
    store: EventStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = EventStore(self.root / "store")
        self.store.recover()  # creates its state directory, as ingestion does
        self.models = self.root / "models"
        self.models.mkdir(parents=True, exist_ok=True)

    def batch(
        self,
        requests: list[Request] = (),  # type: ignore[assignment]
        watches: list[tuple[int, int, str, int]] = (),  # type: ignore[assignment]
        rates: list[tuple[int, int, str, int]] = (),  # type: ignore[assignment]
        answers: list[Answer] = (),  # type: ignore[assignment]
    ) -> None:
        """Answer records first (the service writes them as it answers), then one committed
        batch of the site's log."""
        self.answer(list(answers))
        self.seq += 1
        if requests:
            table = pa.Table.from_pylist(
                [
                    {
                        "time": r.t_ns,
                        "user_id": r.user,
                        "service": "127.0.0.1:8082",
                        "status": r.status,
                        "latency_ms": r.latency_ms,
                        "result": r.result,
                        "items": list(r.items) if r.status == 200 else [],
                    }
                    for r in requests
                ],
                schema=RECOMMENDATION_SCHEMA,
            )
            times = table.column("time").cast(pa.int64()).to_numpy()
            for date, part in tables.by_date(table, times):
                self.store.write_table(f"events/recommendation/date={date}", self.seq, part)
        if watches:
            write_watch(self.store, self.seq, list(watches))
        if rates:
            write_rate(self.store, self.seq, list(rates))
        self.store.commit(Checkpoint(seq=self.seq))

    def answer(self, answers: list[Answer]) -> None:
        if not answers:
            return
        directory = answer_log_dir(self.models)
        directory.mkdir(parents=True, exist_ok=True)
        lines = []
        for a in answers:
            self.clock_us += 1000
            stamp = datetime.fromtimestamp(self.clock_us / 1e6, UTC)
            lines.append(
                orjson.dumps(
                    {
                        "time": stamp.isoformat(timespec="microseconds"),
                        "user": a.user,
                        "version": a.version,
                        "experiment": a.experiment,
                        "arm": a.arm,
                        "source": "model",
                        "items": ",".join(a.items),
                    }
                )
            )
        with open(directory / "answers-2027011500.jsonl", "ab") as handle:
            handle.write(b"\n".join(lines) + b"\n")


def serve_models(models: Path, root: Path) -> Live:
    """`movierec serve --port 0` over a run's registry, once it answers from a model."""
    stderr = root / "serve.stderr"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "movierec.cli", "serve", "--models", str(models),
             "--port", "0", "--poll", "0.2"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip
    listening = re.compile(r"listening on (127\.0\.0\.1:\d+)")
    try:
        wait_until(
            lambda: listening.search(stderr.read_text()) or proc.poll() is not None,
            what="`movierec serve` to say where it listens",
        )
        found = listening.search(stderr.read_text())
        assert found, stderr.read_text()
        live = Live(proc, found.group(1), stderr)
        wait_until(lambda: live.get("/healthz")[0] == 200, what="the service to load its model")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return live
