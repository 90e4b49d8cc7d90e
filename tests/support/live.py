"""The real `movierec serve` and `movierec ingest --follow --metrics-port 0` as processes,
for tests that watch them from outside (a real Prometheus): each on a free port it names
on stderr, with the address its /metrics is scraped at."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from movierec.stream import open_sink
from tests.models.contract import planted_data
from tests.support.serving import hand_made_models
from tests.support.waiting import wait_until

# A few lines of the site's log: three good, two bad ("empty", "bad_timestamp").
LOG_LINES = [
    b"2025-10-17T01:38:54,220358,GET /data/m/padre+nuestro+2007/90.mpg",
    b"2025-10-17T01:39:12,220358,GET /rate/padre+nuestro+2007=4",
    b"2025-10-17T01:40:00,7,GET /data/m/mona+lisa+1986/0.mpg",
    b"",
    b"2022-11-14T1O2:23:16,1,GET /data/m/a+2000/1.mpg",
]


@dataclass
class Live:
    """A movierec process and where it listens (HOST:PORT)."""

    proc: subprocess.Popen
    address: str
    stderr: Path

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}/metrics"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{self.address}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def stop(self) -> None:
        """SIGTERM and wait: both commands finish cleanly on it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _start(args: list[str], stderr: Path, address: re.Pattern[str]) -> Live:
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "movierec.cli", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_until(
            lambda: address.search(stderr.read_text()) or proc.poll() is not None,
            what=f"`movierec {args[0]}` to say where it listens",
        )
        found = address.search(stderr.read_text())
        assert found, stderr.read_text()
    except BaseException:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()
        raise
    return Live(proc, found.group(1), stderr)


def start_serve(root: Path) -> Live:
    """`movierec serve --port 0` over a registry of tiny hand-made models, once it answers."""
    models = hand_made_models(root / "models", planted_data())
    live = _start(
        ["serve", "--models", str(models.registry.root), "--port", "0", "--poll", "0.2"],
        root / "serve.stderr",
        re.compile(r"listening on (127\.0\.0\.1:\d+)"),
    )
    wait_until(lambda: live.get("/healthz")[0] == 200, what="the service to load its model")
    return live


def start_ingest(root: Path, lines: list[bytes] = LOG_LINES) -> Live:
    """`movierec ingest --follow --metrics-port 0` over a local log holding `lines`."""
    log = root / "log"
    sink = open_sink(f"file://{log}")
    try:
        sink.write(lines)
        sink.flush()
    finally:
        sink.close()
    return _start(
        [
            *("ingest", "--source", f"file://{log}", "--store", str(root / "store")),
            *("--api", "", "--follow", "--max-wait", "0.1", "--metrics-port", "0", "--quiet"),
        ],
        root / "ingest.stderr",
        re.compile(r"metrics on http://(127\.0\.0\.1:\d+)/metrics"),
    )
