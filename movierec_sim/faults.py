"""Dirt the site's log really has (SPEC section 1), injected at chosen rates.

Every dirty line is checked against the strict SPEC patterns before it is written: a line
counted as a fault can never be a valid line by accident, so the ledger's fault counts are
exactly what a correct ingestion must reject (or, for duplicates, drop).
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import Field, field_validator, model_validator

from movierec.config import SettingsGroup
from movierec.ids import is_movie_id
from movierec.logformat import strict as spec
from movierec.logformat.writer import format_seconds, format_with_fraction

# Lines that replace a clean line with dirt (must be quarantined by ingestion).
REPLACING = (
    "truncated",
    "garbage",
    "empty_field",
    "unknown_movie",
    "random_movie_id",
    "stray_char",
    "bad_rating",
    "bad_timestamp",
    "future_timestamp",
    "extra_field",
)
# Clean lines delivered twice (the copy must be dropped) or late (must be kept).
DUPLICATE = "duplicate"
OUT_OF_ORDER = "out_of_order"
FAULT_KINDS = (*REPLACING, DUPLICATE, OUT_OF_ORDER)
# A future timestamp lies this far past the line's true time: decades, as a clock or unit
# bug writes. A line is judged by when it arrived, and a simulated log may be read years
# after its simulated dates, so a lead of days could not be told from an honest line.
YEAR_SECONDS = 365 * 86_400
FUTURE_MIN_SECONDS = 30 * YEAR_SECONDS
FUTURE_MAX_SECONDS = 100 * YEAR_SECONDS

WATCH, RATE, RECOMMENDATION = 0, 1, 2
EVENT_KINDS = ("watch", "rate", "recommendation")

_INVALID_BYTES = bytes(
    [
        *range(0x80, 0xC2),
        *range(0xF5, 0x100),
        *range(0x00, 0x09),
        0x0B,
        0x0C,
        *range(0x0E, 0x20),
        0x7F,
    ]
)
_STRAY = string.ascii_uppercase + " "


class FaultConfig(SettingsGroup):
    """Share of all lines made dirty, per kind of dirt."""

    shares: Mapping[str, float] = Field(
        default_factory=dict, description="share of all lines per kind of dirt"
    )

    @field_validator("shares")
    @classmethod
    def _known_kinds(cls, shares: Mapping[str, float]) -> Mapping[str, float]:
        for kind, share in shares.items():
            check_fault(kind, share)
        return shares

    @model_validator(mode="after")
    def _at_most_every_line(self) -> FaultConfig:
        if self.total > 1.0:
            raise ValueError(f"fault shares add up to {self.total:.3f}, more than every line")
        return self

    @classmethod
    def build(cls, total: float = 0.0, overrides: Mapping[str, float] | None = None) -> FaultConfig:
        """total spread evenly over every kind, then per-kind overrides."""
        if not 0.0 <= total <= 1.0:
            raise ValueError(f"--faults must be within 0..1, got {total}")
        shares = dict.fromkeys(FAULT_KINDS, total / len(FAULT_KINDS))
        shares.update(overrides or {})
        return cls(shares={k: v for k, v in shares.items() if v > 0})

    @property
    def total(self) -> float:
        return float(sum(self.shares.values()))


def check_fault(kind: str, share: float) -> None:
    """ValueError unless kind is a kind of dirt and share a share of lines."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"fault share for {kind} must be within 0..1, got {share}")


@dataclass(slots=True)
class LineFacts:
    """What a dirtied line was about, so dirt can be made of the right shape."""

    kind: int
    time: int  # unix seconds
    user: int  # user id
    movie_id: str  # "" for recommendation lines
    line: str


