"""What only the Kafka backend does: partitions, group commits, delivery errors, bad positions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from movierec.stream.kafka import KafkaDeliveryError, KafkaSink, KafkaSource, user_key


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    yield f"test-{uuid.uuid4().hex[:12]}"


def read_all(source: KafkaSource, within: float = 30.0) -> list[tuple[str, bytes]]:
    """(origin, value) of everything up to the end."""
    got: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + within
    while not source.at_end():
        assert time.monotonic() < deadline
        batch = source.read(1000, timeout=0.2)
        got += [(batch.origin(i), v) for i, v in enumerate(batch.values)]
    return got


@pytest.mark.kafka
def test_partitions_keep_their_order_and_resume_exactly(kafka_bootstrap: str, topic: str) -> None:
    values = [b"%05d" % i for i in range(6000)]
    with KafkaSink(
        kafka_bootstrap, topic, partitions=3, config={"sticky.partitioning.linger.ms": 0}
    ) as sink:
        for k in range(0, len(values), 100):  # small batches so all partitions get some
            sink.write(values[k : k + 100])
            sink.flush()
    with KafkaSource(kafka_bootstrap, topic, group=topic) as source:
        first = source.read(2500, timeout=10)
        rest = read_all(source)
        assert len(first) + len(rest) == len(values)
        everything = [(first.origin(i), v) for i, v in enumerate(first.values)] + rest
    assert sorted(v for _, v in everything) == values
    per_partition: dict[str, list[bytes]] = {}
    for origin, value in everything:
        per_partition.setdefault(origin.split("@")[0], []).append(value)
    assert len(per_partition) == 3
    assert all(vs == sorted(vs) for vs in per_partition.values())  # produced in order
    with KafkaSource(kafka_bootstrap, topic, group=topic) as resumed:
        resumed.seek(first.end)
        assert sorted(v for _, v in read_all(resumed)) == sorted(v for _, v in rest)


@pytest.mark.kafka
def test_commit_is_visible_to_the_group(kafka_bootstrap: str, topic: str) -> None:
    with KafkaSink(kafka_bootstrap, topic) as sink:
        sink.write([b"a", b"b", b"c"])
    with KafkaSource(kafka_bootstrap, topic, group=topic) as source:
        batch = source.read(2, timeout=10)
        assert batch.values == [b"a", b"b"] and batch.end == {"0": 2}
        source.commit(batch.end)
    viewer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": topic})
    try:
        committed = viewer.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        viewer.close()
    assert committed[0].offset == 2


@pytest.mark.kafka
def test_missing_topic_reads_empty_until_a_sink_creates_it(
    kafka_bootstrap: str, topic: str
) -> None:
    with KafkaSource(kafka_bootstrap, topic, group=topic) as source:
        assert source.read(10, timeout=0.3).values == []
        assert source.at_end()
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        assert topic not in admin.list_topics(timeout=10).topics  # reading created nothing
        with KafkaSink(kafka_bootstrap, topic, partitions=2) as sink:
            sink.write([b"first"])
        assert not source.at_end()
        assert source.read(10, timeout=10).values == [b"first"]


@pytest.mark.kafka
def test_position_past_the_end_is_refused(kafka_bootstrap: str, topic: str) -> None:
    with KafkaSink(kafka_bootstrap, topic) as sink:
        sink.write([b"only"])
    with KafkaSource(kafka_bootstrap, topic, group=topic) as source:
        source.seek({"0": 5})  # e.g. the topic was deleted and recreated since the checkpoint
        with pytest.raises(ValueError, match="past the end"):
            source.read(10, timeout=5)


@pytest.mark.kafka
def test_oversized_message_fails_loudly(kafka_bootstrap: str, topic: str) -> None:
    with KafkaSink(kafka_bootstrap, topic) as sink, pytest.raises(KafkaDeliveryError):
        sink.write([b"x" * (2 << 20)])


def test_undeliverable_messages_fail_loudly_on_flush() -> None:
    sink = KafkaSink(
        "127.0.0.1:9",  # nothing listens on the discard port
        "nowhere",
        create_topic=False,
        config={"message.timeout.ms": 500, "log_level": 0},
    )
    sink.write([b"lost"])
    with pytest.raises(KafkaDeliveryError, match="not delivered"):
        sink.flush()


def test_a_line_is_keyed_by_its_user_and_dirt_by_itself() -> None:
    assert user_key(b"2025-10-17T01:38:54,220358,GET /data/m/a+2000/9.mpg") == b"220358"
    assert user_key(b"2025-10-17T01:38:54,7,recommendation request x, status 200") == b"7"
    assert user_key(b"no commas at all") == b"no commas at all"
    assert user_key(b"one,comma") == b"one,comma"
