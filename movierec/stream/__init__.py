"""Event stream backends behind one interface, chosen by URL.

    file://PATH                 the embedded local log (PATH relative to the working
                                directory, or absolute as in file:///tmp/log)
    kafka://HOST:PORT/TOPIC     an Apache Kafka topic (several brokers: h1:9092,h2:9092)

`open_sink` and `open_source` return objects implementing `Sink` and `Source` from
`movierec.stream.base`. The Kafka backend is imported only when used, so the local log
works without confluent-kafka.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from movierec.stream.base import Batch, Position, Sink, Source, StreamUnavailableError
from movierec.stream.locallog import LocalLogSink, LocalLogSource

__all__ = [
    "Batch",
    "Position",
    "Sink",
    "Source",
    "StreamUnavailableError",
    "StreamUrl",
    "open_sink",
    "open_source",
    "parse_stream_url",
]

# Kafka's own rule for topic names.
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_HOSTPORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})")


@dataclass(frozen=True, slots=True)
class StreamUrl:
    """A parsed stream URL: a local log path, or Kafka bootstrap servers and a topic."""

    scheme: Literal["file", "kafka"]
    path: Path | None = None
    bootstrap: str | None = None
    topic: str | None = None

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.path}"
        return f"kafka://{self.bootstrap}/{self.topic}"


def parse_stream_url(url: str) -> StreamUrl:
    """Parse a stream URL; ValueError with the accepted forms for anything else.

    Deliberately not urllib.parse: in `file://OUT/log` the `OUT` is a directory, not a host,
    and the path is taken literally (no percent-decoding), so any file name round-trips.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()  # schemes are case-insensitive (RFC 3986); paths and topics are not
    if sep and scheme == "file":
        if not rest:
            raise ValueError(f"stream URL {url!r} has no path; expected file://PATH")
        return StreamUrl("file", path=Path(rest).expanduser())
    if sep and scheme == "kafka":
        servers, slash, topic = rest.partition("/")
        hosts = servers.split(",")
        if not slash or not all(_HOSTPORT.fullmatch(h) for h in hosts):
            raise ValueError(f"stream URL {url!r}: expected kafka://HOST:PORT[,HOST:PORT]/TOPIC")
        if not _TOPIC.fullmatch(topic) or topic in (".", ".."):
            raise ValueError(f"stream URL {url!r}: topic {topic!r} must be 1-249 of [A-Za-z0-9._-]")
        for host in hosts:
            if not 0 < int(host.rsplit(":", 1)[1]) < 65536:
                raise ValueError(f"stream URL {url!r}: port out of range in {host!r}")
        return StreamUrl("kafka", bootstrap=servers, topic=topic)
    raise ValueError(
        f"unsupported stream URL {url!r}: expected file://PATH or kafka://HOST:PORT/TOPIC"
    )


def open_sink(url: str | StreamUrl, **options: Any) -> Sink:
    """A sink for url. Options go to the backend: LocalLogSink(fsync=) or
    KafkaSink(partitions=, replication_factor=, config={librdkafka overrides})."""
    parsed = url if isinstance(url, StreamUrl) else parse_stream_url(url)
    if parsed.scheme == "file":
        assert parsed.path is not None
        return LocalLogSink(parsed.path, **options)
    # Imported here so the local log works where confluent-kafka is not installed.
    from movierec.stream.kafka import KafkaSink

    assert parsed.bootstrap is not None and parsed.topic is not None
    return KafkaSink(parsed.bootstrap, parsed.topic, **options)


def open_source(url: str | StreamUrl, *, group: str = "movierec-ingest", **options: Any) -> Source:
    """A source for url, positioned at the start (call seek() to resume). group is the Kafka
    consumer group offsets are committed to; the local log has none and ignores it.
    Other options: LocalLogSource(chunk_size=) or KafkaSource(config={librdkafka overrides})."""
    parsed = url if isinstance(url, StreamUrl) else parse_stream_url(url)
    if parsed.scheme == "file":
        assert parsed.path is not None
        return LocalLogSource(parsed.path, **options)
    from movierec.stream.kafka import KafkaSource

    assert parsed.bootstrap is not None and parsed.topic is not None
    return KafkaSource(parsed.bootstrap, parsed.topic, group=group, **options)