class FaultMaker:
    def __init__(
        self,
        config: FaultConfig,
        movies: Mapping[str, int],
        movie_ids: list[str],
        rng: np.random.Generator,
        rating_scale: int = 5,
    ) -> None:
        self.config = config
        self.movies = movies
        self.movie_ids = movie_ids
        self.rng = rng
        self._seed = int(rng.integers(2**40))
        self._draw = random.Random()
        self.rating_scale = rating_scale
        self.kinds = [k for k in FAULT_KINDS if config.shares.get(k, 0) > 0]
        self._cumulative = np.cumsum([config.shares[k] for k in self.kinds])

    def plan(self, count: int) -> np.ndarray:
        """Fault code per line: -1 for a clean line, else an index into FAULT_KINDS."""
        if not self.kinds:
            return np.full(count, -1, dtype=np.int16)
        draws = self.rng.random(count)
        slot = np.searchsorted(self._cumulative, draws, side="right")
        codes = np.array([FAULT_KINDS.index(k) for k in self.kinds] + [-1], dtype=np.int16)
        return codes[slot]

    def corrupt(self, kind: str, facts: LineFacts, key: int) -> tuple[str, bytes]:
        """A dirty line standing in for facts.line, and the kind of dirt actually made.

        key (the line's place in the stream) seeds the draws, so each dirty line depends on
        its own line only: a recommendation line whose latency differs between two runs
        does not change the dirt of any other line."""
        self._draw.seed(self._seed * 1_000_003 + key)
        make = getattr(self, f"_{kind}")
        for _ in range(20):
            dirty: bytes = make(facts)
            if self._is_dirt(kind, dirty):
                return kind, dirty
        return "garbage", self._garbage(facts)  # always dirt: invalid UTF-8

    def _is_dirt(self, kind: str, line: bytes) -> bool:
        if kind == "unknown_movie":
            # A well-formed line only the catalogue can reject.
            return spec.is_valid_line(line, None, self.rating_scale) and not spec.is_valid_line(
                line, self.movies, self.rating_scale
            )
        if kind == "future_timestamp":
            return spec.is_valid_line(line, self.movies, self.rating_scale)
        return not spec.is_valid_line(line, None, self.rating_scale)

    # ---- one maker per kind of dirt -------------------------------------------------------
    def _int(self, low: int, high: int) -> int:
        return self._draw.randrange(low, high)

    def _truncated(self, f: LineFacts) -> bytes:
        raw = f.line.encode()
        return raw[: self._int(max(1, len(raw) // 5), len(raw) - 1)]

    def _garbage(self, f: LineFacts) -> bytes:
        raw = bytearray(f.line.encode())
        for _ in range(self._int(1, 4)):
            pos = self._int(0, len(raw) + 1)
            raw[pos:pos] = bytes([_INVALID_BYTES[self._int(0, len(_INVALID_BYTES))]])
        # A lone continuation byte guarantees the line is not UTF-8 at all.
        if self._draw.random() < 0.5:
            pos = self._int(0, len(raw) + 1)
            raw[pos:pos] = b"\xff"
        return bytes(raw)

    def _empty_field(self, f: LineFacts) -> bytes:
        match = _match(f.line)
        names = [
            n
            for n in ("time", "user", "movie", "minute", "rating", "service", "status", "latency")
            if match.groupdict().get(n) is not None
        ]
        name = names[self._int(0, len(names))]
        start, end = match.span(name)
        return (f.line[:start] + f.line[end:]).encode()

    def _mutated_id(self) -> str:
        base = self.movie_ids[self._int(0, len(self.movie_ids))]
        chars = list(base)
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        if not letters:
            return base + "x"
        i = letters[self._int(0, len(letters))]
        match self._int(0, 4):
            case 0:  # doubled letter
                chars.insert(i, chars[i])
            case 1:  # dropped letter
                del chars[i]
            case 2:  # swapped neighbours
                j = min(i + 1, len(chars) - 1)
                chars[i], chars[j] = chars[j], chars[i]
            case _:  # wrong letter
                chars[i] = string.ascii_lowercase[self._int(0, 26)]
        return "".join(chars)

    def _with_movie(self, f: LineFacts, movie_id: str) -> bytes:
        time_text, user, _ = f.line.split(",", 2)
        if f.kind == RATE:
            stars = f.line.rsplit("=", 1)[1]
            return f"{time_text},{user},GET /rate/{movie_id}={stars}".encode()
        minute = f.line.rsplit("/", 1)[1][:-4] if f.kind == WATCH else str(self._int(0, 120))
        return f"{time_text},{user},GET /data/m/{movie_id}/{minute}.mpg".encode()

    def _unknown_movie(self, f: LineFacts) -> bytes:
        for _ in range(50):
            candidate = self._mutated_id()
            if is_movie_id(candidate) and candidate not in self.movies:
                return self._with_movie(f, candidate)
        return self._with_movie(f, "unknown+movie+" + str(self._int(1900, 2030)))

    def _random_movie_id(self, f: LineFacts) -> bytes:
        alphabet = string.ascii_letters + string.digits
        text = "".join(alphabet[self._int(0, len(alphabet))] for _ in range(self._int(10, 17)))
        pos = self._int(0, len(text))
        text = text[:pos] + string.ascii_uppercase[self._int(0, 26)] + text[pos + 1 :]
        return self._with_movie(f, text)

    def _stray_char(self, f: LineFacts) -> bytes:
        match = _match(f.line)
        # The real site's stray characters: in fixed words, numbers and dates; a space in a
        # movie id. Never inside a result list or an error text, which allow anything.
        spans = [match.span(n) for n in ("result", "service") if match.groupdict().get(n)]
        movie = match.span("movie") if match.groupdict().get("movie") else (-1, -1)
        while True:
            pos = self._int(0, len(f.line) + 1)
            if not any(s < pos < e for s, e in spans):
                break
        inside_movie = movie[0] < pos < movie[1]
        char = " " if inside_movie else _STRAY[self._int(0, len(_STRAY))]
        if not inside_movie and self._draw.random() < 0.2:
            char = string.digits[self._int(0, 10)]
        return (f.line[:pos] + char + f.line[pos:]).encode()

    def _bad_rating(self, f: LineFacts) -> bytes:
        time_text, user, _ = f.line.split(",", 2)
        movie = f.movie_id or self.movie_ids[self._int(0, len(self.movie_ids))]
        choices = [0, -1, self.rating_scale + 1, self.rating_scale + 2, 10 * self.rating_scale, 99]
        stars = choices[self._int(0, len(choices))]
        return f"{time_text},{user},GET /rate/{movie}={stars}".encode()

    def _bad_timestamp(self, f: LineFacts) -> bytes:
        time_text, rest = f.line.split(",", 1)
        t = time_text
        variants = [
            t[:5] + "13" + t[7:],  # month 13
            t[:8] + "32" + t[10:],  # day 32
            t[:11] + "25" + t[13:],  # hour 25
            t[:14] + "61" + t[16:],  # minute 61
            t.replace("T", " ", 1),
            t.replace("-", "/"),
            t.replace("0", "O", 1),
            str(f.time),  # epoch seconds
            "2" + t,  # five-digit year
            t.split("T")[0],  # date only
            t + ".1234567890",  # ten fraction digits
            t.split(".")[0] + "+02:00",  # a zone the site never writes
        ]
        return f"{variants[self._int(0, len(variants))]},{rest}".encode()

    def _future_timestamp(self, f: LineFacts) -> bytes:
        _, rest = f.line.split(",", 1)
        future = f.time + self._int(FUTURE_MIN_SECONDS, FUTURE_MAX_SECONDS)
        if f.kind == RECOMMENDATION:
            text = format_with_fraction(future, self._int(1, 10**9), 3)
        else:
            text = format_seconds(np.array([future], dtype=np.int64))[0]
        return f"{text},{rest}".encode()

    def _extra_field(self, f: LineFacts) -> bytes:
        extras = ["extra", "1", "region=eu", "HTTP/1.1", "cdn", " "]
        extra = extras[self._int(0, len(extras))]
        if f.kind == RECOMMENDATION:
            where = self._int(0, 2)
            if where == 0:
                return f"{f.line}, cache: {extra}".encode()
            return f.line.replace(", result: ", f", shard: {extra}, result: ", 1).encode()
        if self._int(0, 2) == 0:
            return f"{f.line},{extra}".encode()
        time_text, user, rest = f.line.split(",", 2)
        return f"{time_text},{user},{extra},{rest}".encode()


def _match(line: str) -> re.Match[str]:
    for pattern in (spec.WATCH, spec.RATE, spec.RECOMMENDATION):
        match = pattern.fullmatch(line)
        if match is not None:
            return match
    raise ValueError(f"not a clean line: {line!r}")
