"""Hostile clients on loopback, shared by bench/bench_hostile.py and tests/http/test_hostile.py.

An attack keeps `connections` slots busy: each slot opens a connection from its own source
address (127.66.x.y, so a per-address limit sees a distributed attacker unless the attack is
told to use one address), behaves badly on it until the server closes it or the attack is
stopped, and opens a new one `reopen` seconds after the server closed the last. Everything
the server says back is counted by status, so a test or the benchmark can check that each
refusal is the one promised.

    stats = await run(IDLE, "127.0.0.1", port, stop_event, connections=100)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

# Linux: pick the source port at connect() from the whole 4-tuple space, not at bind();
# without it 10,000 bound sockets would exhaust the ephemeral ports of one address.
_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
# How long a slot waits for the server to finish answering one garbage payload.
_GARBAGE_WAIT = 5.0


def attacker_address(slot: int, addresses: int) -> str:
    """Source address of `slot` among `addresses` distinct attacker addresses (never the
    127.0.0.1 the well-behaved client uses)."""
    n = slot % max(1, addresses)
    return f"127.66.{n // 250}.{1 + n % 250}"


@dataclass
class AttackStats:
    """What the attacker saw; statuses are the first status line of each connection."""

    opened: int = 0
    connect_errors: int = 0
    closed_by_server: int = 0
    bytes_sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    # Slots that have made their first connection attempt: the attack is at full strength
    # once this reaches the number of slots.
    started: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "connections_opened": self.opened,
            "connect_errors": self.connect_errors,
            "closed_by_server": self.closed_by_server,
            "bytes_sent": self.bytes_sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


class _Client(asyncio.Protocol):
    """A raw client: records the first status line it reads and when the server hangs up.
    With `read=False` it never reads at all, so the server's answers stay unread."""

    def __init__(self, stats: AttackStats, read: bool) -> None:
        self.stats = stats
        self.read = read
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.status = 0
        self.closed = asyncio.get_running_loop().create_future()
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.read:
            transport.pause_reading()  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.status == 0 and len(self.head) < 16:
            self.head += data[:16]
            if len(self.head) >= 12 and self.head.startswith(b"HTTP/1."):
                with contextlib.suppress(ValueError):
                    self.status = int(self.head[9:12])
                    self.stats.statuses[self.status] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def send(self, data: bytes) -> bool:
        """Write and wait until the kernel takes it; False once the connection is gone."""
        if self.closed.done() or self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        self.stats.bytes_sent += len(data)
        await self._writable.wait()
        return not self.closed.done()


