"""`movierec run`: the main job — the simulated site and movierec, as separate supervised
processes (movierec/run/children.py), until Ctrl-C or for `--days` simulated days.

Ctrl-C (SIGINT) or SIGTERM stops the processes in order: ingestion first (while the site's
API can still vouch for the movies of the lines it read), then the site (it finishes its
tick, flushes its log and checkpoints), the service last. Nothing is lost: what the log
holds and ingestion has not yet read is read by the next run, which resumes the same
folder: the site from its checkpoint, ingestion from the store's, the service from the
registry's production version, the scheduler from its state. A crashed process is
restarted alone, after a pause that grows with repeated crashes, and the crash is logged.

A bounded run (`--days`) waits, once the site has finished (its API stays up), until
ingestion has stored every line the site wrote, stops the rest and writes its reports (the
site's ledger, the online figures from the log, the release records) under reports/,
printing a JSON summary.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from movierec.config import add_options
from movierec.run.children import STOP_ORDER, Ports, children, stream_url
from movierec.run.config import RunConfig, RunDirError, free_port, port_taken, prepare_run_dir
from movierec.run.report import write_reports
from movierec.run.status import Display, status
from movierec.store.events import EventStore, atomic_write
from movierec.supervision.supervisor import Supervisor

CATCH_UP_TIMEOUT = 300.0  # seconds ingestion may take to store the last lines of a bounded run


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the whole system on this machine, until stopped")
    add_options(p, RunConfig)
    p.set_defaults(handler=run)


def run(config: RunConfig) -> int:
    root = config.dir
    try:
        resumed = prepare_run_dir(root)
        _check_resumable(root, resumed)
        ports = _ports(config)
        if config.kafka:
            _check_broker(config)
    except RunDirError as error:
        print(f"movierec run: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    display = Display(enabled=not config.quiet)
    supervisor = Supervisor(
        children(config, root, ports), root / "logs" / "supervisor.jsonl", display.event
    )
    display.message(_where(root, ports, resumed))
    supervisor.record("run", resumed=resumed, stream=stream_url(config, root), days=config.days)
    _write_where(root, ports)
    outcome: dict[str, Any] = {"dir": str(root), "resumed": resumed}
    try:
        supervisor.start(stop.is_set)
        while not stop.is_set():
            supervisor.watch()
            if display.due():
                display.update(status(root, supervisor.restarts))
            if supervisor.finished("site"):
                outcome["caught_up"] = _catch_up(root, stop)
                break
            stop.wait(0.5)
    except RuntimeError as error:  # a process that never got ready
        print(f"movierec run: {error}", file=sys.stderr)
        outcome["error"] = str(error)
    finally:
        outcome["stopped"] = supervisor.stop(STOP_ORDER)
        supervisor.record("stopped all", restarts=supervisor.restarts)
    if "error" in outcome:
        return 1
    outcome["restarts"] = supervisor.restarts
    outcome["status"] = status(root, supervisor.restarts)
    if config.days is not None:
        outcome.update(write_reports(root))
    sys.stdout.write(orjson.dumps(outcome, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _check_resumable(root: Path, resumed: bool) -> None:
    if resumed and (root / "store").exists() and not (root / "site").exists():
        raise RunDirError(
            f"--dir {root} was made by an older `movierec run` (it has a store but no site "
            "checkpoint), so its site cannot resume: choose a new folder"
        )


def _ports(config: RunConfig) -> Ports:
    chosen = {
        "api": config.api_port,
        "service": config.service_port,
        "monitor": config.monitor_port,
        "metrics": config.metrics_port,
    }
    for name, port in chosen.items():
        if port == 0:
            chosen[name] = free_port()
        elif port_taken(port):
            flag = "--metrics-port" if name == "metrics" else f"--{name}-port"
            raise RunDirError(
                f"port {port} ({name}) is taken: stop what holds it (another run?) or choose "
                f"another with {flag} (0: any free one)"
            )
    return Ports(**chosen)


def _write_where(root: Path, ports: Ports) -> None:
    """run.json: where this run's parts listen, for tools and tests (ports given as 0 are
    only known once the run has chosen them)."""
    where = {
        "service": ports.service_url,
        "dashboard": ports.dashboard_url,
        "site_api": f"http://127.0.0.1:{ports.api}",
        "ingest_metrics": f"http://127.0.0.1:{ports.metrics}/metrics",
        "pid": os.getpid(),
    }
    atomic_write(root / "run.json", orjson.dumps(where, option=orjson.OPT_INDENT_2))


def _check_broker(config: RunConfig) -> None:
    from movierec.stream.kafka import ensure_topic

    try:
        ensure_topic(config.kafka_bootstrap, config.topic)
    except Exception as error:  # any failure to reach it: say how to get one
        raise RunDirError(
            f"no Kafka broker answers at {config.kafka_bootstrap} ({error}): start one with "
            "`.venv/bin/python scripts/kafka.py start` (scripts/run.sh --kafka does)"
        ) from error


def _where(root: Path, ports: Ports, resumed: bool) -> str:
    verb = "resuming" if resumed else "starting"
    return "\n".join(
        (
            f"movierec run: {verb} {root}",
            f"  service     {ports.service_url}/recommend/<userid>",
            f"  dashboard   {ports.dashboard_url}",
            f"  site API    http://127.0.0.1:{ports.api}/user/<id>",
            f"  metrics     {ports.service_url}/metrics, http://127.0.0.1:{ports.metrics}/metrics",
            f"  processes   {root / 'logs'} (supervisor.jsonl: starts, crashes, restarts)",
            f"  releases    movierec release --models {root / 'models'} --history",
            "  stop with Ctrl-C; running again with the same --dir resumes",
        )
    )


def _catch_up(root: Path, stop: threading.Event) -> bool:
    """Wait until ingestion has read every line the finished site wrote."""
    ledger = root / "site" / "ledger.json"
    try:
        written = int(orjson.loads(ledger.read_bytes())["lines"])
    except (OSError, KeyError, ValueError) as error:
        print(f"movierec run: the site left no ledger ({error}); not waiting", file=sys.stderr)
        return False
    store = EventStore(root / "store")
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while not stop.is_set() and time.monotonic() < deadline:
        checkpoint = store.checkpoint()
        if checkpoint is not None and checkpoint.counters.get("lines_read", 0) >= written:
            return True
        stop.wait(0.5)
    print(
        f"movierec run: ingestion had not read all {written} lines of the site within "
        f"{CATCH_UP_TIMEOUT:g} s; the next run reads the rest",
        file=sys.stderr,
    )
    return False
