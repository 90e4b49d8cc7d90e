"""The nginx.conf of scripts/replicas.py: one upstream of every replica, or, sharded, one
upstream per shard and the route of each /recommend/<userid> to its shard's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from movierec.serving.shard import nginx_split_clients

REPO_ROOT = Path(__file__).resolve().parent.parent
PROXY_CONF = REPO_ROOT / "deploy" / "nginx" / "movierec-proxy.conf"  # shared with compose

NGINX_CONF = """# Written by scripts/replicas.py; rewritten on every start.
daemon on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  keepalive_requests 1000000000;
{upstreams}
  server {{
    listen {host}:{port} backlog=4096;
    location / {{
      include {proxy};
    }}
  }}
}}
"""
UPSTREAM = """  upstream {name} {{
{servers}
    keepalive 64;
  }}"""
# Sharded: the id as the service reads it (the raw path, canonical digits: movierec/ids.py),
# hashed by split_clients into the name of its shard's upstream.
SHARD_ROUTE = """  map $request_uri $movierec_user {{
    "~^/recommend/(?<id>[1-9][0-9]{{0,9}})(\\?.*)?$" $id;
    default "";
  }}
{split}"""


def upstream(name: str, replicas: list[dict[str, Any]]) -> str:
    servers = "\n".join(
        f"    server 127.0.0.1:{r['port']} max_fails=1 fail_timeout=1s;" for r in replicas
    )
    return UPSTREAM.format(name=name, servers=servers)


def write_nginx_conf(directory: Path, state: dict[str, Any]) -> Path:
    shards = state.get("shards", 0)
    proxy = PROXY_CONF
    if not shards:
        upstreams = upstream("movierec", state["replicas"])
    else:
        names = [f"movierec_shard_{i}" for i in range(shards)]
        blocks = [
            upstream(n, [r for r in state["replicas"] if r["shard"] == i])
            for i, n in enumerate(names)
        ]
        split = nginx_split_clients(shards, "$movierec_user", "$movierec_shard", names)
        upstreams = "\n".join([SHARD_ROUTE.format(split=split), *blocks])
        # The same proxy settings, passed to the request's shard instead of one upstream.
        proxy = directory / "movierec-proxy-sharded.conf"
        text = PROXY_CONF.read_text()
        if "proxy_pass http://movierec;" not in text:
            raise SystemExit(f"replicas: {PROXY_CONF} no longer says proxy_pass http://movierec;")
        proxy.write_text(text.replace("http://movierec;", "http://$movierec_shard;"))
    conf = directory / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            dir=directory,
            workers=state["workers"],
            upstreams=upstreams,
            host=state["host"],
            port=state["port"],
            proxy=proxy,
        )
    )
    return conf
