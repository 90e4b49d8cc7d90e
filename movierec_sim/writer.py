"""Writing the simulated log: events queued by the tick they fall in, formatted in time
order, some made dirty, duplicates and late lines slipped in further down the stream, and
every written line accounted for in the ledger."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from movierec.logformat.writer import (
    NANOS,
    format_seconds,
    rate_lines,
    rate_prefix,
    watch_lines,
    watch_prefix,
)
from movierec.stream.base import Sink
from movierec_sim.faults import (
    DUPLICATE,
    FAULT_KINDS,
    OUT_OF_ORDER,
    RATE,
    RECOMMENDATION,
    WATCH,
    FaultMaker,
    LineFacts,
)
from movierec_sim.ledger import FAULT_BASE, REORDERED_BASE, Ledger
from movierec_sim.world import World

# Lines a duplicate copy / a late line may trail its original position by.
DUPLICATE_DELAY = (1, 300)
REORDER_DELAY = (20, 3000)


@dataclass(slots=True)
class _Chunk:
    """Pending events of one kind due in one tick."""

    key: np.ndarray  # nanoseconds since the epoch: the order lines are written in
    kind: int
    user: np.ndarray  # user ids
    movie: np.ndarray  # movie indices (-1 for recommendation lines)
    value: np.ndarray  # minute or stars
    texts: list[str] | None = None  # finished lines (recommendation lines)


class LogWriter:
    def __init__(
        self,
        world: World,
        sink: Sink,
        faults: FaultMaker,
        rng: np.random.Generator,
        ledger: Ledger,
        tick: int,
        events: int | None,
    ) -> None:
        self.world = world
        self.sink = sink
        self.faults = faults
        self.rng_faults = rng
        self.ledger = ledger
        self.tick = tick
        self.events = events  # stop after this many lines (None: no limit)
        self._pending: dict[int, list[_Chunk]] = defaultdict(list)
        self._late: list[tuple[int, int, bytes | str, int]] = []  # heap of delayed lines
        self._late_seq = 0
        self._primary = 0  # lines produced in time order (before delays), for delay targets
        # Told of each line that may not reach the log as a valid event: made dirty, or
        # delayed (the last late lines of a run are never written).
        self.on_lost: Callable[[LineFacts], None] | None = None
        self._watch_prefix = [watch_prefix(m) for m in world.movie_ids]
        self._rate_prefix = [rate_prefix(m) for m in world.movie_ids]

    def add(
        self,
        times: np.ndarray,
        keys: np.ndarray,
        kind: int,
        users: np.ndarray,
        movies: np.ndarray,
        values: np.ndarray,
        texts: list[str] | None = None,
    ) -> None:
        """Queue events under the tick they fall in."""
        if len(times) == 0:
            return
        ticks = times // self.tick
        order = np.argsort(ticks, kind="stable")
        bounds = np.flatnonzero(np.diff(ticks[order])) + 1
        for part in np.split(order, bounds):
            chunk_texts = [texts[i] for i in part.tolist()] if texts is not None else None
            self._pending[int(ticks[part[0]])].append(
                _Chunk(keys[part], kind, users[part], movies[part], values[part], chunk_texts)
            )

    def flush(self, tick: int) -> None:
        """Write the lines due in this tick, some made dirty, and the delayed ones now due."""
        chunks = self._pending.pop(tick, [])
        if not chunks and not self._late:
            return
        lines, kinds, facts = self._format(chunks)
        labels = kinds.astype(np.int16)
        codes = self.faults.plan(len(lines))
        base = self._primary
        for i in np.flatnonzero(codes >= 0).tolist():
            kind = FAULT_KINDS[codes[i]]
            if kind != DUPLICATE and self.on_lost is not None:
                self.on_lost(facts(i))
            if kind == DUPLICATE:
                self._delay(
                    base + i + self._int(*DUPLICATE_DELAY),
                    lines[i],
                    FAULT_BASE + FAULT_KINDS.index(DUPLICATE),
                )
            elif kind == OUT_OF_ORDER:
                self._delay(
                    base + i + self._int(*REORDER_DELAY), lines[i], REORDERED_BASE + int(kinds[i])
                )
                lines[i] = None
                labels[i] = -1
            else:
                made, dirty = self.faults.corrupt(kind, facts(i), base + i)
                lines[i] = dirty
                labels[i] = FAULT_BASE + FAULT_KINDS.index(made)
        self._primary += len(lines)
        lines, labels = self._merge_late(base, lines, labels)
        if self.events is not None:
            room = self.events - self.ledger.lines
            lines, labels = lines[:room], labels[:room]
        if lines:
            self.sink.write([x.encode() if isinstance(x, str) else x for x in lines])
            self.ledger.count_written(labels)

    def _int(self, low: int, high: int) -> int:
        return int(self.rng_faults.integers(low, high + 1))

    def _delay(self, target: int, line: str | bytes, label: int) -> None:
        heapq.heappush(self._late, (target, self._late_seq, line, label))
        self._late_seq += 1

    def _merge_late(self, base: int, lines: list, labels: np.ndarray) -> tuple[list, np.ndarray]:
        """Insert delayed lines due before the end of this block; drop the removed ones."""
        limit = base + len(lines)
        out: list = []
        out_labels: list[np.ndarray] = []
        previous = 0
        while self._late and self._late[0][0] < limit:
            target, _, line, label = heapq.heappop(self._late)
            at = max(target - base, previous)
            out.extend(lines[previous:at])
            out_labels.append(labels[previous:at])
            out.append(line)
            out_labels.append(np.array([label], dtype=np.int16))
            previous = at
        out.extend(lines[previous:])
        out_labels.append(labels[previous:])
        merged = np.concatenate(out_labels) if out_labels else labels
        keep = merged >= 0
        if keep.all():
            return out, merged
        return [x for x in out if x is not None], merged[keep]

    def _format(self, chunks: list[_Chunk]) -> tuple[list, np.ndarray, Callable[[int], LineFacts]]:
        """Lines of a tick in time order, their event kinds, and facts of line i on demand."""
        if not chunks:
            return [], np.empty(0, np.int8), lambda i: LineFacts(0, 0, 0, "", "")
        key = np.concatenate([c.key for c in chunks])
        kind = np.concatenate([np.full(len(c.key), c.kind, np.int8) for c in chunks])
        user = np.concatenate([c.user for c in chunks])
        movie = np.concatenate([c.movie for c in chunks])
        value = np.concatenate([c.value for c in chunks])
        texts = [t for c in chunks if c.texts is not None for t in c.texts]
        order = np.argsort(key, kind="stable")
        key, kind, user, movie, value = (
            key[order],
            kind[order],
            user[order],
            movie[order],
            value[order],
        )
        seconds = key // NANOS
        lines = np.empty(len(key), dtype=object)
        for k, make, prefixes in (
            (WATCH, watch_lines, self._watch_prefix),
            (RATE, rate_lines, self._rate_prefix),
        ):
            at = np.flatnonzero(kind == k)
            if len(at):
                lines[at] = make(
                    format_seconds(seconds[at]),
                    user[at].tolist(),
                    [prefixes[m] for m in movie[at].tolist()],
                    value[at].tolist(),
                )
        at = np.flatnonzero(kind == RECOMMENDATION)
        if len(at):
            # Recommendation texts were queued in chunk order; follow the same permutation.
            text_rank = (
                np.cumsum(
                    np.concatenate([np.full(len(c.key), c.texts is not None) for c in chunks])
                )
                - 1
            )
            lines[at] = [texts[r] for r in text_rank[order[at]].tolist()]
        line_list = lines.tolist()
        ids = self.world.movie_ids

        def facts(i: int) -> LineFacts:
            m = int(movie[i])
            return LineFacts(
                int(kind[i]), int(seconds[i]), int(user[i]), ids[m] if m >= 0 else "", line_list[i]
            )

        return line_list, kind, facts
