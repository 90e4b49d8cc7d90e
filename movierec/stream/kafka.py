"""The Apache Kafka backend: a tuned confluent-kafka producer and an explicitly assigned consumer.

Positions are {partition (str): next offset (int)}; a partition missing from a position
is read from its beginning. The consumer does not subscribe: it assigns every partition of
the topic itself, so a resume is exact and immediate (no group rebalance to wait for), and
the consumer group only receives commits, for visibility in Kafka's tools.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from movierec.stream.base import Batch, Position, StreamUnavailableError
from movierec.stream.kafka_records import arrivals, offset_of, origins, partition_of

log = logging.getLogger(__name__)

# Throughput first: big lz4 batches, filled for up to 20 ms, with a deep local queue so the
# writer rarely waits. Idempotence with acks=all keeps retries from duplicating or reordering.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "queue.buffering.max.messages": 1_000_000,
    # Successful deliveries need no Python callback: one per message would halve throughput.
    "delivery.report.only.error": True,
}
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "max.partition.fetch.bytes": 16 << 20,
    "fetch.wait.max.ms": 100,
    # Prefetch deep and refill at once: with the defaults the fetcher pauses up to a second
    # whenever its queue is full, which halved consume throughput.
    "queued.min.messages": 1_000_000,
    "queued.max.messages.kbytes": 131_072,
    "fetch.queue.backoff.ms": 10,
}
WRITE_CHUNK = 10_000  # messages per produce_batch call
MAX_CONSUME = 100_000  # per consume() call: bigger calls starve the prefetcher (measured 2x slower)
METADATA_TIMEOUT = 10.0
# What a metadata request fails with when no broker answers (down, or not started yet).
UNREACHABLE = frozenset(
    {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN}
)
REFRESH_INTERVAL = 5.0  # how often at_end() looks for partitions added to the topic


class KafkaDeliveryError(RuntimeError):
    """Messages the producer could not deliver: the log has a gap, nothing may go on quietly."""


def ensure_topic(
    bootstrap: str, topic: str, partitions: int = 1, replication_factor: int = -1
) -> int:
    """Create topic unless it exists (replication_factor -1: the broker's default); the
    partitions it has."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Metadata for all topics: asking for this one by name would auto-create it on brokers
    # that allow that, with the broker's partition count instead of ours.
    existing = admin.list_topics(timeout=METADATA_TIMEOUT).topics.get(topic)
    if existing is not None and existing.error is None:
        return len(existing.partitions)
    future = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)],
        operation_timeout=METADATA_TIMEOUT,
        request_timeout=METADATA_TIMEOUT,
    )[topic]
    try:
        future.result(timeout=METADATA_TIMEOUT * 2)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # lost a race: fine
            raise
        return ensure_topic(bootstrap, topic, partitions, replication_factor)
    return partitions


