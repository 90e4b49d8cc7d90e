"""The connection cap: idle connections make room (idle the longest first), and one address
cannot keep the others out. The table alone (with stand-in connections), then the real
server on loopback, with clients on other loopback addresses (127.0.0.2, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.http.admission import ConnectionTable
from movierec.http.server import ServerThread
from tests.support.waiting import wait_until

Serve = Callable[..., ServerThread]
Connect = Callable[..., Any]  # returns conftest.RawConn

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
PARTIAL = b"GET / HTTP/1.1\r\nHost: a\r\n"  # a head that is never finished


@dataclass(eq=False)
class Stub:
    """A stand-in connection: an address, whether it is idle, whether it was evicted."""

    address: str
    idle: bool = True
    evicted: bool = False

    def evict(self) -> None:
        self.evicted = True


def test_below_the_cap_everyone_is_admitted() -> None:
    table: ConnectionTable[Stub] = ConnectionTable(3, 0.5)
    conns = [Stub("a", idle=False) for _ in range(3)]
    assert [table.admit(c) for c in conns] == [(True, None)] * 3
    assert len(table) == 3 and table.held_by("a") == 3


def test_at_the_cap_the_connection_idle_longest_makes_room() -> None:
    table: ConnectionTable[Stub] = ConnectionTable(3, 1.0)
    first, second, third = Stub("a"), Stub("b"), Stub("c")
    for conn in (first, second, third):
        table.admit(conn)
    table.touch(first)  # it just served: now second has been idle the longest
    newcomer = Stub("d")
    assert table.admit(newcomer) == (True, second)
    assert second.evicted and second not in table and newcomer in table


def test_busy_connections_are_not_displaced() -> None:
    table: ConnectionTable[Stub] = ConnectionTable(2, 1.0)
    table.admit(Stub("a", idle=False))
    table.admit(Stub("b", idle=False))
    assert table.admit(Stub("c")) == (False, None)
    assert len(table) == 2


def test_an_address_at_its_share_only_displaces_its_own() -> None:
    table: ConnectionTable[Stub] = ConnectionTable(4, 0.5)  # two per address at the cap
    other = Stub("b")  # idle the longest, but not the crowded address's
    table.admit(other)
    busy = [Stub("a", idle=False) for _ in range(2)]
    own_idle = Stub("a")
    for conn in (*busy, own_idle):
        table.admit(conn)
    assert table.admit(Stub("a", idle=False)) == (True, own_idle)
    assert not other.evicted
    # None of its own is idle any more; b's idle one is not its to take.
    assert table.admit(Stub("a", idle=False)) == (False, None)


def test_an_address_over_its_share_yields_even_busy_connections() -> None:
    table: ConnectionTable[Stub] = ConnectionTable(4, 0.5)
    hog = [Stub("a", idle=False) for _ in range(4)]
    for conn in hog:
        table.admit(conn)
    assert table.admit(Stub("b")) == (True, hog[0])
    assert table.held_by("a") == 3 and table.held_by("b") == 1


_OPS = st.lists(
    st.tuples(st.sampled_from(["admit", "discard", "touch", "flip"]), st.integers(0, 3)),
    max_size=80,
)


@given(_OPS)
def test_the_table_keeps_its_promises(ops: list[tuple[str, int]]) -> None:
    cap, share = 6, 0.5
    table: ConnectionTable[Stub] = ConnectionTable(cap, share)
    live: list[Stub] = []
    for op, n in ops:
        if op == "admit":
            newcomer = Stub(f"addr{n}", idle=n % 2 == 0)
            held = {a: table.held_by(a) for a in {c.address for c in live}}
            admitted, victim = table.admit(newcomer)
            if victim is not None:
                assert victim.evicted and victim not in table
                live.remove(victim)
                # Its own when the newcomer's address is at its share; always idle, or of
                # an address over its share.
                if held.get(newcomer.address, 0) >= table.per_address:
                    assert victim.address == newcomer.address
                assert victim.idle or held[victim.address] > table.per_address
            if admitted:
                live.append(newcomer)
            else:
                assert len(table) == cap
        elif live:
            conn = live[n % len(live)]
            if op == "discard":
                table.discard(conn)
                live.remove(conn)
            elif op == "touch":
                table.touch(conn)
            else:
                conn.idle = not conn.idle
        assert len(table) == len(live) <= cap
        assert set(table) == set(live)
        for address in {c.address for c in live}:
            assert table.held_by(address) == sum(c.address == address for c in live)


# --- the real server -------------------------------------------------------------------------


def _served(c: Any) -> None:
    c.send(GET)
    assert c.response()[0] == 200


def test_idle_connections_at_the_cap_make_room_for_a_newcomer(
    serve: Serve, connect: Connect
) -> None:
    t = serve(max_connections=3)
    a, b, c = (connect(t.port) for _ in range(3))
    for conn in (a, b, c):
        _served(conn)
    _served(a)  # a is active again: b is now the one idle the longest
    newcomer = connect(t.port)
    _served(newcomer)
    assert b.closed()
    for conn in (a, c, newcomer):
        _served(conn)
    stats = t.server.stats()
    assert stats["connections_evicted"] == 1 and stats["connections_rejected"] == 0
    assert t.server.server_stats.statuses[503] == 0


def test_a_cap_full_of_busy_connections_answers_503(serve: Serve, connect: Connect) -> None:
    t = serve(max_connections=2, max_address_share=1.0)
    held = [connect(t.port) for _ in range(2)]
    for conn in held:
        conn.send(PARTIAL)
    wait_until(
        lambda: len(t.server.connections) == 2 and not any(c.idle for c in t.server.connections),
        timeout=5,
        what="both connections to be in the middle of a request",
    )
    extra = connect(t.port)
    status, _, body = extra.response()
    assert status == 503 and body == b"too many connections\n"
    assert extra.closed()
    assert t.server.stats()["connections_rejected"] == 1
    assert t.server.server_stats.statuses[503] == 1


def test_one_address_cannot_keep_the_others_out(serve: Serve, connect: Connect) -> None:
    t = serve(max_connections=4, max_address_share=0.5)  # two per address at the cap
    hog = [connect(t.port, "127.0.0.2") for _ in range(4)]
    for conn in hog:
        conn.send(PARTIAL)
    wait_until(
        lambda: len(t.server.connections) == 4 and not any(c.idle for c in t.server.connections),
        timeout=5,
        what="the hog's four connections to be busy",
    )
    newcomer = connect(t.port)  # from 127.0.0.1
    _served(newcomer)
    assert hog[0].closed()  # the hog's oldest made room
    more = connect(t.port, "127.0.0.2")
    status, _, body = more.response()
    assert status == 503 and body == b"too many connections from your address\n"
    _served(newcomer)
    stats = t.server.stats()
    assert stats["connections_evicted"] == 1 and stats["connections_rejected"] == 1


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.3"])
def test_idle_connections_of_one_address_leave_room_for_anyone(
    serve: Serve, connect: Connect, source: str
) -> None:
    # The shape of the 10,000-idle-connections attack, at a small scale: one address fills
    # the cap with connections that say nothing; a client from it or elsewhere still gets in.
    t = serve(max_connections=6, max_address_share=0.25)
    for _ in range(3):
        # The attacker tops the cap up again before each client, as it reconnects.
        for _ in range(6 - len(t.server.connections)):
            connect(t.port, "127.0.0.2")
        wait_until(lambda: len(t.server.connections) == 6, timeout=5, what="the cap to fill")
        client = connect(t.port, source)
        _served(client)
        client.close()
        wait_until(lambda: len(t.server.connections) == 5, timeout=5, what="the client to go")
    assert t.server.stats()["connections_evicted"] == 3
    assert t.server.stats()["connections_rejected"] == 0
