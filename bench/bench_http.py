"""Micro-benchmark: the movierec HTTP core against an equivalent Flask app.

Each server runs in its own process pinned to CPU 0; the load generator (wrk when
installed, else a built-in keep-alive client) is pinned to CPU 1, the layout of the
production target (2 cores, wrk on one). Prints one JSON object:

    .venv/bin/python bench/bench_http.py --duration 10 --connections 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any

BODY = b"mona+lisa+1986,interstellar+2014,our+paradise+2011,walle+2008,schindlers+list+1993"

OURS = f"""
from movierec.http.server import HTTPServer, Response, run_forever
ANSWER = Response(200, {BODY!r})
run_forever(HTTPServer(lambda request: ANSWER, backlog=4096),
            ready=lambda s: print(s.port, flush=True), grace=0)
"""

FLASK = f"""
import logging
from flask import Flask
from werkzeug.serving import make_server
logging.getLogger("werkzeug").setLevel(logging.ERROR)
app = Flask("bench")

@app.route("/recommend/<userid>")
def recommend(userid):
    return {BODY!r}, 200, {{"Content-Type": "text/plain; charset=utf-8"}}

server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
"""


def _pin(cpu: int) -> list[int] | None:
    cpus = sorted(os.sched_getaffinity(0))
    return [cpus[cpu % len(cpus)]] if len(cpus) >= 2 else None


def start_server(code: str) -> tuple[subprocess.Popen[str], int]:
    cpus = _pin(0)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,  # noqa: PLW1509
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("benchmark server failed to start")
    return proc, int(line)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, connections: int, duration: float) -> dict[str, Any]:
    cpus = _pin(1)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", url]
    if cpus and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpus[0]), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "errors": sum(map(int, errors.groups())) if errors else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


async def _client(host: str, port: int, path: str, deadline: float, lat: list[float]) -> int:
    """One keep-alive client; reconnects when the server closes (Flask's HTTP/1.0)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    errors = 0
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            size = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(size)
            lat.append(time.perf_counter() - started)
            if re.search(rb"(?i)connection: *close|^HTTP/1.0", head):
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            writer = None
    if writer is not None:
        writer.close()
    return errors


def builtin_load(url: str, connections: int, duration: float) -> dict[str, Any]:
    host, port, path = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", url).groups()  # type: ignore[union-attr]
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    latencies: list[float] = []

    async def main() -> int:
        deadline = time.perf_counter() + duration
        jobs = [_client(host, int(port), path, deadline, latencies) for _ in range(connections)]
        return sum(await asyncio.gather(*jobs))

    started = time.perf_counter()
    errors = asyncio.run(main())
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0
        )

    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.5), 3),
        "p99_ms": round(pct(0.99), 3),
        "errors": errors,
    }


def measure(code: str, loader: str, connections: int, duration: float, path: str) -> dict[str, Any]:
    proc, port = start_server(code)
    url = f"http://127.0.0.1:{port}{path}"
    try:
        if loader == "wrk":
            run_wrk(url, connections, 1)  # warm-up
            return run_wrk(url, connections, duration)
        cpus = _pin(1)
        args = [sys.executable, __file__, "--_builtin", url, str(connections), str(duration)]
        child = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        return json.loads(child.stdout)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per server")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--path", default="/recommend/12345")
    parser.add_argument("--loader", choices=["auto", "wrk", "builtin"], default="auto")
    parser.add_argument("--_builtin", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._builtin:
        url, conns, duration = args._builtin
        print(json.dumps(builtin_load(url, int(conns), float(duration))))
        return
    loader = args.loader
    if loader == "auto":
        loader = "wrk" if shutil.which("wrk") else "builtin"
    ours = measure(OURS, loader, args.connections, args.duration, args.path)
    flask = measure(FLASK, loader, args.connections, args.duration, args.path)
    result = {
        "loader": loader,
        "connections": args.connections,
        "duration_s": args.duration,
        "cpus": len(os.sched_getaffinity(0)),
        "movierec": ours,
        "flask": flask,
        "rps_ratio": round(ours["rps"] / flask["rps"], 1) if flask["rps"] else None,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
