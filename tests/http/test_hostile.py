"""The hostile clients of issue "the service under hostile clients", each at a small scale
against the real server on loopback: the attack runs, a well-behaved client on a new
connection is still answered within the site's 600 ms, and the server counts what it did.

The attack clients are tests/support/attacks.py, the same ones bench/bench_hostile.py
runs at full scale; attackers connect from 127.66.x.y, the well-behaved client from
127.0.0.1, so per-address limits see them as different hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from movierec.http.server import ServerThread
from tests.support.attacks import (
    HALF_BODY,
    IDLE_MANY,
    IDLE_ONE,
    PIPELINE,
    SLOWLORIS,
    Attack,
    attacker_address,
    garbage_payloads,
    pipeline,
    slowloris,
    trickle_head_bytes,
)
from tests.support.probes import AttackThread, ProbeResult, probe, probe_every
from tests.support.waiting import wait_until

Serve = Callable[..., ServerThread]
Sockets = Callable[[int, str], socket.socket]
HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"


# --- reading the server's own account of what it did --------------------------------------


def counter(t: ServerThread, name: str) -> int:
    return t.server.stats()[name]


def answered(t: ServerThread, status: int) -> int:
    return t.server.server_stats.statuses[status]


def open_connections(t: ServerThread) -> int:
    return len(t.server.connections)


def buffered(t: ServerThread) -> int:
    return t.server.stats()["buffered_bytes"]


# --- raw clients ---------------------------------------------------------------------------


@pytest.fixture
def sockets() -> Iterator[Sockets]:
    """Factory: a client socket to the server on `port` from source `address`."""
    opened: list[socket.socket] = []

    def connect(port: int, address: str) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(address, 0))
        opened.append(sock)
        return sock

    yield connect
    for sock in opened:
        sock.close()


def status_of(sock: socket.socket, timeout: float = 5.0) -> int | None:
    """The status of the answer the server sends, None if it closes without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            data += chunk
    except ConnectionResetError:
        return None
    return int(data[9:12])


