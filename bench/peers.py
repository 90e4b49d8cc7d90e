"""What bench_http.py and bench_serve.py share: the peer servers, started fresh on loopback
with the same pinning (server on the first CPU, wrk on the second), wrk's measurement, and
the ratios. Every process started here is stopped here, and every wait has a deadline.

Peers: movierec's own core; uvicorn with httptools and uvloop (1 worker, access log off);
granian (1 worker, 1 runtime thread, uvloop) on RSGI, its native interface, and on ASGI;
nginx `return 200` (1 worker process), the practical limit of one core.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SERVER_CPU, LOAD_CPU = 0, 1

# Appended to every wrk script: one JSON line with the percentiles wrk --latency does not
# print (p99.9) and the error counts, so nothing is scraped from its human-readable table.
_DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "p50_us": %f, "p99_us": %f, "p999_us": %f, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), e.connect, e.read, e.write, e.timeout, e.status))
end
"""

NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  # The other servers keep a connection for any number of requests; so does nginx here.
  keepalive_requests 1000000000;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    default_type "text/plain; charset=utf-8";
    location / {{ return 200 "{body}"; }}
  }}
}}
"""


def cpu(index: int) -> int:
    """The index-th CPU this process may use (the machine has 2: servers 0, wrk 1)."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[index % len(cpus)]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require(tool: str) -> str:
    """The path of a command the benchmark cannot run without, or a clear stop."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin")
    if path is None:
        raise SystemExit(f"{tool} is not installed: scripts/setup.sh installs it (apt-get)")
    return path


@dataclass
class Server:
    """How to start one peer on `port`; `description` says what runs, for the JSON."""

    name: str
    argv: list[str]
    port: int
    description: str
    env: dict[str, str] = field(default_factory=dict)
    config_dir: Path | None = None


def ours(port: int) -> Server:
    code = (
        "from movierec.http.server import HTTPServer, run_forever\n"
        "from movierec.http.messages import Response\n"
        "from peer_apps import BODY\n"
        "answer = Response(200, BODY)\n"
        f"run_forever(HTTPServer(lambda request: answer, port={port}, backlog=4096), grace=0)\n"
    )
    return Server("movierec", [sys.executable, "-c", code], port, "movierec.http on uvloop")


def uvicorn(port: int, app: str, env: dict[str, str] | None = None) -> Server:
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    argv += ["--log-level", "warning", "--lifespan", "off", "--backlog", "4096"]
    description = f"uvicorn {version('uvicorn')}, httptools {version('httptools')}, uvloop"
    return Server("uvicorn", argv, port, description, env or {})


def granian(port: int, app: str, interface: str, env: dict[str, str] | None = None) -> Server:
    argv = [sys.executable, "-m", "granian", "--interface", interface, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", "1", "--runtime-threads", "1", "--loop"]
    argv += ["uvloop", "--http", "1", "--no-ws", "--log-level", "warning", "--backlog", "4096"]
    argv += [app]
    description = f"granian {version('granian')}, {interface.upper()}, uvloop"
    return Server(f"granian_{interface}", argv, port, description, env or {})


def nginx(port: int, body: bytes) -> Server:
    binary = require("nginx")
    tmp = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    text = body.decode("ascii")
    if '"' in text or "\\" in text or "$" in text:
        raise ValueError("the body must need no quoting in nginx's return directive")
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=port, body=text))
    argv = [binary, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")]
    told = subprocess.run([binary, "-v"], capture_output=True, text=True, check=True).stderr
    found = re.search(r"nginx/(\S+)", told)
    description = f"nginx {found.group(1) if found else '?'} return 200, 1 worker"
    return Server("nginx", argv, port, description, config_dir=tmp)


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def running(
    server: Server, ready_path: str, body: bytes | None = None, timeout: float = 120.0
) -> Iterator[subprocess.Popen[bytes]]:
    """The server started on the server CPU, answering `ready_path` with 200 (and `body`,
    when given), until the block ends; then it and its children are stopped."""
    env = {**os.environ, **server.env}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            ["taskset", "-c", str(cpu(SERVER_CPU)), *server.argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the workers it forks stop with it
        )

        def died(when: str) -> RuntimeError:
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace")
            return RuntimeError(f"{server.name} exited with {process.returncode} {when}:\n{tail}")

        try:
            deadline = time.monotonic() + timeout
            while not _answers(server, ready_path, body):
                if process.poll() is not None:
                    raise died("before it was ready")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{server.name} not ready on port {server.port} in {timeout} s"
                    )
                time.sleep(0.1)
            yield process
            if process.poll() is not None:
                raise died("during the benchmark")
        finally:
            _stop(process)
            if server.config_dir is not None:
                shutil.rmtree(server.config_dir, ignore_errors=True)


def _answers(server: Server, path: str, body: bytes | None) -> bool:
    """Whether the server answers `path` with 200; a wrong body is an error, not a wait."""
    try:
        status, answer = _get(server.port, path)
    except (OSError, http.client.HTTPException):  # not listening yet, or closed on us
        return False
    if status == 200 and body is not None and answer != body:
        raise RuntimeError(f"{server.name} answered {answer!r}, not {body!r}")
    return status == 200


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # The group outlives its leader while a forked worker lingers: end those too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return
    raise RuntimeError(f"server process {process.pid} survived SIGKILL")


def wrk(
    port: int, connections: int, seconds: float, script: str = "", path: str = "/"
) -> dict[str, Any]:
    """wrk on the load CPU against one server: req/s, p50/p99/p99.9 in ms, errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script + _DONE_LUA)
        lua.flush()
        duration = max(1, round(seconds))
        cmd = ["taskset", "-c", str(cpu(LOAD_CPU)), require("wrk"), "-t1", f"-c{connections}"]
        cmd += [f"-d{duration}s", "--timeout", "2s", "--latency", "-s", lua.name]
        cmd += [f"http://127.0.0.1:{port}{path}"]
        out = subprocess.run(
            cmd, capture_output=True, text=True, check=True, timeout=duration + 60
        ).stdout
    found = re.search(r"^JSON (.*)$", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    summary = json.loads(found.group(1))
    return {
        "connections": connections,
        "rps": round(summary["requests"] / (summary["duration_us"] / 1e6)),
        "p50_ms": round(summary["p50_us"] / 1000, 3),
        "p99_ms": round(summary["p99_us"] / 1000, 3),
        "p999_ms": round(summary["p999_us"] / 1000, 3),
        "errors": sum(summary[key] for key in ("connect", "read", "write", "timeout")),
        "non_2xx": summary["status"],
    }


def wrk_version() -> str:
    # wrk -v prints its version with the usage and exits with 1.
    told = subprocess.run([require("wrk"), "-v"], capture_output=True, text=True, check=False)
    out = told.stdout + told.stderr
    found = re.search(r"wrk (\S+)", out)
    return found.group(1) if found else "?"


def ratio(ours_rps: float, other_rps: float) -> float | None:
    return round(ours_rps / other_rps, 2) if other_rps else None
