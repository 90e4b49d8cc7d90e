"""The well-behaved client of the hostile-client checks, and running an attack beside it.

The site opens a new connection for every user and gives up after 600 ms, so a probe does
the same: connect from 127.0.0.1, ask one GET, read the whole answer, and time it all.
Probes start on a fixed schedule whatever the previous one is doing, so a stalled server
shows up as late or failed probes instead of fewer of them.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.attacks import Attack, AttackStats, run

SITE_TIMEOUT = 0.6
PROBER_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class ProbeResult:
    status: int  # 0 when no complete answer arrived
    seconds: float
    error: str = ""

    @property
    def in_time(self) -> bool:
        return self.status == 200 and self.seconds <= SITE_TIMEOUT


async def probe(host: str, port: int, path: str, timeout: float = 2.0) -> ProbeResult:
    """One request on a new connection, from connect to the answer's last byte."""
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(PROBER_ADDRESS, 0)
            )
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = _content_length(head)
            await reader.readexactly(length)
    except TimeoutError:
        return ProbeResult(0, time.perf_counter() - started, "timeout")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        return ProbeResult(0, time.perf_counter() - started, type(exc).__name__)
    finally:
        if writer is not None:
            writer.transport.abort()
    return ProbeResult(status, time.perf_counter() - started)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("answer without Content-Length")


async def probe_every(
    host: str,
    port: int,
    paths: Sequence[str],
    seconds: float,
    every: float = 0.1,
    seed: int = 5,
) -> list[ProbeResult]:
    """A new probe every `every` s for `seconds`, each for a random one of `paths`."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    n = 0
    while n * every < seconds:
        delay = start + n * every - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(probe(host, port, rng.choice(paths))))
        n += 1
    return list(await asyncio.gather(*tasks))


def summary(results: Sequence[ProbeResult]) -> dict[str, Any]:
    """Requests made, the share answered 200 within the site's 600 ms, and latencies."""
    times = sorted(r.seconds for r in results)

    def quantile(q: float) -> float:
        return round(1000 * times[min(len(times) - 1, int(q * len(times)))], 2) if times else 0.0

    answered = sum(r.in_time for r in results)
    outcomes = Counter(str(r.status) if r.status else r.error for r in results)
    return {
        "requests": len(results),
        "answered_200_within_600ms": answered,
        "share_within_600ms": round(answered / len(results), 4) if results else 0.0,
        "p50_ms": quantile(0.5),
        "p99_ms": quantile(0.99),
        "max_ms": round(1000 * times[-1], 2) if times else 0.0,
        "outcomes": dict(sorted(outcomes.items())),
    }


@dataclass
class AttackThread:
    """An attack on its own event loop in a thread, for tests: started by `with`, stopped
    (every slot's connection closed) on leaving it."""

    attack: Attack
    port: int
    connections: int | None = None
    host: str = "127.0.0.1"
    stats: AttackStats = field(default_factory=AttackStats)

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"attack-{self.attack.name}")

    @property
    def slots(self) -> int:
        return self.attack.connections if self.connections is None else self.connections

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await run(self.attack, self.host, self.port, self._stop, self.connections, self.stats)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def __enter__(self) -> AttackThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError(f"attack {self.attack.name} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        if self._thread.is_alive():
            raise RuntimeError(f"attack {self.attack.name} did not stop within 30 s")
        if self._error is not None:
            raise self._error
