"""What only the local log does: lines on disk, partial lines, byte positions, file:// paths."""

from __future__ import annotations

import os
from contextlib import closing
from itertools import accumulate
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.stream import open_sink, open_source
from movierec.stream.locallog import LocalLogSink, LocalLogSource

LINE = b"2025-10-17T01:39:12,220358,GET /rate/padre+nuestro+2007=4"


def test_file_is_plain_text_one_message_per_line(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "log"  # parents are created
    with LocalLogSink(path) as sink:
        sink.write([b"a", b"", b"c,d"])
        sink.write([])
        sink.write([LINE])
    assert path.read_bytes() == b"a\n\nc,d\n" + LINE + b"\n"


@pytest.mark.parametrize("bad", [b"two\nlines", b"carriage\rreturn", b"trailing\n", b"\r"])
def test_line_breaks_in_a_message_are_refused_and_nothing_is_written(
    tmp_path: Path, bad: bytes
) -> None:
    path = tmp_path / "log"
    with LocalLogSink(path) as sink:
        sink.write([b"ok"])
        with pytest.raises(ValueError, match="message 1 contains a line break"):
            sink.write([b"fine", bad, b"also fine"])
    assert path.read_bytes() == b"ok\n"


def test_partial_trailing_line_waits_until_complete(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"one\ntw")
    source = LocalLogSource(path)
    assert source.read(10, timeout=0).values == [b"one"]
    assert source.at_end()  # a half-written line is not a message yet
    assert source.read(10, timeout=0.05).values == []
    with path.open("ab") as f:
        f.write(b"o\nthr")
    assert not source.at_end()
    batch = source.read(10, timeout=0)
    assert batch.values == [b"two"]
    assert batch.end == len(b"one\ntwo\n")


def test_missing_file_reads_as_empty_until_created(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet"
    source = LocalLogSource(path)
    assert source.at_end()
    assert source.read(5, timeout=0.05).values == []
    LocalLogSink(path).write([b"x"])
    assert not source.at_end()
    assert source.read(5, timeout=0).values == [b"x"]


def test_positions_are_byte_offsets_and_origins_name_them(tmp_path: Path) -> None:
    path = tmp_path / "movielog"
    LocalLogSink(path).write([b"ab", b"", b"cde"])
    batch = LocalLogSource(path).read(10, timeout=0)
    assert batch.end == 8 == path.stat().st_size
    assert [batch.origin(i) for i in range(3)] == ["movielog@0", "movielog@3", "movielog@4"]


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=80),
    chunk=st.integers(1, 9),
    chunk_size=st.sampled_from([4096, 1 << 20]),
)
def test_small_reads_track_exact_offsets(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], chunk: int, chunk_size: int
) -> None:
    path = tmp_path_factory.mktemp("log") / "log"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    offsets = list(accumulate((len(line) + 1 for line in lines), initial=0))
    source = LocalLogSource(path, chunk_size=chunk_size)
    got: list[bytes] = []
    while len(got) < len(lines):
        batch = source.read(chunk, timeout=0)
        assert batch.origin(0) == f"log@{offsets[len(got)]}"
        got += batch.values
        assert batch.end == offsets[len(got)]
    assert got == lines
    assert source.at_end()


def test_line_longer_than_the_read_chunk(tmp_path: Path) -> None:
    path = tmp_path / "log"
    long = b"x" * 50_000
    LocalLogSink(path).write([b"a", long, b"b"])
    source = LocalLogSource(path, chunk_size=4096)
    got: list[bytes] = []
    while not source.at_end():
        got += source.read(100, timeout=0).values
    assert got == [b"a", long, b"b"]


def test_at_end_sees_lines_longer_than_a_chunk(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"y" * 10_000)  # still being written, and longer than a chunk
    source = LocalLogSource(path, chunk_size=4096)
    assert source.at_end()
    with path.open("ab") as f:
        f.write(b"\n")
    assert not source.at_end()
    assert source.read(5, timeout=0).values == [b"y" * 10_000]
    assert source.at_end()


@pytest.mark.parametrize("position", [1, 3, 100])
def test_seek_refuses_positions_that_are_not_line_starts(tmp_path: Path, position: int) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"abc\nde\n")
    with pytest.raises(ValueError, match="not a line boundary"):
        LocalLogSource(path).seek(position)
    with pytest.raises(ValueError, match="not a line boundary"):
        LocalLogSource(tmp_path / "missing").seek(position)


def test_seek_to_line_starts_and_the_end(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"abc\nde\n")
    source = LocalLogSource(path)
    for position, rest in [(0, [b"abc", b"de"]), (4, [b"de"]), (7, []), (None, [b"abc", b"de"])]:
        source.seek(position)
        assert source.read(10, timeout=0).values == rest


def test_two_sinks_append_whole_batches(tmp_path: Path) -> None:
    path = tmp_path / "log"
    first, second = LocalLogSink(path), LocalLogSink(path)
    first.write([b"1a", b"1b"])
    second.write([b"2a", b"2b"])
    first.write([b"1c"])
    assert path.read_bytes().split(b"\n") == [b"1a", b"1b", b"2a", b"2b", b"1c", b""]


def test_relative_file_urls_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with closing(open_sink("file://OUT/log")) as sink:  # OUT is a directory here, not a host
        sink.write([LINE])
    assert (tmp_path / "OUT" / "log").read_bytes() == LINE + b"\n"
    with closing(open_source(f"file://{tmp_path}/OUT/log")) as source:
        assert source.read(5, timeout=0).values == [LINE]


def test_closed_sink_refuses_writes_and_close_is_idempotent(tmp_path: Path) -> None:
    sink = LocalLogSink(tmp_path / "log", fsync=True)
    sink.write([b"a"])
    sink.flush()
    sink.close()
    sink.close()
    with pytest.raises(ValueError, match="closed"):
        sink.write([b"b"])
    assert os.path.getsize(tmp_path / "log") == 2
