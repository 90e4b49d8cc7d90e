"""Sharded serving behind the real nginx (scripts/replicas.sh start --shards 3): nginx's
route and the service's shard function agree on every id tried, and the answers through
the router are byte for byte those of one unsharded service on the same models, for
known users, users the model does not know, a catalogue-only stranger and invalid ids;
each shard holds only its own users and sends anyone else's request back with a 421."""

from __future__ import annotations

import http.client
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from movierec.registry.versions import Registry
from movierec.serving.shard import shard_of
from movierec.store.events import EventStore
from tests.deploy.test_replicas import replicas, tool
from tests.support.ports import free_port
from tests.support.serving import CATALOGUED_STRANGER, catalogue_with_a_stranger
from tests.support.simulated import SimulatedStore
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SHARDS = 3
INVALID = ["0", "007", "-4", "abc", "2147483648", "12345678901", "%31%32", "", "1/2"]


def router_conf_module():  # scripts/ is not a package: load the script beside replicas.py
    spec = importlib.util.spec_from_file_location(
        "replicas_nginx", ROOT / "scripts/replicas_nginx.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes, str | None]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read(), response.getheader("X-Model-Version")


def test_nginx_routes_every_id_to_the_services_shard(tmp_path: Path) -> None:
    """The router's own map and split_clients block, in the real nginx, answering the
    shard it chose: equal to shard_of for thousands of ids of every length."""
    nginx = tool("nginx", "the router is nginx")
    conf_module = router_conf_module()
    rng = np.random.default_rng(15)
    ids = [*range(1, 1200), *rng.integers(1, 2**31, 1800).tolist(), 2**31 - 1]
    (tmp_path / "tmp").mkdir()
    port = free_port()
    blocks = []
    for count in (2, SHARDS, 7):
        names = [f"{count}-{i}" for i in range(count)]
        split = conf_module.nginx_split_clients(count, "$movierec_user", f"$shard_{count}", names)
        blocks.append(split)
    route = conf_module.SHARD_ROUTE.format(split="\n".join(blocks))
    answer = "$shard_2 $shard_3 $shard_7"
    (tmp_path / "nginx.conf").write_text(
        f"""daemon on; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off; client_body_temp_path {tmp_path}/tmp; proxy_temp_path {tmp_path}/tmp;
  fastcgi_temp_path {tmp_path}/tmp; uwsgi_temp_path {tmp_path}/tmp; scgi_temp_path {tmp_path}/tmp;
{route}
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "{answer}"; }} }}
}}
"""
    )
    done = subprocess.run(
        [nginx, "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    pid = int((tmp_path / "nginx.pid").read_text())
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        wrong = []
        for user in ids:
            for path in (f"/recommend/{user}", f"/recommend/{user}?n=1"):
                chosen = get(conn, path)[1].decode().split()
                want = [f"{c}-{shard_of(user, c)}" for c in (2, SHARDS, 7)]
                if chosen != want:
                    wrong.append((path, chosen, want))
        assert wrong == [], wrong[:5]
        # Not digits an id could be: the empty id's shard (its 400 is any shard's). Ten
        # digits over 2^31 are hashed like an id; every shard refuses them alike.
        for text in [t for t in INVALID if not re.fullmatch(r"[1-9][0-9]{0,9}", t)]:
            assert get(conn, f"/recommend/{text}")[1] == get(conn, "/healthz")[1], text
        conn.close()
    finally:
        subprocess.run(["kill", "-QUIT", str(pid)], check=False)


@dataclass
class Sharded:
    router: int  # nginx's port
    direct: int  # an unsharded service's port, on the same models and catalogue
    state: dict
    known: np.ndarray  # the users the production model knows
    started_seconds: float  # from the copy of the models to every shard ready


@pytest.fixture(scope="module")
def sharded(
    tmp_path_factory: pytest.TempPathFactory, trained_models: Path, simulated_store: SimulatedStore
) -> Iterator[Sharded]:
    tool("nginx", "the shards run behind it")
    began = time.monotonic()
    tmp = tmp_path_factory.mktemp("shards")
    models = tmp / "models"
    shutil.copytree(trained_models, models)
    store = tmp / "store"
    store.mkdir()
    catalogue_with_a_stranger(
        EventStore(simulated_store.path).catalog_path, EventStore(store).catalog_path
    )
    serve = ["--poll", "0.2", "--store", str(store)]
    port, direct = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "movierec.cli",
        "serve",
        "--models",
        str(models),
        "--port",
        str(direct),
    ]
    with open(tmp / "direct.log", "wb") as log:
        unsharded = subprocess.Popen(
            [*argv, *serve], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
    directory = tmp / "replicas"
    try:
        started = subprocess.run(
            [str(ROOT / "scripts" / "replicas.sh"), "start", "--shards", str(SHARDS),
             "--models", str(models), "--port", str(port), "--dir", str(directory), "--", *serve],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        wait_until(lambda: health(direct).get("ready"), timeout=120, what="the unsharded service")
        registry = Registry(models)
        version = registry.production()
        assert version is not None
        known = np.load(registry.model_dir(version) / "user_ids.npy")
        state = json.loads((directory / "replicas.json").read_text())
        yield Sharded(port, direct, state, known, time.monotonic() - began)
    finally:
        unsharded.terminate()  # stopping beside the shards
        replicas("stop", "--dir", str(directory))
        unsharded.wait(timeout=30)


def health(port: int) -> dict:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        status, body, _ = get(conn, "/healthz")
        conn.close()
    except OSError:
        return {}
    return dict(json.loads(body)) if status in (200, 503) else {}


def test_answers_through_the_router_are_the_unsharded_services(sharded: Sharded) -> None:
    rng = np.random.default_rng(3)
    known = sharded.known.tolist()
    strangers = [int(u) for u in rng.integers(3_000_000, 2**31, 300)] + [2**31 - 1]
    paths = [f"/recommend/{u}" for u in [*known, *strangers, CATALOGUED_STRANGER.user_id]]
    paths += [f"/recommend/{text}" for text in INVALID] + ["/nowhere", f"/recommend/{known[0]}?x"]
    router = http.client.HTTPConnection("127.0.0.1", sharded.router, timeout=5)
    direct = http.client.HTTPConnection("127.0.0.1", sharded.direct, timeout=5)
    try:
        differ = [p for p in paths if get(router, p) != get(direct, p)]
        assert differ == [], differ[:5]
        statuses = {get(direct, p)[0] for p in paths}
        assert statuses == {200, 400, 404}  # answers, refusals, and no 421 through the router
        segment = get(direct, f"/recommend/{CATALOGUED_STRANGER.user_id}")[1]
        assert segment != get(direct, f"/recommend/{strangers[0]}")[1]  # a segment, not popular
    finally:  # an open connection would hold a stopping service for its grace period
        router.close()
        direct.close()
    for replica in sharded.state["replicas"]:
        assert health(replica["port"])["shard"]["misrouted"] == 0


def test_each_shard_holds_only_its_users(sharded: Sharded) -> None:
    known = sharded.known
    owners = np.array([shard_of(u, SHARDS) for u in known.tolist()])
    held = 0
    for replica in sharded.state["replicas"]:
        index = replica["shard"]
        shard = health(replica["port"])["shard"]
        assert shard["shard"] == f"{index}/{SHARDS}"
        assert shard["users"] == int((owners == index).sum()) > 0
        assert shard["model_users"] == len(known)
        held += shard["users"]
        other = int(known[owners != index][0])
        conn = http.client.HTTPConnection("127.0.0.1", replica["port"], timeout=5)
        conn.request("GET", f"/recommend/{other}")
        response = conn.getresponse()
        right = shard_of(other, SHARDS)
        assert response.status == 421 and response.getheader("X-Movierec-Shard") == str(right)
        assert f"shard {right}/{SHARDS}".encode() in response.read()
        conn.close()
    assert held == len(known)
