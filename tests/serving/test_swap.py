"""Model swaps under load: zero failed requests."""

from __future__ import annotations

import http.client
import threading
from collections import Counter

from movierec.registry.versions import Registry
from tests.support.serving import Running
from tests.support.waiting import wait_until

SWAPS = 10


def hammer(
    port: int,
    stop: threading.Event,
    statuses: Counter,
    versions: Counter,
    errors: list[str],
    user: int,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while not stop.is_set():
        try:
            conn.request("GET", f"/recommend/{user}")
            response = conn.getresponse()
            body = response.read()
            statuses[response.status] += 1
            versions[response.getheader("X-Model-Version")] += 1
            if response.status == 200 and len(body.split(b",")) != 20:
                errors.append(f"short list: {body[:80]!r}")
        except (OSError, http.client.HTTPException) as error:
            errors.append(repr(error))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        user = user % 2500 + 1
    conn.close()


def test_ten_swaps_under_load_fail_no_request(serving: Running) -> None:
    registry = Registry(serving.models)
    first = registry.production()
    latest = registry.latest_by_model()
    second = next(v for v in latest.values() if v != first)
    stop = threading.Event()
    statuses: Counter = Counter()
    versions: Counter = Counter()
    errors: list[str] = []
    clients = [
        threading.Thread(
            target=hammer, args=(serving.port, stop, statuses, versions, errors, 1 + 97 * i)
        )
        for i in range(4)
    ]
    for client in clients:
        client.start()
    try:
        for swap in range(SWAPS):
            target = second if swap % 2 == 0 else first
            registry.promote(target, f"swap {swap}")
            wait_until(lambda t=target: serving.service.snapshot.version == t, timeout=60)
            done = sum(statuses.values())
            wait_until(lambda d=done: sum(statuses.values()) > d + 50, timeout=30)
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert errors == []
    assert set(statuses) == {200} and sum(statuses.values()) > 1000
    assert serving.service.metrics.swaps == SWAPS
    assert versions[first] > 0 and versions[second] > 0
