"""One behavioural suite for every stream backend: what ingestion relies on, whatever the URL."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.stream import Batch, Sink, Source, open_sink, open_source

LINE = b"2025-10-17T01:38:54,220358,GET /data/m/padre+nuestro+2007/90.mpg"
# Any bytes but the local log's line breaks: invalid UTF-8, commas, NULs, empty messages.
MESSAGE = st.binary(max_size=120).map(lambda b: b.replace(b"\n", b"|").replace(b"\r", b"|"))
# The same stream serves all examples of a property: each example appends and checks its part.
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@dataclass
class Stream:
    """A fresh empty stream: one sink, and as many independent sources as a test wants."""

    url: str
    group: str
    closing: list[Sink | Source] = field(default_factory=list)
    _shared: tuple[Sink, Source] | None = None

    def sink(self) -> Sink:
        sink = open_sink(self.url)
        self.closing.append(sink)
        return sink

    def source(self) -> Source:
        source = open_source(self.url, group=self.group)
        self.closing.append(source)
        return source

    def shared(self) -> tuple[Sink, Source]:
        """One sink and source pair kept across the examples of a property test."""
        if self._shared is None:
            self._shared = (self.sink(), self.source())
        return self._shared


@pytest.fixture(params=["locallog", pytest.param("kafka", marks=pytest.mark.kafka)])
def stream(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stream]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        made = Stream(f"kafka://{bootstrap}/{name}", group=name)
    else:
        made = Stream(f"file://{tmp_path / 'log' / name}", group=name)
    yield made
    for item in reversed(made.closing):
        item.close()


def read_n(source: Source, n: int, chunk: int = 100_000, within: float = 30.0) -> Batch:
    """Exactly n messages (never asking for more), with the position after the last."""
    values: list[bytes] = []
    end = None
    deadline = time.monotonic() + within
    while len(values) < n and time.monotonic() < deadline:
        batch = source.read(min(chunk, n - len(values)), timeout=0.5)
        assert len(batch) <= min(chunk, n - len(values))
        values += batch.values
        end = batch.end if batch.values else end
    assert len(values) == n
    return Batch(values, end)


def drain(source: Source, within: float = 30.0) -> list[bytes]:
    """Everything the source has, read until at_end()."""
    values: list[bytes] = []
    deadline = time.monotonic() + within
    while not source.at_end():
        assert time.monotonic() < deadline, "source never reached its end"
        values += source.read(100_000, timeout=0.2).values
    return values


def write(sink: Sink, values: list[bytes]) -> None:
    sink.write(values)
    sink.flush()


def test_round_trip_in_order(stream: Stream) -> None:
    sink, source = stream.sink(), stream.source()
    batches = [[b"%d,%s" % (i, LINE) for i in range(k, k + 100)] for k in range(0, 500, 100)]
    for batch in batches:
        write(sink, batch)
    assert drain(source) == [v for batch in batches for v in batch]


def test_arbitrary_bytes_survive_exactly(stream: Stream) -> None:
    values = [b"", b"\xff\xfe\x00invalid utf-8", b",,,", "é,ü,🎬".encode(), b" lead", b"\t", LINE]
    sink, source = stream.sink(), stream.source()
    write(sink, values)
    batch = read_n(source, len(values))
    assert batch.values == values
    assert all(isinstance(v, bytes) for v in batch.values)


@PROPERTY
@given(values=st.lists(MESSAGE, max_size=40))
def test_property_every_write_reads_back_whole(stream: Stream, values: list[bytes]) -> None:
    # Examples share the stream: each one reads exactly its own messages after the earlier ones.
    sink, source = stream.shared()
    write(sink, values)
    assert read_n(source, len(values)).values == values
    assert source.at_end()


@PROPERTY
@given(values=st.lists(MESSAGE, min_size=1, max_size=60), data=st.data())
def test_property_resume_returns_exactly_the_rest(
    stream: Stream, values: list[bytes], data: st.DataObject
) -> None:
    sink, reader = stream.shared()
    drain(reader)  # skip what earlier examples left in the stream
    mark = reader.read(1, timeout=0).end
    write(sink, values)
    cut = data.draw(st.integers(0, len(values)), label="cut")
    chunk = data.draw(st.integers(1, 7), label="chunk")
    first = read_n(reader, cut, chunk=chunk) if cut else Batch([], mark)
    assert first.values == values[:cut]
    # Positions are stored as JSON beside the data they cover: they must survive that trip.
    position = json.loads(json.dumps(first.end))
    with closing(open_source(stream.url, group=stream.group)) as resumed:
        resumed.seek(position)
        assert read_n(resumed, len(values) - cut).values == values[cut:]
        assert resumed.at_end()


def test_at_end_follows_the_writer(stream: Stream) -> None:
    sink, source = stream.sink(), stream.source()
    assert source.at_end()
    write(sink, [LINE] * 10)
    assert not source.at_end()
    read_n(source, 4)
    assert not source.at_end()
    read_n(source, 6)
    assert source.at_end()
    write(sink, [b"more"])
    assert not source.at_end()
    assert read_n(source, 1).values == [b"more"]
    assert source.at_end()


def test_empty_source_reads_nothing_and_its_position_resumes(stream: Stream) -> None:
    source = stream.source()
    started = time.monotonic()
    batch = source.read(1000, timeout=0.3)
    assert batch.values == [] and len(batch) == 0
    assert time.monotonic() - started < 10
    position = json.loads(json.dumps(batch.end))
    write(stream.sink(), [b"a", b"b"])
    later = stream.source()
    later.seek(position)
    assert read_n(later, 2).values == [b"a", b"b"]


def test_reading_while_writing_loses_and_repeats_nothing(stream: Stream) -> None:
    sink, source = stream.sink(), stream.source()
    expected = [b"%d,%s" % (i, LINE) for i in range(20_000)]
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            for k in range(0, len(expected), 500):
                write(sink, expected[k : k + 500])
                time.sleep(0.001)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    got = read_n(source, len(expected), chunk=3000, within=60).values
    thread.join()
    assert not failures
    assert got == expected
    assert source.read(10, timeout=0.2).values == []


def test_large_batches_in_bounded_reads(stream: Stream) -> None:
    sink, source = stream.sink(), stream.source()
    values = [b"%07d,%s" % (i, LINE) for i in range(200_000)]
    write(sink, values)
    got: list[bytes] = []
    while len(got) < len(values):
        batch = source.read(30_000, timeout=5)
        assert 0 < len(batch) <= 30_000
        got += batch.values
    assert got == values
    assert source.at_end()


def test_seek_none_and_commit_keep_reading_correct(stream: Stream) -> None:
    sink, source = stream.sink(), stream.source()
    write(sink, [b"1", b"2", b"3"])
    first = read_n(source, 2)
    source.commit(first.end)
    assert read_n(source, 1).values == [b"3"]
    source.seek(None)
    assert read_n(source, 3).values == [b"1", b"2", b"3"]
    source.seek(first.end)
    assert read_n(source, 1).values == [b"3"]


def test_origins_name_where_each_message_came_from(stream: Stream) -> None:
    write(stream.sink(), [b"a", b"bb", b"ccc"])
    source = stream.source()
    origins: list[str] = []
    while len(origins) < 3:
        batch = source.read(3, timeout=5)
        assert batch.values
        origins += [batch.origin(i) for i in range(len(batch))]
    assert len(set(origins)) == 3
    assert all(isinstance(o, str) and "@" in o for o in origins)


def test_every_message_carries_when_it_arrived(stream: Stream) -> None:
    """Between its write and its read: a broker's timestamp, or the reader's clock for a
    file; never later than the read, whatever the producer's clock said."""
    before = time.time_ns() // 1_000_000 * 1_000_000  # Kafka stamps whole milliseconds
    write(stream.sink(), [b"a", b"bb", b"ccc"])
    source = stream.source()
    arrivals: list[int] = []
    while len(arrivals) < 3:
        batch = source.read(3, timeout=5)
        assert batch.values
        arrivals += batch.arrivals().tolist()
        read = time.time_ns()
        assert all(before <= a <= read for a in arrivals)
