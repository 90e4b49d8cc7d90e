"""The recommendation service under load: `movierec serve` driven by wrk over loopback on
this 2-core machine (server pinned to one core, wrk to the other), for a small world and
the full-size world; the same endpoint as a straightforward Flask app in the same run; and
an overload phase. Prints one JSON object.

    .venv/bin/python bench/bench_serve.py [--full-users 1000000] [--skip-full] [--overload 60]

Targets: >= 20,000 requests/s with p99 <= 10 ms (small world), p99 <= 50 ms at full size,
>= 10x Flask. wrk comes from Debian's packages (scripts/setup.sh installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from movierec.features.feedback import build
from movierec.models.kinds import create
from movierec.registry.versions import Registry
from movierec.training.pipeline import iso
from movierec_sim.bulk import interactions
from movierec_sim.world import World, WorldConfig

sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import START, catalogue_of

DAY_NS = 86_400 * 10**9
LUA = """
math.randomseed(7)
request = function()
  return wrk.format("GET", "/recommend/" .. math.random(1, {users}))
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {{\\"p50\\": %f, \\"p99\\": %f, \\"p999\\": %f}}\\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000))
end
"""
FLASK = """
import sys
from flask import Flask
from werkzeug.serving import make_server
from movierec.registry.versions import Registry
from movierec.serving.snapshot import build
registry = Registry(sys.argv[1])
snapshot = build(registry, registry.production(), None, threads=2)
app = Flask(__name__)

@app.route("/recommend/<userid>")
def recommend(userid):
    try:
        user = int(userid)
    except ValueError:
        return "invalid user id", 400
    row = snapshot.row(user)
    body = snapshot.body(snapshot.lists[row] if row >= 0 else snapshot.popular)
    return body, 200, {"Content-Type": "text/plain; charset=utf-8"}

server = make_server("127.0.0.1", int(sys.argv[2]), app, threaded=True)
print("ready", flush=True)
server.serve_forever()
"""


def cpu(index: int) -> list[int]:
    cpus = sorted(os.sched_getaffinity(0))
    return [cpus[index % len(cpus)]]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_for(root: Path, users: int, movies: int, pairs: int) -> Registry:
    """A registry whose production model is ALS (64 factors) on bulk interactions."""
    world = World(WorldConfig(users=users, movies=movies, seed=1))
    table = interactions(world, pairs, 30.0, START)
    end = START + 30 * DAY_NS
    data = build(table, catalogue_of(world), end)
    registry = Registry(root)
    provenance = {"data": {"from": iso(START), "to": iso(end)}}
    versions = {}
    for kind in ("popularity", "coldstart", "als"):
        model = create(kind, **({"factors": 64, "iterations": 10} if kind == "als" else {}))
        versions[kind] = registry.add(model.fit(data), provenance)
    registry.promote(versions["als"], "benchmark")
    return registry


def wait_ready(url: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} never became ready")


def wrk(port: int, users: int, connections: int, seconds: int, script: Path) -> dict[str, Any]:
    script.write_text(LUA.format(users=users))
    cmd = [
        "taskset",
        "-c",
        str(cpu(1)[0]),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "2s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    percentiles = json.loads(re.search(r"^JSON (.*)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "connections": connections,
        "rps": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))),  # type: ignore[union-attr]
        "p50_ms": round(percentiles["p50"], 3),
        "p99_ms": round(percentiles["p99"], 3),
        "p999_ms": round(percentiles["p999"], 3),
        "errors": sum(map(int, errors.groups())) if errors else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def serve(registry: Registry, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(cpu(0)[0]),
            sys.executable,
            "-m",
            "movierec.cli",
            "serve",
            "--models",
            str(registry.root),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--threads",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/healthz")
    return process


def measure(
    registry: Registry, users: int, loads: list[int], seconds: int, tmp: Path
) -> dict[str, Any]:
    port = free_port()
    process = serve(registry, port)
    try:
        runs = [wrk(port, users, c, seconds, tmp / "load.lua") for c in loads]
        rss = psutil.Process(process.pid).memory_info().rss
    finally:
        process.terminate()
        process.wait(30)
    best = max(runs, key=lambda r: r["rps"])
    return {"loads": runs, "max_rps": best["rps"], "server_rss_gib": round(rss / 2**30, 2)}


def flask(
    registry: Registry, users: int, connections: int, seconds: int, tmp: Path
) -> dict[str, Any]:
    port = free_port()
    process = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(cpu(0)[0]),
            sys.executable,
            "-c",
            FLASK,
            str(registry.root),
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        return wrk(port, users, connections, seconds, tmp / "flask.lua")
    finally:
        process.terminate()
        process.wait(30)


def overload(registry: Registry, users: int, seconds: int, tmp: Path) -> dict[str, Any]:
    """Far more concurrent clients than the server can serve at once, for `seconds`: it must
    stay up with bounded memory, and its latency must come back afterwards."""
    port = free_port()
    process = serve(registry, port)
    proc = psutil.Process(process.pid)
    try:
        before = wrk(port, users, 4, 5, tmp / "a.lua")
        peak_load = wrk(port, users, 64, 5, tmp / "b.lua")
        rss_start = proc.memory_info().rss
        load = subprocess.Popen(
            [
                "taskset",
                "-c",
                str(cpu(1)[0]),
                "wrk",
                "-t1",
                "-c2000",
                f"-d{seconds}s",
                "--timeout",
                "2s",
                "-s",
                str(tmp / "b.lua"),
                f"http://127.0.0.1:{port}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        samples = []
        while load.poll() is None:
            samples.append(proc.memory_info().rss)
            time.sleep(1)
        out = load.stdout.read() if load.stdout else ""
        during = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        after = wrk(port, users, 4, 5, tmp / "c.lua")
        alive = process.poll() is None
    finally:
        process.terminate()
        process.wait(30)
    return {
        "seconds": seconds,
        "connections": 2000,
        "rps_during": round(during),
        "saturation_rps_64_connections": peak_load["rps"],
        "server_alive_after": alive,
        "rss_gib_start": round(rss_start / 2**30, 3),
        "rss_gib_max_during": round(max(samples) / 2**30, 3),
        "light_load_before": before,
        "light_load_after": after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="per load level")
    parser.add_argument("--full-users", type=int, default=1_000_000)
    parser.add_argument("--full-pairs", type=int, default=20_000_000)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--overload", type=int, default=60, help="seconds of overload")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (scripts/setup.sh does)")
    loads = [1, 4, 16, 64, 256]
    result: dict[str, Any] = {"benchmark": "serve", "load_tool": "wrk", "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        small = registry_for(tmp / "small", 2000, 500, 60_000)
        result["small"] = measure(small, 2000, loads, args.seconds, tmp)
        result["flask"] = flask(small, 2000, 64, args.seconds, tmp)
        result["ratio_to_flask"] = round(result["small"]["max_rps"] / result["flask"]["rps"], 1)
        result["overload"] = overload(small, 2000, args.overload, tmp)
        if not args.skip_full:
            full = registry_for(tmp / "full", args.full_users, 27_000, args.full_pairs)
            result["full"] = measure(full, args.full_users, loads, args.seconds, tmp)
    result["targets"] = {
        "small_rps": 20_000,
        "small_p99_ms": 10,
        "full_p99_ms": 50,
        "ratio_to_flask": 10,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
