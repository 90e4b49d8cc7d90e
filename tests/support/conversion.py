"""conversion@30m from an event store, slowly and obviously: fetch the rows, loop.

The reference the product's fast computation and the simulator's ledger are checked
against. A status-200 recommendation request at time t is followed when the same user
has a watch row with time in (t, t + 1800 s] for a movie of the request's result list.
Days are the UTC dates of the requests' times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from movierec.store.events import EventStore

WINDOW_NS = 1800 * 10**9


@dataclass
class Conversion:
    answered: int = 0
    followed: int = 0
    by_date: dict[str, list[int]] = field(default_factory=dict)  # date -> [answered, followed]

    @property
    def share(self) -> float | None:
        return self.followed / self.answered if self.answered else None


def conversion_at_30m(store: Path | str) -> Conversion:
    """The figure over every committed recommendation and watch row of the store."""
    con = EventStore(store).connect()
    try:
        requests = con.execute(
            "SELECT epoch_ns(time), user_id, status, items FROM recommendation"
        ).fetchall()
        watches = con.execute("SELECT epoch_ns(time), user_id, movie_id FROM watch").fetchall()
    finally:
        con.close()
    watches_of: dict[int, list[tuple[int, str]]] = {}
    for time_ns, user, movie in watches:
        watches_of.setdefault(user, []).append((time_ns, movie))
    result = Conversion()
    for time_ns, user, status, items in requests:
        if status != 200:
            continue
        followed = False
        for watched_ns, movie in watches_of.get(user, []):
            if time_ns < watched_ns <= time_ns + WINDOW_NS and movie in items:
                followed = True
        date = datetime.fromtimestamp(time_ns // 10**9, UTC).date().isoformat()
        day = result.by_date.setdefault(date, [0, 0])
        result.answered += 1
        day[0] += 1
        if followed:
            result.followed += 1
            day[1] += 1
    return result
