"""Stream URLs: which backend, where, and a clear error for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from movierec.stream import StreamUrl, open_sink, open_source, parse_stream_url
from movierec.stream.locallog import LocalLogSink, LocalLogSource


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file://OUT/log", Path("OUT/log")),  # relative: OUT is a directory, not a host
        ("file://log", Path("log")),
        ("FILE://Log", Path("Log")),
        ("file:///tmp/movielog1", Path("/tmp/movielog1")),
        ("file://./a/b c", Path("a/b c")),
        ("file://runs/%41", Path("runs/%41")),  # taken literally, no percent-decoding
    ],
)
def test_file_urls(url: str, path: Path) -> None:
    parsed = parse_stream_url(url)
    assert parsed == StreamUrl("file", path=path)
    assert parse_stream_url(str(parsed)) == parsed
    assert str(parsed) == f"file://{path}"


@pytest.mark.parametrize(
    ("url", "bootstrap", "topic"),
    [
        ("kafka://127.0.0.1:19092/movielog7", "127.0.0.1:19092", "movielog7"),
        ("kafka://broker.example.edu:9092/movie-log_1.x", "broker.example.edu:9092", None),
        ("kafka://h1:9092,h2:9093/t", "h1:9092,h2:9093", "t"),
        ("kafka://[::1]:9092/t", "[::1]:9092", "t"),
    ],
)
def test_kafka_urls(url: str, bootstrap: str, topic: str | None) -> None:
    parsed = parse_stream_url(url)
    assert parsed.scheme == "kafka"
    assert parsed.bootstrap == bootstrap
    assert parsed.topic == (topic or url.rsplit("/", 1)[1])
    assert parsed.path is None
    assert str(parsed) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "OUT/log",
        "file:",
        "file://",
        "http://host:80/topic",
        "FILES://log",
        "kafka://host/topic",  # no port
        "kafka://host:9092",  # no topic
        "kafka://host:9092/",
        "kafka://host:9092/bad topic",
        "kafka://host:9092/a/b",
        "kafka://host:9092/..",
        "kafka://host:0/t",
        "kafka://host:70000/t",
        "kafka://:9092/t",
        "kafka://h1:9092,/t",
        "kafka://host:9092/" + "t" * 250,
    ],
)
def test_anything_else_is_a_clear_value_error(url: str) -> None:
    with pytest.raises(ValueError, match=r"stream URL"):
        parse_stream_url(url)
    with pytest.raises(ValueError, match=r"stream URL"):
        open_sink(url)
    with pytest.raises(ValueError, match=r"stream URL"):
        open_source(url)


def test_file_urls_open_the_local_log(tmp_path: Path) -> None:
    sink = open_sink(f"file://{tmp_path}/x/log")
    source = open_source(StreamUrl("file", path=tmp_path / "x" / "log"), group="ignored")
    assert isinstance(sink, LocalLogSink)
    assert isinstance(source, LocalLogSource)
    sink.write([b"hello"])
    assert source.read(1, timeout=0).values == [b"hello"]
    sink.close()
    source.close()
