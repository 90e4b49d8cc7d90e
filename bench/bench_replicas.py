"""Replicas behind nginx (scripts/replicas.sh) under wrk's load on this 2-core machine: what
the load balancer costs against one service answered directly, what 1, 2 and 3 replicas
give, nginx's own `return 200` on the same machine (the practical limit of the proxy
hop), and the requests a crash of one replica and a rolling restart of all of them cost.
Prints one JSON object.

    .venv/bin/python bench/bench_replicas.py [--seconds 10] [--connections 64]

Targets: a crash costs at most the requests in flight (one per connection), a rolling
restart costs none. wrk and nginx come from Debian's packages (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers
from bench_serve import LUA, registry_for, serve

from movierec.registry.versions import Registry

ROOT = Path(__file__).resolve().parent.parent
REPLICAS = ROOT / "scripts" / "replicas.py"
USERS = 2000


def replicas(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(REPLICAS), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"replicas.py {args[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


class Cluster:
    def __init__(self, registry: Registry, count: int, tmp: Path) -> None:
        self.dir = tmp / f"replicas-{count}"
        self.port = peers.free_port()
        replicas("start", "--replicas", str(count), "--models", str(registry.root),
                 "--port", str(self.port), "--dir", str(self.dir))  # fmt: skip

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_: object) -> None:
        replicas("stop", "--dir", str(self.dir))


def failed(run: dict[str, Any]) -> int:
    return int(run["errors"] + run["non_2xx"])


def under_load(port: int, connections: int, action: Any) -> dict[str, Any]:
    """wrk until `action` (run meanwhile) has finished and 2 s more; its tally and time."""
    script = LUA.format(users=USERS) + peers._DONE_LUA
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        argv = ["taskset", "-c", str(peers.cpu(peers.LOAD_CPU)), peers.require("wrk"), "-t1"]
        argv += [f"-c{connections}", "-d600s", "--timeout", "2s", "-s", lua.name]
        load = subprocess.Popen([*argv, f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
        time.sleep(2)  # steady load before the event: a bench, not a test
        started = time.monotonic()
        action()
        seconds = time.monotonic() - started
        time.sleep(2)
        load.send_signal(signal.SIGINT)
        out, _ = load.communicate(timeout=60)
    summary = json.loads(out.split("JSON ", 1)[1].splitlines()[0])
    errors = sum(summary[k] for k in ("connect", "read", "write", "timeout"))
    return {
        "requests": summary["requests"],
        "failed": errors + summary["status"],
        "event_seconds": round(seconds, 1),
    }


def failures(cluster: Cluster, connections: int) -> dict[str, Any]:
    """A SIGKILL of one replica, then a rolling restart of all three, under load."""
    kill = ("kill", "--replica", "1", "--dir", str(cluster.dir))
    restart = ("restart", "--dir", str(cluster.dir))
    return {
        "crash_of_one": under_load(cluster.port, connections, lambda: replicas(*kill)),
        "rolling_restart": under_load(cluster.port, connections, lambda: replicas(*restart)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    c, seconds = args.connections, args.seconds
    script = LUA.format(users=USERS)
    result: dict[str, Any] = {"connections": c, "seconds": seconds, "users": USERS}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        registry = registry_for(tmp / "models", USERS, 500, 60_000)
        spec = serve(registry, peers.free_port())
        with peers.running(spec, "/healthz"):
            peers.wrk(spec.port, c, 2, script)
            result["direct"] = peers.wrk(spec.port, c, seconds, script)
        limit = peers.nginx(peers.free_port(), b"ok")
        with peers.running(limit, "/", b"ok"):
            result["nginx_return_200"] = peers.wrk(limit.port, c, seconds)
        for count in (1, 2, 3):
            with Cluster(registry, count, tmp) as cluster:
                peers.wrk(cluster.port, c, 2, script)
                result[f"nginx_{count}_replicas"] = peers.wrk(cluster.port, c, seconds, script)
                if count == 3:
                    result.update(failures(cluster, c))
    direct = result["direct"]["rps"]
    result["ratios"] = {
        f"{count}_replicas_vs_direct": round(result[f"nginx_{count}_replicas"]["rps"] / direct, 2)
        for count in (1, 2, 3)
    }
    result["ratios"]["direct_vs_nginx_return_200"] = round(
        direct / result["nginx_return_200"]["rps"], 2
    )
    result["targets"] = {
        "crash_costs_at_most_in_flight": result["crash_of_one"]["failed"] <= c,
        "rolling_restart_costs_none": result["rolling_restart"]["failed"] == 0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
