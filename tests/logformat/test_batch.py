"""The fast batch parser agrees with the reference `reference.parse_line` on every input."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.logformat import batch as batch_parser
from movierec.logformat import batch_kernel
from movierec.logformat.batch import ParsedBatch, line_hash, parse_batch
from movierec.logformat.reference import _OTHER, REASON_CODE, Kind, Reject, parse_line
from movierec.logformat.xxhash import xxh64_span

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
RUN = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])

SPEC_LINES = [
    b"2025-10-17T01:38:54,220358,GET /data/m/padre+nuestro+2007/90.mpg",
    b"2025-10-17T01:39:12,220358,GET /rate/padre+nuestro+2007=4",
    b"2022-02-08T12:02:38.164729,141977,recommendation request team04.example.edu:8082, "
    b"status 200, result: mona+lisa+1986, interstellar+2014, our+paradise+2011, 89 ms",
    b"2021-03-01T10:11:12.5,284507,recommendation request team17.example.edu:8082, status 0, "
    b"result: java.util.concurrent.TimeoutException: Request timeout to "
    b"team17.example.edu/10.0.0.5:8082 after 800 ms, 815 ms",
    b"2020-11-02T09:00:01.000123,1201,recommendation request team01.example.edu:8082, "
    b"status 0, result: Connection refused: team01.example.edu/10.0.0.1:8082, 1369 ms",
    b"2022-11-14T12:24,5,GET /data/m/the+rock+1996/0.mpg",
    b"2025-10-17T01:33:45.122692921,7,GET /create_account",
    b"2022-11-14T1O2:23:16,5,GET /data/m/the+rock+1996/1.mpg",
    b"2022-11-14T12:23:16,5,GZET /data/m/the+rock+1996/1.mpg",
    b"2022-11-14T12:23:16,5,GET /data/5m/the+rock+1996/1.mpg",
    b"2022-11-14T12:23:16,5,GET /data/m/the+rock+1996/30.Hmpg",
    b"2022-11-14T12:23:16,5,GET /data/m/the+rock +1996/1.mpg",
    b"2022-11-14T12:23:16,5,GET /data/m/aDdjc1gioFamIk7/1.mpg",
    b"",
]


def assert_agrees(lines: Sequence[bytes], scale: int = 5, hashes: bool = True) -> ParsedBatch:
    """Compare every row of parse_batch with parse_line; return the batch."""
    batch = parse_batch(lines, scale)
    assert len(batch) == len(lines)
    assert len(set(batch.movies)) == len(batch.movies)
    arrays = (batch.kind, batch.reason, batch.time_ns, batch.user, batch.value)
    arrays += (batch.latency_ms, batch.movie, batch.line_hash)
    kind, reason, time_ns, user, value, latency, movie, hashed = (a.tolist() for a in arrays)
    for row, raw in enumerate(lines):
        expected = parse_line(raw, scale)
        got = (kind[row], reason[row], time_ns[row], user[row], value[row], latency[row])
        if isinstance(expected, Reject):
            assert got == (-1, REASON_CODE[expected.reason], 0, 0, 0, 0), (raw, expected)
            assert movie[row] == -1 and row not in batch.extra
        else:
            clamped = min(max(expected.time_ns, INT64_MIN), INT64_MAX)
            want = (int(expected.kind), -1, clamped, expected.user, expected.value)
            assert got == (*want, expected.latency_ms), (raw, expected)
            if expected.kind in (Kind.WATCH, Kind.RATE):
                assert batch.movies[movie[row]] == expected.movie, raw
            else:
                assert movie[row] == -1
            full = expected.kind in (Kind.RECOMMENDATION, Kind.OTHER)
            assert (row in batch.extra) == (full or clamped != expected.time_ns), raw
            if row in batch.extra:
                assert batch.extra[row] == expected, raw
        if hashes:
            assert hashed[row] == line_hash(raw)
    return batch


def test_spec_examples_and_named_dirt() -> None:
    batch = assert_agrees(SPEC_LINES)
    assert batch.kind.tolist()[:7] == [0, 1, 2, 2, 2, 0, 3]
    assert batch.extra[2].items == ("mona+lisa+1986", "interstellar+2014", "our+paradise+2011")


def test_empty_batch_and_other_sequences() -> None:
    batch = parse_batch([])
    assert len(batch) == 0 and batch.movies == [] and batch.extra == {}
    assert_agrees(tuple(SPEC_LINES))
    assert parse_batch(iter(SPEC_LINES)).kind.tolist() == parse_batch(SPEC_LINES).kind.tolist()


def test_other_kinds_are_those_of_the_reference() -> None:
    assert set(_OTHER) == {batch_kernel._CREATE.tobytes().decode()}


class ListSink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, values: Sequence[bytes]) -> None:
        self.lines.extend(values)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def simulated_log(events: int, faults: float, scale: int = 5, seed: int = 7) -> list[bytes]:
    from movierec_sim.engine import SimConfig, Simulation
    from movierec_sim.faults import FaultConfig
    from movierec_sim.world import World, WorldConfig

    sink = ListSink()
    world = World(WorldConfig(users=2000, movies=500, seed=seed))
    config = SimConfig(
        seed=seed,
        events=events,
        faults=FaultConfig.build(faults),
        service="http://127.0.0.1:9",
        rating_scale=scale,
    )
    Simulation(world, config, sink).run()
    return sink.lines


def test_every_line_of_a_simulated_log() -> None:
    lines = simulated_log(100_000, 0.2)
    batch = assert_agrees(lines, hashes=False)
    sample = random.Random(1).sample(range(len(lines)), 2000)
    assert all(int(batch.line_hash[i]) == line_hash(lines[i]) for i in sample)
    reasons = {int(r) for r in batch.reason if r >= 0}
    assert len(reasons) >= 8  # the dirt really covers many reasons


def test_simulated_log_rated_one_to_ten() -> None:
    lines = simulated_log(20_000, 0.1, scale=10, seed=3)
    assert_agrees(lines, scale=10, hashes=False)
    assert_agrees(lines, scale=5, hashes=False)


def test_many_chunks_grow_the_movie_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_parser, "CHUNK_LINES", 37)
    rng = random.Random(5)
    lines = [
        f"2024-01-01T00:00:{i % 60:02d},{i + 1},GET /data/m/m{rng.randrange(3000)}+2001/1.mpg"
        for i in range(5000)
    ]
    lines[100] = "2024-01-01T00:00:00,1,GET /data/m/in\nside+/1.mpg"  # forces lengths
    batch = assert_agrees([line.encode() for line in lines], hashes=False)
    assert len(batch.movies) > 1000


# ---- generated lines --------------------------------------------------------------------
def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda v: f"{v:02d}")


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    # Mostly valid components, so that most lines reach the later fields.
    sane = draw(st.integers(0, 3)) > 0
    year = draw(st.integers(1990, 2030) if sane else st.integers(0, 9999))
    month = draw(_two(1, 12) if sane else _two(0, 13))
    day = draw(_two(1, 28) if sane else st.sampled_from(["29", "30", "31", "00", "32"]))
    if draw(st.integers(0, 5)) == 0:  # leap days and the 30th of February
        month, day = "02", draw(st.sampled_from(["28", "29", "30"]))
        year = draw(st.sampled_from([1900, 2000, 2023, 2024, 2100, 2400, 4, 0]))
    hour, minute = (_two(0, 23), _two(0, 59)) if sane else (_two(0, 24), _two(0, 60))
    text = f"{year:04d}-{month}-{day}T{draw(hour)}:{draw(minute)}"
    form = draw(st.integers(0, 3))
    if form >= 1:  # seconds (the writer drops zero seconds: form 0)
        text += ":" + draw(_two(0, 59) if sane else _two(0, 60))
    if form >= 2:
        digits = st.text("0123456789", min_size=1, max_size=9 if sane else 10)
        text += "." + draw(digits if form == 2 or sane else st.just(""))
    return text


@st.composite
def mostly(draw: st.DrawFn, valid: st.SearchStrategy[str], *odd: str) -> str:
    """valid about four times in five, else one of the odd values."""
    return draw(valid if draw(st.integers(0, 4)) < 4 else st.sampled_from(odd))


USERS = mostly(
    st.one_of(st.integers(1, 10**6).map(str), st.integers(1, 2**31 - 1).map(str)),
    *("1", "2147483647", "2147483648", "4294967296", "9999999999", "-1", "+1"),
    *("99999999999", "0", "00", "01", "007", "", " 1", "1e3", "\u0661"),
)
MOVIES = mostly(
    st.one_of(
        st.from_regex(r"[a-z0-9+_.*\-]{0,12}\+([0-9]{4})?", fullmatch=True),
        st.sampled_from(["padre+nuestro+2007", "m*a*s*h+1970", "+", "+2000", "x" * 249 + "+"]),
    ),
    *("Abc+2000", "a b+2000", "a/b+2000", "abc", "a+200", "a+2000x", "a=b+", "abc+20000"),
    *("x" * 250 + "+", "a,b+", ""),
)
ODD_NUMBERS = ("00", "007", "-0", "-1", "0", "1000", "100000", "", "1.5", " 1", "\u0663")
MINUTES = mostly(st.integers(0, 99_999).map(str), *ODD_NUMBERS)
STARS = mostly(st.integers(1, 11).map(str), *ODD_NUMBERS, "11", "99", "005")
LATENCIES = mostly(st.integers(0, 10**9 - 1).map(str), *ODD_NUMBERS, "1000000000")
SERVICES = mostly(
    st.from_regex(r"[A-Za-z0-9._\-]{1,20}:[0-9]{1,5}", fullmatch=True),
    *("a:123456", ":80", "a b:80", "a:b", "host:80:81", "h\u00f6st:80", "a,b:80", "a:"),
)
STATUSES = mostly(
    st.sampled_from(["200", "0", "500", "404", "599", "100"]),
    *("099", "600", "2000", "", "20O", "00", " 200", "200 ", "2,0"),
)
SEPARATORS = st.sampled_from([", ", ",", " , ", ",  ", ",\u00a0", ",\u3000", ",\u2028"])


@st.composite
def results(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        items = draw(st.lists(MOVIES, max_size=5))
        return draw(SEPARATORS).join(items)
    return draw(st.text(max_size=40)) + draw(st.sampled_from(["", " ms", ", 5 ms", ", "]))


@st.composite
def lines(draw: st.DrawFn) -> str:
    head = f"{draw(timestamps())},{draw(USERS)},"
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return f"{head}GET /data/m/{draw(MOVIES)}/{draw(MINUTES)}.mpg"
    if kind == 1:
        return f"{head}GET /rate/{draw(MOVIES)}={draw(STARS)}"
    if kind == 2:
        body = f"{draw(SERVICES)}, status {draw(STATUSES)}, result: {draw(results())}"
        return f"{head}recommendation request {body}, {draw(LATENCIES)} ms"
    return head + draw(st.sampled_from(["GET /create_account", "GET /create_account ", "GET"]))


INSERTS = st.one_of(
    st.binary(min_size=1, max_size=3),
    st.sampled_from(["\u00e9", "\u00a0", "\u0085", "\u2028", "\u3000", "\ufeff", "\U0001f600"]).map(
        str.encode
    ),
    st.sampled_from([b"\n", b"\r", b"\x00", b"\t", b"\x7f", b",", b" ", b"/", b"=", b"."]),
    st.sampled_from([b"\xc2\x80", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2"]),
)


def mutate(raw: bytes, op: int, where: int, data: bytes) -> bytes:
    at = where % (len(raw) + 1)
    fields = raw.split(b",")
    i, j = where % len(fields), (where // 7) % len(fields)
    match op:
        case 0:
            return raw[:at] + data + raw[at:]
        case 1:
            return raw[:at] + raw[at + len(data) :]
        case 2:
            return raw[:at] + data + raw[at + len(data) :]
        case 3:
            return raw[:at]
        case 4:
            return b",".join([*fields[: i + 1], fields[i], *fields[i + 1 :]])
        case 5:
            fields[i], fields[j] = fields[j], fields[i]
            return b",".join(fields)
        case _:
            return raw[:at] + data * (16_384 // len(data) + 1) + raw[at:]


MUTATIONS = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 10**6), INSERTS), max_size=3)


@RUN
@given(st.lists(st.binary(max_size=120), max_size=30))
def test_arbitrary_bytes(values: list[bytes]) -> None:
    assert_agrees(values)


@RUN
@given(st.lists(st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_arbitrary_text(values: list[bytes]) -> None:
    assert_agrees(values)


@RUN
@given(st.lists(lines(), min_size=1, max_size=20), st.sampled_from([5, 10]))
def test_generated_lines(texts: list[str], scale: int) -> None:
    assert_agrees([t.encode() for t in texts], scale)


@RUN
@given(st.lists(st.tuples(lines(), MUTATIONS), min_size=1, max_size=12))
def test_mutated_lines(cases: list[tuple[str, list[tuple[int, int, bytes]]]]) -> None:
    values = []
    for text, ops in cases:
        raw = text.encode()
        for op, where, data in ops:
            raw = mutate(raw, op, where, data)
        values.append(raw)
    assert_agrees(values)


UTF8_EDGES = [
    *(b"\xc2\x80", b"\xc2\x9f", b"\xc2\xa0", b"\xc1\xbf", b"\x80", b"\xe2\x82", b"\xf0\x9f"),
    *(b"\xe0\x9f\xbf", b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xed\xa0\x80", b"\xef\xbb\xbf"),
    *(b"\xf0\x8f\xbf\xbf", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80"),
    *(b"\xf5\x80\x80\x80", b"\xff", b"\xe2\x80\xa8", b"\xe3\x80\x80", b"\xc2\x85"),
]


@pytest.mark.parametrize("seq", UTF8_EDGES)
def test_utf8_edges_anywhere(seq: bytes) -> None:
    head = b"2024-02-29T12:00:00.5,42,recommendation request a:1, status 200, result: a+, b+"
    lines = [b"2024-02-29T12:00:00,42,GET /data/m/a+2000/7.mpg", head + b", 5 ms"]
    assert_agrees([line[:i] + seq + line[i:] for line in lines for i in range(len(line) + 1)])


@pytest.mark.parametrize("size", [16_383, 16_384, 16_385, 70_000])
def test_long_lines(size: int) -> None:
    head = b"2024-01-01T00:00:00,1,recommendation request a:1, status 0, result: "
    assert_agrees([head + b"x" * (size - len(head) - 6) + b", 1 ms", b"\xff" * size])


@pytest.mark.parametrize(
    "time",
    [
        "0000-01-01T00:00",
        "0001-01-01T00:00:00",
        "1677-09-21T00:12:43.145224191",
        "1677-09-21T00:12:43.145224192",
        "1677-09-21T00:12:44",
        "2262-04-11T23:47:16.854775807",
        "2262-04-11T23:47:16.854775808",
        "9999-12-31T23:59:59.999999999",
    ],
)
def test_times_beyond_int64_nanoseconds(time: str) -> None:
    assert_agrees([f"{time},1,GET /data/m/a+/1.mpg".encode(), f"{time},1,GET".encode()])


def test_rating_scales_of_any_size() -> None:
    values = [f"2024-01-01T00:00,1,GET /rate/a+={s}".encode() for s in ("1", "5", "999", "-1")]
    for scale in (-(10**30), -1, 0, 1, 5, 10, 998, 999, 10**30):
        assert_agrees(values, scale)


def test_line_hash_is_xxh64() -> None:
    # Published XXH64 (seed 0) vectors: the stored hashes must be recomputable elsewhere.
    assert line_hash(b"") == 0xEF46DB3751D8E999
    assert line_hash(b"abc") == 0x44BC2CF5AD770999
    assert line_hash(b"Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1
    assert line_hash(b"a" * 32) == 0x856E843298F99AD7


@RUN
@given(st.binary(max_size=300), st.integers(0, 7))
def test_line_hash_kernel_matches_python(raw: bytes, pad: int) -> None:
    buf = np.frombuffer(b"\x00" * pad + raw + b"\xff" * pad, dtype=np.uint8)
    assert int(xxh64_span(buf, pad, pad + len(raw))) == line_hash(raw)
    assert int(parse_batch([raw]).line_hash[0]) == line_hash(raw)


def test_line_hash_distinct_on_a_large_sample() -> None:
    rng = random.Random(11)
    lines = {
        f"2024-01-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d},"
        f"{rng.randrange(1, 10**6)},GET /data/m/movie+{rng.randrange(30000)}+2000/"
        f"{rng.randrange(120)}.mpg".encode()
        for _ in range(300_000)
    }
    hashes = parse_batch(list(lines)).line_hash
    assert len(np.unique(hashes)) == len(lines)
