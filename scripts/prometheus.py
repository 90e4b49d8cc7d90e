#!/usr/bin/env python3
"""Start, stop and probe a local Prometheus server for development and tests, with the
project's alert rules and file-based service discovery of what it scrapes.

Needs only the standard library and a `prometheus` binary (Debian's `prometheus` package,
which scripts/setup.sh installs; --binary names another).

    python3 scripts/prometheus.py start --dir DIR --port 19090 [--target JOB=HOST:PORT ...]
                                        [--rules FILE ...] [--interval 1s]
    python3 scripts/prometheus.py targets --dir DIR [--target JOB=HOST:PORT ...]
    python3 scripts/prometheus.py status --dir DIR
    python3 scripts/prometheus.py stop --dir DIR

`start` writes DIR/prometheus.yml (scrape and evaluation every --interval) and prints
`url=http://127.0.0.1:PORT` once Prometheus answers /-/ready. What it scrapes is listed in
DIR/targets.json, which `targets` rewrites (atomically) and Prometheus rereads by itself:
targets known only after Prometheus started (a service on a free port) need no restart.
Each target's `job` label is the JOB given for it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / ".prometheus"
DEFAULT_RULES = REPO_ROOT / "deploy" / "prometheus" / "movierec-rules.yml"
MARKER = ".movierec-prometheus"
DURATION = re.compile(r"^(\d+(ms|s|m|h))+$")

CONFIG = """# Written by scripts/prometheus.py; rewritten on every start.
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
rule_files: {rules}
scrape_configs:
  - job_name: movierec-discovered  # each target's own `job` label replaces this name
    file_sd_configs:
      - files: [{targets}]
        refresh_interval: {interval}
"""


def parse_target(text: str) -> tuple[str, str]:
    job, sep, address = text.partition("=")
    if not sep or not job or ":" not in address:
        raise argparse.ArgumentTypeError(f"expected JOB=HOST:PORT, got {text!r}")
    return job, address


def write_targets(data_dir: Path, targets: list[tuple[str, str]]) -> None:
    """The file_sd file: one group per job. Written aside and renamed, so Prometheus never
    reads half of it."""
    jobs: dict[str, list[str]] = {}
    for job, address in targets:
        jobs.setdefault(job, []).append(address)
    groups = [{"targets": addresses, "labels": {"job": job}} for job, addresses in jobs.items()]
    staging = data_dir / ".targets.json.new"
    staging.write_text(json.dumps(groups, indent=2) + "\n")
    os.replace(staging, data_dir / "targets.json")


def ready(port: int, timeout: float = 2.0) -> bool:
    """True when Prometheus says it is ready to serve queries (not merely listening)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=timeout) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _state(data_dir: Path) -> dict | None:
    try:
        return json.loads((data_dir / "prometheus.json").read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int, data_dir: Path) -> bool:
    """True only for our Prometheus: a pid file can outlive its process, the pid be reused."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the signal probe
    return str(data_dir / "prometheus.yml").encode() in cmdline


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As Prometheus itself binds: connections of an earlier run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def log_tail(data_dir: Path, lines: int = 30) -> str:
    path = data_dir / "prometheus.out"
    if not path.exists():
        return f"(no log in {data_dir})"
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {path} (last {len(tail)} lines) ---\n" + "\n".join(tail)


def start(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir.resolve()
    binary = shutil.which(args.binary)
    if binary is None:
        print(
            f"prometheus.py: {args.binary} not found (apt-get install prometheus)", file=sys.stderr
        )
        return 1
    if not DURATION.match(args.interval):
        print(f"prometheus.py: --interval {args.interval!r} is not a duration", file=sys.stderr)
        return 1
    rules = [str(Path(r).resolve()) for r in (args.rules or [DEFAULT_RULES])]
    for path in rules:
        if not Path(path).is_file():
            print(f"prometheus.py: no rules file {path}", file=sys.stderr)
            return 1
    stop_server(data_dir)
    if not _port_free(args.port):
        print(f"prometheus.py: port {args.port} is already in use", file=sys.stderr)
        return 1
    # Fresh storage on every start; only a directory this script made is ever wiped.
    if data_dir.exists() and any(data_dir.iterdir()) and not (data_dir / MARKER).exists():
        print(f"prometheus.py: {data_dir} is not empty and not ours; refusing", file=sys.stderr)
        return 1
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("created by scripts/prometheus.py; wiped on every start\n")
    (data_dir / ".gitignore").write_text("*\n")
    write_targets(data_dir, args.target or [])
    config = data_dir / "prometheus.yml"
    config.write_text(
        CONFIG.format(
            interval=args.interval,
            rules=json.dumps(rules),
            targets=json.dumps(str(data_dir / "targets.json")),
        )
    )
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir / 'data'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=127.0.0.1:{args.port}",
        "--web.enable-lifecycle",  # POST /-/reload rereads the config and rules
    ]
    with open(data_dir / "prometheus.out", "ab") as out:
        # A session of its own: Ctrl-C in the caller's terminal does not reach it.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (data_dir / "prometheus.json").write_text(json.dumps({"pid": proc.pid, "port": args.port}))
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(log_tail(data_dir), file=sys.stderr)
            print(f"prometheus.py: prometheus exited with code {proc.returncode}", file=sys.stderr)
            return 1
        if ready(args.port):
            print(f"url=http://127.0.0.1:{args.port}", flush=True)
            return 0
        time.sleep(0.1)
    print(log_tail(data_dir), file=sys.stderr)
    print(f"prometheus.py: not ready after {args.timeout:.0f} s; stopping it", file=sys.stderr)
    stop_server(data_dir)
    return 1


def stop_server(data_dir: Path, grace: float = 20.0) -> None:
    """SIGTERM (Prometheus then flushes and exits), SIGKILL after grace seconds; idempotent."""
    state = _state(data_dir)
    if state is not None and _alive(state["pid"], data_dir):
        pid = state["pid"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(pid, data_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid, data_dir):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    (data_dir / "prometheus.json").unlink(missing_ok=True)


def status(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir.resolve()
    state = _state(data_dir)
    if state is None or not _alive(state["pid"], data_dir):
        print("stopped")
        return 1
    if not ready(state["port"]):
        print(f"starting (pid {state['pid']}, not ready)")
        return 1
    print(f"url=http://127.0.0.1:{state['port']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start a fresh Prometheus in the background")
    p_targets = sub.add_parser("targets", help="replace what the running Prometheus scrapes")
    p_stop = sub.add_parser("stop", help="stop it (idempotent)")
    p_status = sub.add_parser("status", help="exit 0 when it is running and ready")
    for p in (p_start, p_targets, p_stop, p_status):
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    for p in (p_start, p_targets):
        p.add_argument("--target", type=parse_target, action="append", metavar="JOB=HOST:PORT")
    p_start.add_argument("--port", type=int, default=19090)
    p_start.add_argument("--rules", action="append", metavar="FILE",
                         help=f"rules file (repeatable; default {DEFAULT_RULES.name})")  # fmt: skip
    p_start.add_argument("--interval", default="1s", help="scrape and evaluation interval")
    p_start.add_argument("--timeout", type=float, default=60.0)
    p_start.add_argument("--binary", default="prometheus")
    args = parser.parse_args(argv)
    if args.command == "start":
        return start(args)
    if args.command == "targets":
        data_dir = args.dir.resolve()
        if not (data_dir / MARKER).exists():
            print(f"prometheus.py: {data_dir} holds no Prometheus of ours", file=sys.stderr)
            return 1
        write_targets(data_dir, args.target or [])
        return 0
    if args.command == "stop":
        stop_server(args.dir.resolve())
        print("stopped")
        return 0
    return status(args)


if __name__ == "__main__":
    sys.exit(main())