class KafkaSink:
    """Produces each message as one record value. On a topic of several partitions each is
    keyed by its user (the line's second field), so one user's lines stay in order in one
    partition and a repeated line lands where its original did (a group's workers drop
    duplicates within their partitions, ingest/group.py); on one partition, no key."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        partitions: int = 1,
        replication_factor: int = -1,
        create_topic: bool = True,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        # Keyed unless the topic is known to have one partition (then keys buy nothing).
        self.keyed = True
        if create_topic:
            self.keyed = ensure_topic(bootstrap, topic, partitions, replication_factor) > 1
        self._errors: list[KafkaError] = []
        conf = {**PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap, **(config or {})}
        conf["on_delivery"] = self._on_delivery
        conf["error_cb"] = self._on_error
        self._queue_limit = int(conf["queue.buffering.max.messages"])
        self._producer: Producer | None = Producer(conf)

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)

    def _on_error(self, err: KafkaError) -> None:
        # Transient client errors (a broker briefly unreachable) are retried by librdkafka;
        # only fatal ones (e.g. the idempotent producer fenced) mean messages are lost.
        if err.fatal():
            self._errors.append(err)
        else:
            log.warning("kafka producer: %s", err)

    def _check(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise KafkaDeliveryError(
                f"{len(errors)} message(s) not delivered to {self.topic}, first: {errors[0]}"
            )

    def write(self, values: Sequence[bytes]) -> None:
        producer = self._producer
        if producer is None:
            raise ValueError(f"write to closed sink for {self.topic}")
        for start in range(0, len(values), WRITE_CHUNK):
            # produce_batch enqueues a whole list in one C call: twice the rate of produce().
            chunk = values[start : start + WRITE_CHUNK]
            if self.keyed:
                msgs = [{"value": v, "key": user_key(v)} for v in chunk]
            else:
                msgs = [{"value": v} for v in chunk]
            # Make room first: a batch that overflows the queue half-way could have later
            # messages enqueued while earlier ones bounce, which would reorder the log.
            while len(producer) and len(producer) + len(msgs) > self._queue_limit:
                producer.poll(0.05)
            while msgs:
                if producer.produce_batch(self.topic, msgs) == len(msgs):
                    break
                msgs = self._requeue(msgs)
                producer.poll(0.05)
            producer.poll(0)  # serve delivery callbacks without waiting
        self._check()

    def _requeue(self, msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages produce_batch refused because the queue was full, to try again."""
        failed = []
        for m in msgs:
            err = m.pop("_error", None)
            if err is None:
                continue
            if err.code() != KafkaError._QUEUE_FULL:  # e.g. larger than message.max.bytes
                raise KafkaDeliveryError(f"cannot produce to {self.topic}: {err}")
            failed.append(m)
        return failed

    def flush(self) -> None:
        """Block until every message written so far is acknowledged (or raise)."""
        if self._producer is not None:
            while self._producer.flush(1.0) > 0:
                self._check()
        self._check()

    def close(self) -> None:
        if self._producer is not None:
            self.flush()  # raises on undelivered messages, before the producer is gone
            self._producer.close()
            self._producer = None

    def __enter__(self) -> KafkaSink:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def user_key(line: bytes) -> bytes:
    """A log line's user field (`time,user,...`), its partitioning key; a line without one
    (dirt) is keyed by itself."""
    fields = line.split(b",", 2)
    return fields[1] if len(fields) > 2 else line


