#!/usr/bin/env python3
"""Several `movierec serve` replicas on loopback behind nginx, started, inspected, restarted
one at a time and stopped by one script (run through scripts/replicas.sh).

    scripts/replicas.sh start --replicas 3 --models OUT/models --port 8082 [--dir DIR]
                              [--first-port P] [--workers 1] [-- SERVE OPTIONS...]
    scripts/replicas.sh start --shards 3 [--replicas 1] ...   # sharded: replicas per shard
    scripts/replicas.sh status  [--dir DIR]     # each replica's pid, port, readiness, version
    scripts/replicas.sh restart [--dir DIR]     # rolling: one replica at a time, each ready
    scripts/replicas.sh kill --replica I [--dir DIR]   # SIGKILL one (a crash, for drills)
    scripts/replicas.sh stop    [--dir DIR]

nginx listens on --port and spreads requests over the replicas (ports --first-port and up,
free ones by default). A replica that refuses, resets or times out a request, or answers
502/503, costs nothing beyond its in-flight requests: nginx passes an idempotent GET to
the next replica. Every replica reads the same registry and polls it, so all of them serve
the production version within one poll of a release. `start` returns once nginx and every
replica answer /healthz (a model is loaded); the state lives in DIR/replicas.json.

With --shards N, each replica serves `--shard I/N` (the users whose id hashes to shard I),
--replicas of them per shard, and nginx sends /recommend/<userid> to the shard of the id
with split_clients, the same function the service uses (movierec/serving/shard.py);
everything else (an invalid id, /healthz) goes to the shard of the empty id.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from replicas_nginx import write_nginx_conf  # scripts/replicas_nginx.py, beside this file

from movierec.serving.shard import MAX_SHARDS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / ".replicas"
MARKER = ".movierec-replicas"


def fail(message: str) -> int:
    print(f"replicas: {message}", file=sys.stderr)
    return 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def health(port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """A replica's /healthz as JSON (also when 503: alive, no model yet); None if silent."""
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as error:
        with contextlib.suppress(ValueError):
            return dict(json.loads(error.read()))
        return None
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie of ours (we started it and have not reaped it) is not alive.
    with contextlib.suppress(ChildProcessError):
        done, _status = os.waitpid(pid, os.WNOHANG)
        return done == 0
    return True


def load_state(directory: Path) -> dict[str, Any]:
    path = directory / "replicas.json"
    if not path.is_file():
        raise SystemExit(f"replicas: nothing started in {directory} (no replicas.json)")
    return dict(json.loads(path.read_text()))


def save_state(directory: Path, state: dict[str, Any]) -> None:
    path = directory / "replicas.json"
    path.with_suffix(".tmp").write_text(json.dumps(state, indent=2) + "\n")
    path.with_suffix(".tmp").replace(path)


def spawn_replica(directory: Path, state: dict[str, Any], index: int) -> int:
    replica = state["replicas"][index]
    argv = [sys.executable, "-m", "movierec.cli", "serve", "--models", state["models"]]
    argv += ["--port", str(replica["port"]), *state["serve_args"]]
    if replica.get("shard") is not None:
        argv += ["--shard", f"{replica['shard']}/{state['shards']}"]
    with open(directory / f"replica-{index}.log", "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the caller's terminal does not reach it
            cwd=REPO_ROOT,
        )
    replica["pid"] = process.pid
    return process.pid


def wait_ready(directory: Path, state: dict[str, Any], index: int, timeout: float) -> str | None:
    """Until the replica answers /healthz with a model: None, or why it never did."""
    replica = state["replicas"][index]
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        if not alive(replica["pid"]):
            tail = (directory / f"replica-{index}.log").read_text(errors="replace")[-2000:]
            return f"replica {index} exited:\n{tail}"
        seen = health(replica["port"])
        if seen is not None and seen.get("ready"):
            return None
        time.sleep(0.1)
    why = "alive without a model" if seen is not None else "not answering"
    return f"replica {index} (port {replica['port']}) {why} after {timeout:.0f} s"


def stop_pid(pid: int, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
    """Signal and wait; SIGKILL after `grace` seconds (the service finishes in-flight
    requests on SIGTERM, up to its own 5 s grace)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + grace
        time.sleep(0.05)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def start(args: argparse.Namespace) -> int:
    directory: Path = args.dir.resolve()
    nginx = nginx_binary()
    if nginx is None:
        return fail("nginx is not installed (scripts/setup.sh installs Debian's nginx)")
    if (directory / "replicas.json").is_file():
        state = load_state(directory)
        if any(alive(r["pid"]) for r in state["replicas"]) or alive(state.get("nginx_pid", 0)):
            return fail(f"replicas already run from {directory}; `stop` them first")
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER).exists():
        return fail(f"{directory} is not empty and not a replicas dir; refusing")
    if args.replicas is None:  # per shard when sharded
        args.replicas = 1 if args.shards else 3
    if args.replicas < 1:
        return fail("--replicas must be at least 1")
    if not 0 <= args.shards <= MAX_SHARDS:
        return fail(f"--shards is 0 (unsharded) .. {MAX_SHARDS}")
    if not Path(args.models).is_dir():
        return fail(f"--models {args.models} is not a directory (a model registry)")
    if any(a == "--shard" or a.startswith("--shard=") for a in args.serve_args):
        return fail("give --shards to replicas.py, not --shard to the replicas")
    # Shard i's replicas: i * replicas .. (i + 1) * replicas - 1.
    owners = [i // args.replicas for i in range(args.replicas * max(args.shards, 1))]
    total = len(owners)
    ports = [args.first_port + i for i in range(total)] if args.first_port else []
    ports = ports or [free_port() for _ in range(total)]
    for port in [args.port, *ports]:
        if not port_free(port, args.host if port == args.port else "127.0.0.1"):
            return fail(f"port {port} is already in use")
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("created by scripts/replicas.py\n")
    (directory / ".gitignore").write_text("*\n")
    state: dict[str, Any] = {
        "port": args.port,
        "host": args.host,
        "workers": args.workers,
        "models": str(Path(args.models).resolve()),
        "serve_args": [a for a in args.serve_args if a != "--"],
        "shards": args.shards,
        "replicas": [
            {"index": i, "port": p, "pid": 0, "shard": owners[i] if args.shards else None}
            for i, p in enumerate(ports)
        ],
        "nginx_pid": 0,
    }
    for index in range(total):
        spawn_replica(directory, state, index)
    save_state(directory, state)
    for index in range(total):
        why = wait_ready(directory, state, index, args.timeout)
        if why is not None:
            stop_all(directory, state)
            return fail(why)
    conf = write_nginx_conf(directory, state)
    done = subprocess.run([nginx, "-c", str(conf)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        stop_all(directory, state)
        return fail(f"nginx did not start: {done.stderr.strip()}")
    state["nginx_pid"] = int((directory / "nginx.pid").read_text())
    save_state(directory, state)
    url = f"http://{args.host}:{args.port}"
    if health(args.port) is None:
        stop_all(directory, state)
        return fail(f"nginx started but {url}/healthz does not answer")
    print(f"url={url}")
    return 0


def status(args: argparse.Namespace) -> int:
    state = load_state(args.dir.resolve())
    rows = []
    for replica in state["replicas"]:
        seen = health(replica["port"]) if alive(replica["pid"]) else None
        model = (seen or {}).get("model") or {}
        rows.append(
            {
                **replica,
                "alive": alive(replica["pid"]),
                "ready": bool(seen and seen.get("ready")),
                "version": model.get("version"),
            }
        )
    report = {
        "url": f"http://{state['host']}:{state['port']}",
        "nginx": alive(state["nginx_pid"]),
        "replicas": rows,
    }
    print(json.dumps(report, indent=2))
    healthy = report["nginx"] and all(r["ready"] for r in rows)
    return 0 if healthy else 3


def restart(args: argparse.Namespace) -> int:
    """One replica at a time: stopped gracefully (nginx passes its requests on), started
    again on the same port, and ready with a model before the next one is touched."""
    directory = args.dir.resolve()
    state = load_state(directory)
    if not alive(state["nginx_pid"]):
        return fail("nginx is not running; `start` again")
    for index, replica in enumerate(state["replicas"]):
        print(f"replicas: restarting replica {index} (port {replica['port']})", file=sys.stderr)
        stop_pid(replica["pid"])
        spawn_replica(directory, state, index)
        save_state(directory, state)
        why = wait_ready(directory, state, index, args.timeout)
        if why is not None:
            return fail(f"{why}; the other replicas keep answering, restart stopped")
    print(f"replicas: {len(state['replicas'])} restarted", file=sys.stderr)
    return 0


def kill(args: argparse.Namespace) -> int:
    state = load_state(args.dir.resolve())
    if not 0 <= args.replica < len(state["replicas"]):
        return fail(f"--replica is 0..{len(state['replicas']) - 1}")
    stop_pid(state["replicas"][args.replica]["pid"], signal.SIGKILL)
    return 0


def stop_all(directory: Path, state: dict[str, Any]) -> None:
    if state.get("nginx_pid"):
        stop_pid(state["nginx_pid"], signal.SIGQUIT)  # graceful: in-flight requests finish
    pids = [replica["pid"] for replica in state["replicas"] if replica["pid"]]
    for pid in pids:  # all at once: each finishes its in-flight requests meanwhile
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in pids:
        stop_pid(pid)


def stop(args: argparse.Namespace) -> int:
    directory = args.dir.resolve()
    if not (directory / "replicas.json").is_file():
        return 0
    stop_all(directory, load_state(directory))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for name, handler in (("start", start), ("status", status), ("restart", restart)):
        commands[name] = sub.add_parser(name)
        commands[name].set_defaults(handler=handler)
    for name, handler in (("kill", kill), ("stop", stop)):
        commands[name] = sub.add_parser(name)
        commands[name].set_defaults(handler=handler)
    for p in commands.values():
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state, logs, nginx.conf")
    p = commands["start"]
    p.add_argument("--replicas", type=int, default=None, help="3; sharded: per shard, 1")
    p.add_argument("--shards", type=int, default=0, help="users split over N shards (0: not)")
    p.add_argument("--models", required=True, help="the model registry every replica reads")
    p.add_argument("--port", type=int, default=8082, help="nginx's port, the site calls it")
    p.add_argument("--host", default="127.0.0.1", help="nginx's address")
    p.add_argument("--first-port", type=int, default=0, help="replica ports (default: free)")
    p.add_argument("--workers", type=int, default=1, help="nginx worker processes")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    p.add_argument("serve_args", nargs=argparse.REMAINDER, help="-- then `movierec serve` options")
    commands["restart"].add_argument("--timeout", type=float, default=120.0)
    commands["kill"].add_argument("--replica", type=int, required=True)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
