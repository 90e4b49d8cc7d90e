from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from movierec.stream.locallog import LocalLogSink
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.world import World, WorldConfig


@dataclass
class SimRun:
    world: World
    ledger: dict
    lines: list[bytes]


def simulate(tmp_path: Path, world: World | None = None, **config) -> SimRun:
    world = world or World(WorldConfig(users=2000, movies=500, seed=7))
    config.setdefault("service", "http://127.0.0.1:9")  # nothing listens: refused at once
    path = tmp_path / f"log-{len(list(tmp_path.iterdir()))}"
    sink = LocalLogSink(path)
    try:
        ledger = Simulation(world, SimConfig(**config), sink).run()
    finally:
        sink.close()
    data = path.read_bytes()
    lines = data.split(b"\n")
    assert lines[-1] == b""  # every line is terminated
    return SimRun(world, ledger, lines[:-1])


@pytest.fixture(scope="module")
def small_world() -> World:
    return World(WorldConfig(users=2000, movies=500, seed=7))


Answer = Callable[[str], tuple[int, bytes, float]]


@pytest.fixture
def service() -> Iterator[Callable[[Answer], str]]:
    """Start a real HTTP service on loopback whose answers a test chooses."""
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, body, delay = answer(self.path)
                if delay:
                    threading.Event().wait(delay)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the site calls concurrently; the default backlog is 5

        server = Server(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
