"""conversion@30m exactly as a reader of the log computes it.

A recommendation request answered with status 200 is *followed* when a watch line of the
same user, for one of the movies of the request's logged result list, has a time in
(request time, request time + 30 min]. This counts a later visit of the same user that
watches a movie of an earlier list, which the per-visit figure of `online.py` does not.

Times are compared in whole simulated seconds: a request line's time is its second plus a
fraction in [0, 1) (truncated, never rounded up), and watch lines fall on whole seconds,
so for a watch second w and a request second t, `t + f < w <= t + f + 1800` is exactly
`t < w <= t + 1800`. A session's minutes are at start + 60 x minute, so its first line is
its earliest: a session follows a request when its start is in the window, and the
request's follow time is the earliest such start. Lines are written tick by tick, so at
ledger time a follow counts only if its watch line is already in the log (`horizon`).

Requests are remembered for 30 minutes in arrays sorted by user; each tick's sessions are
matched to them with searchsorted, so no Python loop runs per request or per watch line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from movierec_sim.faults import RECOMMENDATION, WATCH, LineFacts

WINDOW = 1800  # seconds after the request's time a watch may follow it
DAY = 86_400
NEVER = np.iinfo(np.int64).max


@dataclass
class _Pending:
    """Answered requests of the last 30 minutes, sorted by user (a user may have several)."""

    user: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    time: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    follow: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # NEVER: not
    listed: np.ndarray = field(default_factory=lambda: np.empty((0, 1), np.int64))
    lost: np.ndarray = field(default_factory=lambda: np.empty(0, bool))  # its line is dirt

    def take(self, keep: np.ndarray) -> _Pending:
        return _Pending(
            self.user[keep], self.time[keep], self.follow[keep], self.listed[keep], self.lost[keep]
        )

    def rows_of(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query index, pending row) for every pending request of each queried user."""
        left = np.searchsorted(self.user, users, side="left")
        counts = np.searchsorted(self.user, users, side="right") - left
        query = np.repeat(np.arange(len(users)), counts)
        starts = np.repeat(left - (np.cumsum(counts) - counts), counts)
        return query, starts + np.arange(len(query))