def closed(sock: socket.socket, timeout: float = 3.0) -> bool:
    """True once the server has closed `sock` (EOF or reset), reading past any answer."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def still_open(sock: socket.socket) -> bool:
    """Without waiting: no EOF or reset has arrived on `sock`."""
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def well_behaved(t: ServerThread, path: str = "/") -> ProbeResult:
    return asyncio.run(probe("127.0.0.1", t.port, path))


def probes_in_time(t: ServerThread, seconds: float) -> list[ProbeResult]:
    results = asyncio.run(probe_every("127.0.0.1", t.port, ["/"], seconds))
    late = [r for r in results if not r.in_time]
    assert not late, f"{len(late)} of {len(results)} probes late or failed: {late[:5]}"
    return results


# --- the connection cap ----------------------------------------------------------------------


def test_idle_connections_at_the_cap_give_way_oldest_first(serve: Serve, sockets: Sockets) -> None:
    t = serve(max_connections=6)
    idle = []
    for i in range(6):
        idle.append(sockets(t.port, attacker_address(i, 6)))
        wait_until(lambda n=i + 1: open_connections(t) == n, 5, 0.01, f"{i + 1} admitted")
    # A newcomer displaces the connection idle the longest, and only that one.
    first = sockets(t.port, "127.0.0.1")
    first.sendall(HEAD + b"\r\n")
    assert status_of(first) == 200
    assert closed(idle[0])
    assert all(still_open(s) for s in idle[1:])
    assert counter(t, "connections_evicted") == 1
    assert counter(t, "connections_rejected") == 0


def test_one_address_cannot_keep_others_out(serve: Serve, sockets: Sockets) -> None:
    t = serve(max_connections=8, max_address_share=0.25)  # 2 connections per address
    attacker = "127.66.0.1"
    held = []
    for i in range(8):
        sock = sockets(t.port, attacker)
        sock.sendall(HEAD)  # a head in progress: busy, so nothing to displace as idle
        held.append(sock)
        wait_until(lambda n=i + 1: open_connections(t) == n, 5, 0.01, f"{i + 1} admitted")
    # Another from that address finds only its own busy connections: refused.
    assert status_of(sockets(t.port, attacker)) == 503
    # Anyone else is admitted: the address over its share yields its oldest connection.
    assert well_behaved(t).in_time
    assert closed(held[0])
    assert answered(t, 503) == 1 and counter(t, "connections_rejected") == 1
    assert counter(t, "connections_evicted") >= 1


@pytest.mark.parametrize("attack", [IDLE_MANY, IDLE_ONE], ids=lambda a: a.name)
def test_idle_attack_over_the_cap_does_not_lock_out(serve: Serve, attack: Attack) -> None:
    t = serve(max_connections=100)
    with AttackThread(dataclasses.replace(attack, reopen=0.2), t.port, connections=150) as a:
        wait_until(lambda: a.stats.started == 150, 10, what="every attack slot to connect once")
        wait_until(lambda: open_connections(t) == 100, 10, what="the attack to fill the cap")
        probes_in_time(t, 1.5)
    assert counter(t, "connections_evicted") > 0
    assert a.stats.closed_by_server > 0


# --- answers nobody reads ---------------------------------------------------------------------


def test_pipelining_non_readers_do_not_hold_up_others(serve: Serve) -> None:
    t = serve(write_timeout=1.0)
    attack = dataclasses.replace(PIPELINE, behaviour=pipeline("/"), reopen=5.0)
    with AttackThread(attack, t.port, connections=20) as a:
        wait_until(lambda: a.stats.started == 20, 10, what="every non-reader to connect")
        wait_until(
            lambda: counter(t, "turns_deferred") > 0, 10, what="pipelined work left for later turns"
        )
        probes_in_time(t, 1.0)
        # Backpressure: each non-reader holds a bounded amount, not megabytes of answers.
        assert buffered(t) <= 20 * 256 * 1024
        wait_until(
            lambda: counter(t, "timeouts") >= 20,
            10,
            what="every non-reader dropped at the deadline",
        )


def test_a_pipeliner_is_not_read_faster_than_it_is_served(serve: Serve) -> None:
    """Reading stops while a connection's complete requests wait for later turns: resuming
    every turn read its next 256 KB while serving 16 requests of it, without bound."""
    t = serve()
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    total = 100_000  # 3.1 MB of requests, sent as fast as the kernel takes them
    sock = socket.create_connection(("127.0.0.1", t.port), timeout=30)
    answers = []
    reader = threading.Thread(target=lambda: answers.append(_count_answers(sock, total)))
    reader.start()
    try:
        sender = threading.Thread(target=sock.sendall, args=(request * total,))
        sender.start()
        peak = 0
        while reader.is_alive():
            peak = max(peak, buffered(t))
            reader.join(0.002)
        sender.join()
    finally:
        sock.close()
    assert answers == [total]
    assert counter(t, "turns_deferred") > 0
    # 64 KB of waiting input plus one read of the event loop (256 KB) at most.
    assert peak <= 512 * 1024, f"{peak} bytes buffered for one pipelining connection"


def _count_answers(sock: socket.socket, wanted: int) -> int:
    """Read until `wanted` answers arrived. The last 11 bytes of what was read are kept
    in front of the next chunk: a status line split between chunks counts once, and one
    already counted cannot fit in 11 bytes to count again."""
    status = b"HTTP/1.1 200"
    seen, tail = 0, b""
    while seen < wanted:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data = tail + chunk
        seen += data.count(status)
        tail = data[-(len(status) - 1) :]
    return seen


def test_a_newcomer_is_accepted_while_many_connections_pipeline(
    serve: Serve, sockets: Sockets
) -> None:
    """The loop accepts one connection per iteration, so iterations must stay short however
    many connections have pipelined work waiting. Measured in work, not time, so a slow
    machine cannot fail it: before the newcomer is answered, each of the 100 connections
    queued ahead of it costs one iteration, and an iteration serves at most a budget of
    deferred requests plus one turn of any connection that just sent. With each pipeliner
    getting all its 16 requests every iteration instead, 70,000 requests (seconds of work)
    went before the newcomer; with the budget, about 3,200."""
    per_turn, budget, attackers = 16, 16, 100
    t = serve(max_requests_per_turn=per_turn, max_deferred_per_iteration=budget)
    # Connected by the kernel (the server accepts them one loop iteration at a time), each
    # about 1,000 requests deep, answers left unread.
    work = b"GET /work HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
    for i in range(attackers):
        sock = sockets(t.port, attacker_address(i, attackers))
        sock.setblocking(False)
        sock.send(work[: 32 * 1024])
    newcomer = sockets(t.port, "127.0.0.1")
    newcomer.sendall(HEAD + b"\r\n")
    assert status_of(newcomer, timeout=60) == 200
    served_before = counter(t, "requests")
    bound = (attackers + 1) * (per_turn + budget)
    assert served_before <= 1.5 * bound, f"{served_before} requests went before the newcomer"
    assert counter(t, "turns_deferred") > 0


def test_slow_reader_cannot_extend_the_write_deadline(serve: Serve) -> None:
    t = serve(write_timeout=1.0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.connect(("127.0.0.1", t.port))
    try:
        # 64 answers of 1 MiB, read at about 400 KB/s: each takes longer than the deadline.
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 64)
        sock.settimeout(1.0)
        started, received = time.monotonic(), 0
        while time.monotonic() - started < 20:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += len(chunk)
            time.sleep(0.01)  # the slow reader's pace, not a synchronisation
        dropped_after = time.monotonic() - started
    finally:
        sock.close()
    assert dropped_after < 5.0, "the slow reader kept extending the write deadline"
    assert received < 4 << 20
    assert counter(t, "timeouts") == 1


# --- bodies and buffered memory ---------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"POST /recommend/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n",
        b"POST /recommend/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
    ids=["content-length", "transfer-encoding"],
)
def test_a_body_where_none_is_taken_is_refused_at_once(serve: Serve, sockets, head: bytes) -> None:
    t = serve(max_body=0, header_timeout=30)
    sock = sockets(t.port, "127.0.0.1")
    sock.sendall(head + b"b" * 65536)  # a sixteenth of the body, the rest never comes
    assert status_of(sock) == 413  # now, not at the header timeout (that would be 408)
    assert closed(sock)
    assert answered(t, 413) == 1
    assert counter(t, "requests") == 0  # the handler never saw it
    wait_until(lambda: buffered(t) == 0, 5, what="the refused body's bytes released")


def test_half_sent_bodies_do_not_grow_memory(serve: Serve) -> None:
    t = serve(max_body=0, header_timeout=30)
    with AttackThread(dataclasses.replace(HALF_BODY, reopen=60.0), t.port, connections=50) as a:
        wait_until(lambda: a.stats.statuses[413] >= 50, 20, what="every half-sent body refused")
        probes_in_time(t, 1.0)
        assert buffered(t) < 1 << 20  # no body is ever buffered
    assert answered(t, 413) == a.stats.statuses[413]


def test_buffered_input_has_a_global_bound(serve: Serve, sockets: Sockets) -> None:
    t = serve(max_buffered=1 << 20, header_timeout=30)  # bodies up to 1 MiB are taken
    senders = [sockets(t.port, attacker_address(i, 8)) for i in range(8)]
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"
    for sock in senders:
        sock.settimeout(5)
        with contextlib.suppress(OSError):  # already dropped: what the bound is for
            sock.sendall(head + b"b" * (512 << 10))  # 4 MiB wanted in all
    wait_until(
        lambda: counter(t, "connections_shed") >= 1 and buffered(t) <= 1 << 20,
        10,
        what="the connections holding the most shed, down to the bound",
    )
    assert well_behaved(t).in_time


# --- slow heads -------------------------------------------------------------------------------


def test_a_trickled_head_is_examined_once(serve: Serve, sockets: Sockets) -> None:
    t = serve()
    sock = sockets(t.port, "127.0.0.1")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = trickle_head_bytes(2000)
    wait_until(lambda: open_connections(t) == 1, 5, 0.01, "the connection admitted")
    (conn,) = list(t.server.connections)
    for i in range(len(head) - 1):
        sock.sendall(head[i : i + 1])
        # One byte per read on the server's side, the worst case for rescanning.
        wait_until(
            lambda n=i + 1: conn._scanner is not None and conn._scanner.scanned == n,
            5,
            0.0002,
            f"the server to read byte {i + 1}",
        )
    # Each byte is looked at a bounded number of times (a CRLFCRLF may straddle reads),
    # where rescanning from the start would examine about 2,000,000 bytes.
    assert conn._scanner.examined <= 4 * len(head)
    sock.sendall(head[-1:])
    assert status_of(sock) == 200


def test_slowloris_is_cut_off_and_counted(serve: Serve) -> None:
    t = serve(header_timeout=0.5)
    attack = dataclasses.replace(SLOWLORIS, behaviour=slowloris(0.1), reopen=60.0)
    with AttackThread(attack, t.port, connections=20) as a:
        probes_in_time(t, 1.0)
        wait_until(lambda: a.stats.statuses[408] >= 20, 10, what="every slowloris cut off")
    assert answered(t, 408) == a.stats.statuses[408]
    assert counter(t, "timeouts") == a.stats.statuses[408]


# --- every answer counted ----------------------------------------------------------------------


def test_every_refusal_is_counted_by_status(serve: Serve, sockets: Sockets) -> None:
    t = serve(max_body=0)
    seen: Counter[int] = Counter()
    for payload in garbage_payloads():
        sock = sockets(t.port, "127.0.0.1")
        with contextlib.suppress(OSError):  # refused before all of it was sent
            sock.sendall(payload)
        status = status_of(sock)
        assert status is not None and status >= 400, payload[:60]
        seen[status] += 1
    assert dict(t.server.server_stats.statuses) == dict(seen)
    assert counter(t, "requests") == 0


def test_the_503_at_the_cap_is_counted(serve: Serve, sockets: Sockets) -> None:
    t = serve(max_connections=1)
    busy = sockets(t.port, "127.66.0.1")
    busy.sendall(HEAD)
    wait_until(lambda: open_connections(t) == 1, 5, 0.01, "the first admitted")
    assert status_of(sockets(t.port, "127.66.0.1")) == 503
    assert answered(t, 503) == 1 and counter(t, "connections_rejected") == 1