class KafkaSource:
    """Reads every partition of a topic from a position; a missing topic reads as empty."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        group: str = "movierec-ingest",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        conf = {**CONSUMER_DEFAULTS, "bootstrap.servers": bootstrap, "group.id": group}
        conf.update(config or {})
        conf["error_cb"] = self._on_error
        self._consumer = Consumer(conf)
        self._closed = False
        # Next offset to return per partition; partitions absent here start at the beginning.
        self._pos: dict[int, int] = {}
        self._assigned: list[int] = []
        self._refreshed = 0.0

    @staticmethod
    def _on_error(err: KafkaError) -> None:
        if err.fatal():
            raise KafkaException(err)
        log.warning("kafka consumer: %s", err)

    def _partitions(self) -> list[int]:
        try:
            meta = self._consumer.list_topics(topic=self.topic, timeout=METADATA_TIMEOUT)
        except KafkaException as error:
            if error.args and error.args[0].code() in UNREACHABLE:
                raise StreamUnavailableError(f"{self.topic}: {error.args[0].str()}") from error
            raise
        self._refreshed = time.monotonic()
        info = meta.topics.get(self.topic)
        return [] if info is None or info.error is not None else sorted(info.partitions)

    def _assign(self, partitions: list[int]) -> None:
        """(Re)assign explicitly at our own positions; this also drops anything prefetched."""
        tps = []
        for p in partitions:
            offset = self._pos.get(p, OFFSET_BEGINNING)
            if offset >= 0:
                # Beyond the end means the topic was recreated: Kafka would silently restart
                # from the earliest offset and duplicate everything, so refuse instead.
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=METADATA_TIMEOUT, cached=False
                )
                if offset > high:
                    raise ValueError(
                        f"position {offset} is past the end ({high}) of {self.topic}/{p}"
                    )
            tps.append(TopicPartition(self.topic, p, offset))
        unknown = set(self._pos) - set(partitions)
        if unknown and partitions:
            raise ValueError(f"position names partitions {sorted(unknown)} {self.topic} lacks")
        self._consumer.assign(tps)
        self._assigned = partitions

    def _refresh(self) -> None:
        partitions = self._partitions()
        if partitions != self._assigned:
            self._assign(partitions)

    def seek(self, position: Position) -> None:
        items = dict(position or {}).items()
        self._pos = {int(p): int(offset) for p, offset in items}
        if self._assigned:
            self._assign(self._assigned)

    def position(self) -> dict[str, int]:
        return {str(p): offset for p, offset in sorted(self._pos.items())}

    def read(self, max_messages: int, timeout: float) -> Batch:
        deadline = time.monotonic() + timeout
        while not self._assigned:
            self._refresh()
            if self._assigned or time.monotonic() >= deadline:
                break
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if not self._assigned:
            return Batch([], self.position(), None)
        n = min(max(max_messages, 1), MAX_CONSUME)
        consumer = self._consumer
        # consume() waits until n messages or the timeout: take what is queued right away and
        # block only when nothing is, so a live tail returns promptly with small batches.
        msgs = consumer.consume(n, 0)
        if not msgs:
            first = consumer.poll(max(0.0, deadline - time.monotonic()))
            if first is not None:
                msgs = [first, *consumer.consume(n - 1, 0)] if n > 1 else [first]
        good = [m for m in msgs if m.error() is None]
        if len(good) != len(msgs):
            self._errors([m for m in msgs if m.error() is not None])
        if not good:
            return Batch([], self.position(), None)
        self._advance(good)
        # A record without a value (a tombstone someone produced) reads as an empty line.
        values = [m.value() or b"" for m in good]
        return Batch(values, self.position(), origins(self.topic, good), arrivals(good))

    def _advance(self, good: list[Message]) -> None:
        """Move each partition's position past its last message in the batch."""
        if len(self._assigned) == 1:
            self._pos[partition_of(good[-1])] = offset_of(good[-1]) + 1
            return
        seen: set[int] = set()
        for m in reversed(good):
            p = partition_of(m)
            if p not in seen:
                seen.add(p)
                self._pos[p] = offset_of(m) + 1
                if len(seen) == len(self._assigned):
                    break

    def _errors(self, bad: list[Message]) -> None:
        for m in bad:
            err = m.error()
            if err is None or err.code() == KafkaError._PARTITION_EOF:
                continue  # an event, not data
            if err.fatal():
                raise KafkaException(err)
            log.warning("kafka consumer %s: %s", self.topic, err)

    def at_end(self) -> bool:
        """True when every partition's position has reached its high watermark."""
        if not self._assigned or time.monotonic() - self._refreshed > REFRESH_INTERVAL:
            self._refresh()
        # The watermarks cached from fetch responses cost nothing and prove we are behind;
        # only "caught up" needs asking the broker.
        for cached in (True, False):
            behind = False
            for p in self._assigned:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=METADATA_TIMEOUT, cached=cached
                )
                if high >= 0 and max(self._pos.get(p, low), low) < high:
                    behind = True
                    break
            if behind:
                return False
        return True

    def commit(self, position: Position) -> None:
        """Commit to the group for monitoring; failures only warn (the checkpoint is the truth)."""
        offsets = [TopicPartition(self.topic, int(p), int(o)) for p, o in dict(position).items()]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("kafka commit to %s failed: %s", self.topic, exc)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def __enter__(self) -> KafkaSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
