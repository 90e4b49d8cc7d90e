"""Batch parser of the site's log lines: exactly the answers of `reference.parse_line`, fast.

`parse_batch` joins the raw messages chunk by chunk with '\\n' and hands each chunk to a
numba kernel (`batch_kernel`) that does the whole reference parse on the bytes: strict
UTF-8, control characters, timestamp, user id, watch/rate/recommendation bodies and every
rejection reason. A message may itself hold '\\n' (it is still one line): the kernel notices
that the pieces do not add up and the chunk is parsed again by explicit message lengths.
Python finishes only what needs Python objects: the Event of each recommendation and
other-kind row, and the rare rows the kernel leaves to the reference parser itself (a
status-200 result holding non-ASCII text, whose Unicode spaces only str.strip knows; a
valid time beyond int64 nanoseconds).

Line hash (persisted for de-duplication across restarts; it must never change): XXH64 with
seed 0 of the message's exact raw bytes, as an unsigned 64-bit integer. XXH64 is specified
in https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md and matches
`xxhash.xxh64_intdigest(raw)` of the python-xxhash package, `xxhsum -H1`, or ClickHouse's
`xxHash64`; e.g. line_hash(b"abc") == 0x44BC2CF5AD770999. `line_hash` below is the plain
Python definition; the kernel computes the same value 8 bytes at a time.

Rows whose valid time does not fit int64 nanoseconds (before 1677-09-21 or after
2262-04-11) hold the clamped value in `time_ns`; their exact Event is in `extra`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from movierec.logformat import batch_kernel as fk
from movierec.logformat.reference import _OTHER, REASON_CODE, Event, Kind, Reject, parse_line
from movierec.logformat.xxhash import xxh64

__all__ = ["ParsedBatch", "line_hash", "parse_batch"]

# Lines per chunk: the joined bytes (~1 MiB) stay in cache, which makes joining four
# times faster than one join of a whole batch.
CHUNK_LINES = 16_384
_MAX_ID_BYTES = 250
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NO_LENGTHS = np.zeros(0, dtype=np.int64)
# The kernel writes these as the REASON_CODE of its own reason numbers.
_CODES = np.array([REASON_CODE[name] for name in fk.KERNEL_REASONS], dtype=np.int8)
_CREATE_ACCOUNT = _OTHER["GET /create_account"]
if (Kind.WATCH, Kind.RATE, Kind.RECOMMENDATION, Kind.OTHER) != (0, 1, 2, 3):
    raise ImportError("batch parser: Kind values must be 0-3 (watch, rate, recommendation, other)")


@dataclass(slots=True)
class ParsedBatch:
    kind: np.ndarray  # int8 Kind value, -1 where rejected
    reason: np.ndarray  # int8 REASON_CODE of the rejection, -1 where accepted
    time_ns: np.ndarray  # int64, 0 where rejected
    user: np.ndarray  # int32, 0 where rejected
    value: np.ndarray  # int32: minute (watch), stars (rate), status (recommendation)
    latency_ms: np.ndarray  # int32 (recommendation)
    movie: np.ndarray  # int32 index into movies (watch, rate), -1 otherwise
    movies: list[str]  # the distinct movie ids of the batch
    line_hash: np.ndarray  # uint64 XXH64 of each line's raw bytes
    extra: dict[int, Event] = field(default_factory=dict)  # row -> reference Event

    def __len__(self) -> int:
        return len(self.kind)


def line_hash(raw: bytes) -> int:
    """XXH64 (seed 0) of the raw bytes: the value parse_batch stores in line_hash."""
    return xxh64(bytes(raw))


class _MovieTable:
    """The kernel's batch-wide movie id interning state, grown between chunks."""

    def __init__(self) -> None:
        self.slots = np.full(1024, -1, dtype=np.int32)
        self.hashes = np.zeros(256, dtype=np.uint64)
        self.offsets = np.zeros(257, dtype=np.int64)
        self.arena = np.zeros(4096, dtype=np.uint8)
        self.count = 0

    def reserve(self, lines: int, nbytes: int) -> None:
        """Room for every line of the next chunk to bring a new id (load at most 1/2)."""
        need = self.count + lines
        if self.hashes.size < need:
            self.hashes = _grown(self.hashes, need, self.count)
            self.offsets = _grown(self.offsets, need + 1, self.count + 1)
        used = int(self.offsets[self.count])
        room = used + min(nbytes, lines * _MAX_ID_BYTES)
        if self.arena.size < room:
            self.arena = _grown(self.arena, room, used)
        if self.slots.size < 2 * need:
            size = 1 << (2 * need - 1).bit_length()
            self.slots = np.empty(size, dtype=np.int32)
            fk.rehash(self.slots, self.hashes, self.count)

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.slots, self.hashes, self.offsets, self.arena

    def ids(self) -> list[str]:
        bounds = self.offsets[: self.count + 1].tolist()
        raw = self.arena[: bounds[-1]].tobytes()
        return [raw[a:b].decode("ascii") for a, b in pairwise(bounds)]


def _grown(array: np.ndarray, need: int, keep: int) -> np.ndarray:
    bigger = np.zeros(max(need, 2 * array.size), dtype=array.dtype)
    bigger[:keep] = array[:keep]
    return bigger


