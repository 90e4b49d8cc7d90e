"""`movierec serve` under hostile clients, on loopback only. Prints one JSON object.

    .venv/bin/python bench/bench_hostile.py [--seconds 20] [--only slowloris,trickled_head]
                                            [--scale 1.0]

For each attack (tests/support/attacks.py: idle connections up to the cap from many
addresses and from one, 200 pipelining connections that never read, 2,000 half-sent 1 MiB
bodies, 20 heads of 16 KB trickled byte by byte, slowloris, garbage and smuggling) a fresh
server is started on a small trained model, the attack runs for --seconds, and meanwhile a
well-behaved client opens a new connection every 100 ms and asks GET /recommend/<a known
user>, as the site does. Per attack: requests made, the share answered 200 within the
site's 600 ms, that client's p50/p99, the server's RSS growth and CPU seconds, what the
attacker was answered, and whether the targets are met (>= 99 % in time, < 256 MB growth).

The server runs on one core (taskset); the attacker is a separate process on the other
core at nice 10, and the measuring client is this process on that core at normal priority,
so the attacker cannot starve the measurement of CPU: what is measured is the server. The
open-file limit is raised to its hard limit for all three (the attacks hold up to 10,000
connections); a scale the limit cannot hold is cut down and the output says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from movierec.registry.versions import Registry
from tests.support.attacks import ATTACKS, AttackStats, run
from tests.support.probes import probe_every, summary

TARGET_SHARE = 0.99
TARGET_GROWTH_MB = 256
# File descriptors a process needs beyond its connections (listener, logs, model files).
_SPARE_FDS = 200


# Read once, before this process pins itself: afterwards its affinity is one core.
_CPUS = sorted(os.sched_getaffinity(0))


def cpu(index: int) -> int:
    return _CPUS[index % len(_CPUS)]


def raise_open_files() -> dict[str, int]:
    """Soft open-file limit up to the hard one; children (server, attacker) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return {"soft_before": soft, "soft_now": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_registry(root: Path) -> tuple[Registry, list[int]]:
    """ALS (32 factors) on 60,000 interactions of 2,000 users; returns the known users.
    Imported here: the attacker process runs this file too and needs none of it."""
    from bench_pipeline import START, catalogue_of

    from movierec.features.feedback import build
    from movierec.models.kinds import create
    from movierec.training.pipeline import iso
    from movierec_sim.bulk import interactions
    from movierec_sim.world import World, WorldConfig

    world = World(WorldConfig(users=2000, movies=500, seed=1))
    end = START + 30 * 86_400 * 10**9
    data = build(interactions(world, 60_000, 30.0, START), catalogue_of(world), end)
    registry = Registry(root)
    provenance = {"data": {"from": iso(START), "to": iso(end)}}
    registry.add(create("coldstart").fit(data), provenance)
    als = create("als", factors=32, iterations=8).fit(data)
    registry.promote(registry.add(als, provenance), "benchmark")
    return registry, [int(u) for u in data.user_ids]


def start_server(registry: Registry, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = ["taskset", "-c", str(cpu(0)), sys.executable, "-m", "movierec.cli", "serve"]
    cmd += ["--models", str(registry.root), "--port", str(port), "--host", "127.0.0.1"]
    with log.open("ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"movierec serve exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return process
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"movierec serve on port {port} never became ready; see {log}")


def http_counters(port: int) -> dict[str, float]:
    """The server's own counters from /metrics (the HTTP layer's, movierec_http_*)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        name: float(value)
        for line in text.splitlines()
        if line.startswith("movierec_http_") and "_bucket{" not in line
        for name, _, value in [line.rpartition(" ")]
    }


class MemorySampler(threading.Thread):
    """The server's peak RSS, sampled every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return


def start_attacker(name: str, port: int, connections: int, seconds: float) -> subprocess.Popen[str]:
    # nice 10: the measuring client on the same core keeps its share of it.
    cmd = ["taskset", "-c", str(cpu(1)), "nice", "-n", "10", sys.executable, __file__]
    cmd += ["--attacker", name]
    cmd += ["--port", str(port), "--connections", str(connections), "--seconds", str(seconds)]
    attacker = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert attacker.stdout is not None
    ready, _, _ = select.select([attacker.stdout], [], [], 180)
    line = attacker.stdout.readline() if ready else ""
    if line.strip() != "ready":
        attacker.kill()
        raise RuntimeError(f"attacker {name} did not reach full strength: {line!r}")
    return attacker


def stop_attacker(attacker: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, _ = attacker.communicate(input="", timeout=60)  # stdin closed: its signal to stop
    except subprocess.TimeoutExpired:
        attacker.kill()
        return {"error": "attacker did not stop within 60 s"}
    return json.loads(out)


def measure(
    name: str, connections: int, seconds: float, registry: Registry, paths: list[str], tmp: Path
) -> dict[str, Any]:
    port = free_port()
    server = start_server(registry, port, tmp / f"serve-{name}.log")
    try:
        asyncio.run(probe_every("127.0.0.1", port, paths, 1.0))  # warm-up
        proc = psutil.Process(server.pid)
        rss_before = proc.memory_info().rss
        cpu_before = sum(proc.cpu_times()[:2])
        sampler = MemorySampler(server.pid)  # the ramp's growth counts too
        sampler.start()
        started = time.monotonic()
        attacker = start_attacker(name, port, connections, seconds + 240)
        ramp = time.monotonic() - started
        results = asyncio.run(probe_every("127.0.0.1", port, paths, seconds))
        attacked = stop_attacker(attacker)
        attacked_for = time.monotonic() - started
        sampler.done.set()
        sampler.join()
        cpu_used = sum(proc.cpu_times()[:2]) - cpu_before
        after = asyncio.run(probe_every("127.0.0.1", port, paths, 1.0))
        counters = http_counters(port)
        alive = server.poll() is None
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    probes = summary(results)
    growth_mb = round((sampler.peak - rss_before) / 2**20, 1)
    return {
        "attack": name,
        "attack_connections": connections,
        "ramp_seconds": round(ramp, 1),
        "attack_seconds": round(attacked_for, 1),
        "well_behaved": probes,
        "server_rss_mb_before": round(rss_before / 2**20, 1),
        "server_rss_growth_mb": growth_mb,
        "server_cpu_seconds": round(cpu_used, 2),  # over attack_seconds, ramp included
        "server_alive_after": alive,
        "share_within_600ms_after": summary(after)["share_within_600ms"],
        "attacker_saw": attacked,
        "server_http_counters": counters,
        "met": probes["share_within_600ms"] >= TARGET_SHARE and growth_mb < TARGET_GROWTH_MB,
    }


def attacker_main(name: str, port: int, connections: int, seconds: float) -> None:
    """The attacking process: run until stdin closes (or `seconds`), then print its stats."""
    raise_open_files()
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop

    async def main() -> AttackStats:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        stats = AttackStats()
        threading.Thread(
            target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
        ).start()
        loop.call_later(seconds, stop.set)
        attack = asyncio.create_task(
            run(ATTACKS[name], "127.0.0.1", port, stop, connections, stats)
        )
        while stats.started < connections and not attack.done():
            await asyncio.sleep(0.05)
        print("ready", flush=True)
        return await attack

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        stats = runner.run(main())
    print(json.dumps(stats.as_dict()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="per attack")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {list(ATTACKS)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies connection counts")
    parser.add_argument("--attacker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attacker:
        attacker_main(args.attacker, args.port, args.connections, args.seconds)
        return
    names = [n for n in args.only.split(",") if n] or list(ATTACKS)
    unknown = sorted(set(names) - set(ATTACKS))
    if unknown:
        raise SystemExit(f"unknown attacks {unknown}; known: {list(ATTACKS)}")
    open_files = raise_open_files()
    os.sched_setaffinity(0, {cpu(1)})
    result: dict[str, Any] = {
        "benchmark": "hostile",
        "seconds_per_attack": args.seconds,
        "probe": "a new connection every 100 ms from 127.0.0.1, GET /recommend/<known user>",
        "pinning": f"server on cpu {cpu(0)}; attacker (nice 10) and the measuring client on "
        f"cpu {cpu(1)}",
        "open_files": open_files,
        "attacks": [],
    }
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        registry, users = small_registry(tmp / "models")
        paths = [f"/recommend/{u}" for u in users]
        for name in names:
            wanted = max(1, round(ATTACKS[name].connections * args.scale))
            connections = min(wanted, open_files["soft_now"] - _SPARE_FDS)
            entry = measure(name, connections, args.seconds, registry, paths, tmp)
            if connections < wanted:
                entry["cut_down_from"] = wanted  # the open-file limit could not hold more
            result["attacks"].append(entry)
            print(json.dumps({name: entry["well_behaved"]}), file=sys.stderr, flush=True)
    result["targets"] = {"share_within_600ms": TARGET_SHARE, "rss_growth_mb": TARGET_GROWTH_MB}
    result["all_met"] = all(entry["met"] for entry in result["attacks"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