class ConversionTally:
    """The ledger's `conversion@30m`, by the UTC date of the request's logged time."""

    def __init__(self, epoch: int, movie_index: Mapping[str, int]) -> None:
        self.epoch = epoch  # unix seconds of simulated second 0
        self.movie_index = movie_index
        self.pending = _Pending()
        # Finished requests (older than the window when pruned): UTC day number (unix
        # seconds // DAY, as a log reader buckets them) -> [answered, followed, answered
        # lines lost, of which followed].
        self.done: dict[int, list[int]] = {}
        # What dirt (and late lines that may never be written) took from the log: answered
        # request lines made invalid (and of those, the followed), and for each lost watch
        # line the pending requests it could have followed. Together they bound how far
        # the log's figure can fall short. Lost lines are matched in batches (`_settle`).
        self._lost: list[tuple[int, int, int, str]] = []  # kind, user index, second, movie
        self.lost_watch_lines = 0
        self.lost_watch_follows = 0

    def requests(self, t0: int, users: np.ndarray, times: np.ndarray, listed: np.ndarray) -> None:
        """Remember the answered requests of the tick starting at t0 (user indices, request
        seconds, logged result lists as movie indices padded with -1); forget those no
        session of this tick or later can follow (older than t0 - WINDOW)."""
        self._settle()
        self._prune(t0)
        if len(users) == 0:
            return
        old = self.pending
        width = max(old.listed.shape[1], listed.shape[1], 1)
        user = np.concatenate([old.user, users.astype(np.int64)])
        order = np.argsort(user, kind="stable")
        self.pending = _Pending(
            user[order],
            np.concatenate([old.time, times.astype(np.int64)])[order],
            np.concatenate([old.follow, np.full(len(users), NEVER, np.int64)])[order],
            np.concatenate([_pad(old.listed, width), _pad(listed, width)])[order],
            np.concatenate([old.lost, np.zeros(len(users), bool)])[order],
        )

    def sessions(self, users: np.ndarray, movies: np.ndarray, start: np.ndarray) -> None:
        """Match this tick's sessions (each has a watch line at its start) to the pending
        requests of their users."""
        p = self.pending
        if len(users) == 0 or len(p.user) == 0:
            return
        query, row = p.rows_of(users.astype(np.int64))
        if len(row) == 0:
            return
        s = start[query]
        hit = (p.time[row] < s) & (s <= p.time[row] + WINDOW)
        hit &= (p.listed[row] == movies[query][:, None]).any(axis=1)
        # The earliest qualifying start; several sessions may follow one request.
        np.minimum.at(p.follow, row[hit], s[hit])

    def lost_line(self, facts: LineFacts) -> None:
        """A line that may not reach the log as a valid event (dirt, or a late line).

        Called by the writer while it writes the line's tick, so every request the line
        concerns is still pending until the next tick's `requests` settles it."""
        if facts.kind in (RECOMMENDATION, WATCH):
            self._lost.append((facts.kind, facts.user - 1, facts.time - self.epoch, facts.movie_id))

    def _settle(self) -> None:
        """Match the lost lines to the pending requests, all at once."""
        if not self._lost:
            return
        columns = list(zip(*self._lost, strict=True))
        kind, user, second = (np.array(column, np.int64) for column in columns[:3])
        movie = np.array([self.movie_index.get(m, -1) for m in columns[3]], np.int64)
        self._lost.clear()
        p = self.pending
        query, row = p.rows_of(user)
        at, tr = second[query], p.time[row]
        is_request = kind[query] == RECOMMENDATION
        p.lost[row[is_request & (tr == at)]] = True  # only answered requests are pending
        follows = ~is_request & (movie[query] >= 0) & (tr < at) & (at <= tr + WINDOW)
        follows &= (p.listed[row] == movie[query][:, None]).any(axis=1)
        self.lost_watch_lines += int((kind == WATCH).sum())
        self.lost_watch_follows += int(follows.sum())

    def _prune(self, t0: int) -> None:
        p = self.pending
        old = p.time < t0 - WINDOW
        if not old.any():
            return
        self._finish(p.take(old), NEVER)
        self.pending = p.take(~old)

    def _finish(self, p: _Pending, horizon: int) -> None:
        _count(self.done, (self.epoch + p.time) // DAY, p.follow < horizon, p.lost)

    def to_json(self, horizon: int) -> dict:
        """The figure over what the log holds once lines before `horizon` are written."""
        self._settle()
        by_day = {day: list(row) for day, row in self.done.items()}
        p = self.pending
        _count(by_day, (self.epoch + p.time) // DAY, p.follow < horizon, p.lost)
        first = self.epoch // DAY
        answered = sum(r[0] for r in by_day.values())
        followed_total = sum(r[1] for r in by_day.values())
        return {
            "definition": "share of status-200 recommendation requests followed, within "
            "(t, t + 1800 s] of the request's logged time t, by a watch line of the same user "
            "for a movie of the request's logged result list",
            "answered": answered,
            "followed": followed_total,
            "share": _share(followed_total, answered),
            "by_day": [
                {
                    "day": day - first,
                    "date": str(np.datetime64(day, "D")),
                    "answered": row[0],
                    "followed": row[1],
                    "share": _share(row[1], row[0]),
                }
                for day, row in sorted(by_day.items())
            ],
            "lost_at_most": {
                "answered": sum(r[2] for r in by_day.values()),
                "answered_followed": sum(r[3] for r in by_day.values()),
                "watch_lines": self.lost_watch_lines,
                "watch_follows": self.lost_watch_follows,
            },
        }


def _count(
    by_day: dict[int, list[int]], days: np.ndarray, followed: np.ndarray, lost: np.ndarray
) -> None:
    for day in np.unique(days).tolist():
        row = by_day.setdefault(int(day), [0, 0, 0, 0])
        at = days == day
        row[0] += int(at.sum())
        row[1] += int(followed[at].sum())
        row[2] += int(lost[at].sum())
        row[3] += int((lost & followed)[at].sum())


def _pad(listed: np.ndarray, width: int) -> np.ndarray:
    if listed.shape[1] == width:
        return listed
    out = np.full((len(listed), width), -1, dtype=np.int64)
    out[:, : listed.shape[1]] = listed
    return out


def _share(x: int, n: int) -> float | None:
    return round(x / n, 6) if n else None
