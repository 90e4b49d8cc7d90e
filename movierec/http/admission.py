"""Who holds the server's connection slots: least recently active first, grouped by address.

Below the cap everyone is admitted. At the cap a newcomer displaces someone rather than
being locked out by connections that merely sit there:

1. a newcomer whose address already holds its share of the cap may only displace that
   address's own connection idle the longest; with none idle it is refused (503);
2. otherwise, when an address holds more than its share, that address yields: its
   connection idle the longest goes, or, with none idle, its oldest one;
3. otherwise the connection idle the longest, whoever holds it, goes; with none idle the
   newcomer is refused (503).

So one address can fill the cap while nobody else wants in, but cannot keep anyone out.
Connections move to the back of the order whenever they finish serving, so the front
holds those idle the longest. A search for an idle one looks at a bounded number of
connections (moving the busy ones it passes to the back), so a cap full of busy
connections costs each newcomer a bounded amount of work, not a scan of all of them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, Protocol, TypeVar

# Connections looked at per search for an idle one.
_SEARCH = 64


class Slot(Protocol):
    """What the table needs of a connection."""

    address: Hashable

    @property
    def idle(self) -> bool: ...

    def evict(self) -> None: ...


C = TypeVar("C", bound=Slot)


class ConnectionTable(Generic[C]):
    def __init__(self, max_connections: int, address_share: float) -> None:
        self.cap = max_connections
        self.per_address = max(1, int(max_connections * address_share))
        self._all: OrderedDict[C, None] = OrderedDict()
        self._by_address: dict[Hashable, OrderedDict[C, None]] = {}
        # Addresses holding more than their share: at most 1/share of them.
        self._crowded: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[C]:
        return iter(list(self._all))  # a copy: callers close connections while iterating

    def __contains__(self, conn: object) -> bool:
        return conn in self._all

    def held_by(self, address: Hashable) -> int:
        group = self._by_address.get(address)
        return len(group) if group is not None else 0

    def admit(self, conn: C) -> tuple[bool, C | None]:
        """Add `conn` if there is room or someone to displace: (admitted, evicted). The
        evicted connection has left the table and been told to go."""
        victim = None
        if len(self._all) >= self.cap:
            victim = self._victim(conn.address)
            if victim is None:
                return False, None
            self.discard(victim)
            victim.evict()
        self._all[conn] = None
        group = self._by_address.get(conn.address)
        if group is None:
            group = self._by_address[conn.address] = OrderedDict()
        group[conn] = None
        if len(group) > self.per_address:
            self._crowded.add(conn.address)
        return True, victim

    def discard(self, conn: C) -> None:
        if conn in self._all:
            del self._all[conn]
            group = self._by_address[conn.address]
            del group[conn]
            if len(group) <= self.per_address:
                self._crowded.discard(conn.address)
                if not group:
                    del self._by_address[conn.address]

    def touch(self, conn: C) -> None:
        """`conn` has just served: it goes to the back of the order."""
        self._all.move_to_end(conn)
        self._by_address[conn.address].move_to_end(conn)

    def _victim(self, address: Hashable) -> C | None:
        own = self._by_address.get(address)
        if own is not None and len(own) >= self.per_address:
            return _idle_longest(own)
        if self._crowded:
            crowded = max(self._crowded, key=lambda a: len(self._by_address[a]))
            group = self._by_address[crowded]
            return _idle_longest(group) or next(iter(group))
        return _idle_longest(self._all)


def _idle_longest(order: OrderedDict[C, None]) -> C | None:
    """The idle connection nearest the front; the busy ones passed go to the back."""
    for _ in range(min(_SEARCH, len(order))):
        conn = next(iter(order))
        if conn.idle:
            return conn
        order.move_to_end(conn)
    return None