def parse_batch(values: Sequence[bytes], rating_scale: int = 5) -> ParsedBatch:
    """Parse raw log messages (bytes, no trailing newline) as reference.parse_line would."""
    if not isinstance(values, list | tuple):
        values = list(values)
    n = len(values)
    batch = ParsedBatch(
        kind=np.empty(n, dtype=np.int8),
        reason=np.empty(n, dtype=np.int8),
        time_ns=np.empty(n, dtype=np.int64),
        user=np.empty(n, dtype=np.int32),
        value=np.empty(n, dtype=np.int32),
        latency_ms=np.empty(n, dtype=np.int32),
        movie=np.empty(n, dtype=np.int32),
        movies=[],
        line_hash=np.empty(n, dtype=np.uint64),
    )
    out = (batch.kind, batch.reason, batch.time_ns, batch.user, batch.value, batch.latency_ms)
    # A rating is at most three digits, so clamping keeps `1 <= stars <= scale` unchanged
    # while fitting any int into the kernel's int64.
    scale = max(-1, min(int(rating_scale), 1000))
    table = _MovieTable()
    special = np.empty(min(n, CHUNK_LINES), dtype=np.int64)
    spans = np.empty((min(n, CHUNK_LINES), 4), dtype=np.int64)
    pending = np.empty((min(n, CHUNK_LINES), 3), dtype=np.int64)
    pending_hash = np.empty(min(n, CHUNK_LINES), dtype=np.uint64)
    slow: list[int] = []
    for low in range(0, n, CHUNK_LINES):
        part = values[low : low + CHUNK_LINES]
        buf = np.frombuffer(b"\n".join(part), dtype=np.uint8)
        table.reserve(len(part), buf.size)
        head = (low, scale, _CODES, out, batch.movie, batch.line_hash, table.arrays)
        tail = (table.count, special, spans, pending, pending_hash)
        # First split on the '\n' separators; a message holding '\n' makes the kernel
        # refuse the chunk, which is then parsed by explicit lengths.
        nspecial, count, ok = fk.parse_chunk(buf, len(part), _NO_LENGTHS, *head, *tail)
        if not ok:
            lengths = np.fromiter(map(len, part), dtype=np.int64, count=len(part))
            nspecial, count, ok = fk.parse_chunk(buf, len(part), lengths, *head, *tail)
        table.count = count
        if nspecial:
            _finish_special(batch, values, special[:nspecial], spans[:nspecial], slow)
    batch.movies = table.ids()
    if slow:
        _reference_rows(batch, values, slow, rating_scale)
    return batch


def _finish_special(
    batch: ParsedBatch,
    values: Sequence[bytes],
    rows: np.ndarray,
    spans: np.ndarray,
    slow: list[int],
) -> None:
    """Events of the chunk's recommendation and other-kind rows; note the slow rows."""
    # Columns as Python ints in one go: per-row numpy scalar access costs more.
    columns = (batch.kind, batch.time_ns, batch.user, batch.value, batch.latency_ms)
    kinds, times, users, statuses, latencies = (column[rows].tolist() for column in columns)
    extra = batch.extra
    recommendation, other = int(Kind.RECOMMENDATION), int(Kind.OTHER)
    for row, k, t, user, status, latency, (s0, s1, r0, r1) in zip(
        rows.tolist(), kinds, times, users, statuses, latencies, spans.tolist(), strict=True
    ):
        if k == recommendation:
            raw = values[row]
            result = bytes(raw[r0:r1]).decode("utf-8")
            items: tuple[str, ...] = ()
            if status == 200 and result:
                # The kernel checked every item is a movie id between optional spaces, so
                # dropping the spaces is the reference's item.strip().
                items = tuple(result.replace(" ", "").split(","))
            service = bytes(raw[s0:s1]).decode("ascii")
            extra[row] = Event(
                Kind.RECOMMENDATION, t, user, "", status, latency, service, result, items
            )
        elif k == other:
            extra[row] = Event(Kind.OTHER, t, user, other=_CREATE_ACCOUNT)
        else:
            slow.append(row)


def _reference_rows(
    batch: ParsedBatch, values: Sequence[bytes], rows: list[int], rating_scale: int
) -> None:
    """Fill rows the kernel left to the reference parser from parse_line itself."""
    index = {movie: i for i, movie in enumerate(batch.movies)}
    for row in rows:
        event = parse_line(bytes(values[row]), rating_scale)
        batch.movie[row] = -1
        if isinstance(event, Reject):
            batch.kind[row] = -1
            batch.reason[row] = REASON_CODE[event.reason]
            batch.time_ns[row] = batch.user[row] = batch.value[row] = batch.latency_ms[row] = 0
            continue
        batch.kind[row] = int(event.kind)
        batch.reason[row] = -1
        clamped = min(max(event.time_ns, _INT64_MIN), _INT64_MAX)
        batch.time_ns[row] = clamped
        batch.user[row] = event.user
        batch.value[row] = event.value
        batch.latency_ms[row] = event.latency_ms
        if event.kind in (Kind.WATCH, Kind.RATE):
            if event.movie not in index:
                index[event.movie] = len(batch.movies)
                batch.movies.append(event.movie)
            batch.movie[row] = index[event.movie]
        if event.kind in (Kind.RECOMMENDATION, Kind.OTHER) or clamped != event.time_ns:
            batch.extra[row] = event