Behaviour = Callable[[_Client, asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class Attack:
    """A named behaviour and its defaults (the scale the issue measured)."""

    name: str
    behaviour: Behaviour
    connections: int
    # Distinct source addresses the slots are spread over (1: one attacking host).
    addresses: int
    reopen: float = 1.0
    read: bool = True
    # Receive buffer of the attacker's sockets (0: the kernel's default); a small one
    # makes the server hold a non-reader's answers instead of the kernel.
    rcvbuf: int = 0


async def _until(closed: asyncio.Future[None], stop: asyncio.Event, seconds: float) -> None:
    """Wait until the server closes, the attack stops, or `seconds` pass."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({closed, stopped}, timeout=seconds, return_when="FIRST_COMPLETED")
    finally:
        stopped.cancel()


async def idle(client: _Client, stop: asyncio.Event) -> None:
    """Connect and say nothing, holding a slot of the server's connection cap."""
    await _until(client.closed, stop, 1e9)


def pipeline(path: str = "/recommend/1", batch: int = 64) -> Behaviour:
    async def behaviour(client: _Client, stop: asyncio.Event) -> None:
        """Pipeline requests as fast as the server takes them, reading no answer."""
        requests = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() * batch
        while not stop.is_set() and await client.send(requests):
            await asyncio.sleep(0)

    return behaviour


def half_body(announced: int = 1 << 20, sent: int = 512 << 10) -> Behaviour:
    async def behaviour(client: _Client, stop: asyncio.Event) -> None:
        """Announce a body of `announced` bytes, send `sent` of them, and hold."""
        head = b"POST /recommend/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
        chunk = b"b" * (64 << 10)
        if not await client.send(head % announced):
            return
        left = sent
        while left > 0 and not stop.is_set():
            if not await client.send(chunk[: min(left, len(chunk))]):
                return
            left -= len(chunk)
        await _until(client.closed, stop, 1e9)

    return behaviour


def trickled_head(size: int = 16_000, interval: float = 0.001) -> Behaviour:
    async def behaviour(client: _Client, stop: asyncio.Event) -> None:
        """Send a valid head of `size` bytes one byte per packet, `interval` s apart."""
        data = trickle_head_bytes(size)
        for i in range(len(data)):
            if stop.is_set() or not await client.send(data[i : i + 1]):
                return
            await asyncio.sleep(interval)
        await _until(client.closed, stop, 1e9)

    return behaviour


def trickle_head_bytes(size: int) -> bytes:
    """A valid GET head of exactly `size` bytes (padding headers of up to 1,000 bytes)."""
    start = b"GET /recommend/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    lines = []
    left = size - len(start) - 2
    while left > 0:
        value = min(left, 1000) - len(b"X-Pad-000: \r\n")
        if value < 1:
            raise ValueError(f"cannot pad a head to {size} bytes")
        lines.append(b"X-Pad-%03d: %s\r\n" % (len(lines), b"p" * value))
        left -= len(lines[-1])
    head = start + b"".join(lines) + b"\r\n"
    assert len(head) == size, (len(head), size)
    return head


def slowloris(interval: float = 1.0) -> Behaviour:
    async def behaviour(client: _Client, stop: asyncio.Event) -> None:
        """Start a request and add a header line every `interval` s, never ending it."""
        if not await client.send(b"GET /recommend/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"):
            return
        n = 0
        while not stop.is_set():
            await _until(client.closed, stop, interval)
            if client.closed.done() or not await client.send(b"X-Drip-%d: 1\r\n" % n):
                return
            n += 1

    return behaviour


def garbage_payloads(seed: int = 9) -> list[bytes]:
    """Malformed, ambiguous and foreign requests: each must get a 4xx/5xx and a close."""
    host = b"Host: 127.0.0.1\r\n"
    rng = random.Random(seed)
    return [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(200),  # TLS hello
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # HTTP/2 preface
        b"POST /recommend/1 HTTP/1.1\r\n" + host + b"Content-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",  # CL.TE
        b"POST /recommend/1 HTTP/1.1\r\n" + host + b"Content-Length: 3\r\n"
        b"Content-Length: 40\r\n\r\nabc",  # two lengths
        b"GET /recommend/1 HTTP/1.1\r\n" + host + b"Transfer-Encoding : chunked\r\n\r\n",
        b"GET /recommend/1 HTTP/1.1\r\n" + host + b" folded\r\n\r\n",  # obs-fold
        b"GET /recommend/1 HTTP/1.1\n" + host.replace(b"\r\n", b"\n") + b"\n",  # bare LF
        b"GET /recommend/1\x00 HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n" + host + b"\r\n",  # long line
        b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n",  # huge head
        b"GET /recommend/1 HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET /recommend/1 HTTP/1.1\r\n" + host + b"Connection: closed, x-close\r\n"
        b"Content-Length: 1\r\n\r\n",  # a body where none is taken, never sent
        rng.randbytes(3000),
    ]


def garbage(seed: int = 9) -> Behaviour:
    payloads = garbage_payloads(seed)
    turn = iter(range(1 << 62))

    async def behaviour(client: _Client, stop: asyncio.Event) -> None:
        """Send the next garbage payload and wait (a while) for the server's verdict."""
        if await client.send(payloads[next(turn) % len(payloads)]):
            await _until(client.closed, stop, _GARBAGE_WAIT)

    return behaviour


IDLE_MANY = Attack("idle_many_addresses", idle, 10_000, addresses=100)
IDLE_ONE = Attack("idle_one_address", idle, 10_000, addresses=1)
PIPELINE = Attack("pipeline_no_read", pipeline(), 200, addresses=200, read=False, rcvbuf=16384)
HALF_BODY = Attack("half_sent_body", half_body(), 2_000, addresses=100)
TRICKLE = Attack("trickled_head", trickled_head(), 20, addresses=20)
SLOWLORIS = Attack("slowloris", slowloris(), 1_000, addresses=100)
GARBAGE = Attack("garbage_and_smuggling", garbage(), 20, addresses=20, reopen=0.01)
ATTACKS = {
    a.name: a for a in (IDLE_MANY, IDLE_ONE, PIPELINE, HALF_BODY, TRICKLE, SLOWLORIS, GARBAGE)
}


async def _open(attack: Attack, host: str, port: int, slot: int, stats: AttackStats) -> _Client:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if attack.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, attack.rcvbuf)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, _BIND_ADDRESS_NO_PORT, 1)
        sock.bind((attacker_address(slot, attack.addresses), 0))
        await loop.sock_connect(sock, (host, port))
        _, client = await loop.create_connection(lambda: _Client(stats, attack.read), sock=sock)
    except BaseException:
        sock.close()
        raise
    return client


async def _behave(attack: Attack, client: _Client, stop: asyncio.Event) -> None:
    """Run the behaviour until it ends or the attack stops (a send blocked on a server
    that no longer reads would otherwise never notice)."""
    behaviour = asyncio.ensure_future(attack.behaviour(client, stop))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({behaviour, stopped}, return_when="FIRST_COMPLETED")
    finally:
        stopped.cancel()
        behaviour.cancel()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await behaviour


async def _slot(
    attack: Attack, host: str, port: int, slot: int, stats: AttackStats, stop: asyncio.Event
) -> None:
    first = True
    while not stop.is_set():
        try:
            client = await _open(attack, host, port, slot, stats)
        except OSError:
            stats.connect_errors += 1
            client = None
        if first:
            stats.started += 1
            first = False
        if client is not None:
            stats.opened += 1
            await _behave(attack, client, stop)
            if client.closed.done():
                stats.closed_by_server += 1
            elif client.transport is not None:
                client.transport.abort()  # a reset: no TIME_WAIT left on our side
        await _until(asyncio.get_running_loop().create_future(), stop, attack.reopen)


async def run(
    attack: Attack,
    host: str,
    port: int,
    stop: asyncio.Event,
    connections: int | None = None,
    stats: AttackStats | None = None,
    ramp: float = 0.0005,
) -> AttackStats:
    """Run `attack` with `connections` slots (its default unless given) until `stop` is set.
    Slots start `ramp` s apart so the listener's backlog is not what refuses them."""
    stats = stats if stats is not None else AttackStats()
    tasks = []
    for slot in range(attack.connections if connections is None else connections):
        if stop.is_set():
            break
        tasks.append(asyncio.create_task(_slot(attack, host, port, slot, stats, stop)))
        await asyncio.sleep(ramp)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats
