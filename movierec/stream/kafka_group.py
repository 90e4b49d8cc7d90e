"""A topic's partitions shared by the members of a Kafka consumer group.

Kafka decides which member reads which partition, and moves partitions when a member
joins, leaves or dies (a rebalance). Where each partition resumes is not Kafka's to say:
the member that takes a partition over asks its owner (`on_assign`, the ingestion's part of
the store, whose checkpoint holds the partition's next offset) and is assigned there, so
the store's commits, not the group's, decide what was processed. Group commits are still
made, for visibility in Kafka's tools.

Rebalance callbacks run inside `read()`, on the caller's thread, so a partition is taken
away only between two of the caller's batches, never during one. Messages of a partition
taken away that were read but not yet handed over are dropped: its next owner reads them
again from the offset its part committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from itertools import groupby
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from movierec.stream.base import Batch, StreamUnavailableError
from movierec.stream.kafka import CONSUMER_DEFAULTS, MAX_CONSUME, UNREACHABLE
from movierec.stream.kafka_records import arrivals, origins, partition_of

log = logging.getLogger(__name__)

# Eager rebalances: every member lets go of all its partitions, then takes its new ones.
# Simpler to reason about than cooperative ones (each part is closed and reopened whole),
# and a worker's partitions are few.
GROUP_DEFAULTS: dict[str, Any] = {
    "partition.assignment.strategy": "roundrobin",
    # A SIGKILLed member is noticed after this long; its partitions then move.
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
}

Assign = Callable[[list[int]], Mapping[int, int | None]]  # partitions -> next offset (None: start)
Revoke = Callable[[list[int]], None]


class KafkaGroupSource:
    """Reads the partitions the group gives this member, each from the offset its owner
    says; `read()` returns one Batch per partition, in offset order, with no message
    before that offset."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        on_assign: Assign,
        on_revoke: Revoke,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        conf = {
            **CONSUMER_DEFAULTS,
            **GROUP_DEFAULTS,
            "bootstrap.servers": bootstrap,
            "group.id": group,
            **(config or {}),
        }
        conf["error_cb"] = self._on_error
        self._consumer = Consumer(conf)
        self._next: dict[int, int] = {}  # owned partition -> next offset to hand over
        self._collected: dict[int, list[Any]] = {}  # this read's messages, by partition
        self._consumer.subscribe(
            [topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )
        self._closed = False

    @staticmethod
    def _on_error(err: KafkaError) -> None:
        if err.fatal():
            raise KafkaException(err)
        log.warning("kafka group consumer: %s", err)  # transient: librdkafka retries

    @property
    def owned(self) -> list[int]:
        return sorted(self._next)

    def _assigned(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        partitions = sorted(tp.partition for tp in tps)
        offsets = self._on_assign(partitions)
        chosen = []
        for p in partitions:
            offset = offsets.get(p)
            self._next[p] = 0 if offset is None else offset
            chosen.append(
                TopicPartition(self.topic, p, OFFSET_BEGINNING if offset is None else offset)
            )
        consumer.assign(chosen)
        log.info("partitions %s assigned at %s", partitions, [tp.offset for tp in chosen])

    def _revoked(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        partitions = sorted(tp.partition for tp in tps)
        for p in partitions:
            self._next.pop(p, None)
            self._collected.pop(p, None)
        self._on_revoke(partitions)
        consumer.unassign()
        log.info("partitions %s revoked", partitions)

    def read(self, max_messages: int, timeout: float) -> dict[int, Batch]:
        """Up to `max_messages` that arrive within `timeout` s, by partition (empty: none);
        rebalances happen in here, and drop what was collected of a partition taken away."""
        deadline = time.monotonic() + timeout
        self._collected = {}
        count = 0
        while count < max_messages:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                msgs = self._consumer.consume(min(max_messages - count, MAX_CONSUME), left)
            except KafkaException as error:
                if error.args and error.args[0].code() in UNREACHABLE:
                    raise StreamUnavailableError(f"{self.topic}: {error.args[0].str()}") from error
                raise
            count += self._collect(msgs)
        out = {}
        for p, good in self._collected.items():
            if good:
                self._next[p] = good[-1].offset() + 1
                values = [m.value() or b"" for m in good]
                out[p] = Batch(
                    values, {str(p): self._next[p]}, origins(self.topic, good), arrivals(good)
                )
        self._collected = {}
        return out

    def _collect(self, msgs: list[Any]) -> int:
        """Keep the messages of owned partitions that follow what was kept before."""
        good = [m for m in msgs if m.error() is None]
        if len(good) != len(msgs):
            self._errors([m for m in msgs if m.error() is not None])
        kept = 0
        # A partition's messages come in runs, in offset order: judge each run by its ends
        # (a loop per message cost a fifth of the worker's time).
        for p, run in groupby(good, key=partition_of):
            if p not in self._next:
                continue  # taken away during the call: its owner reads it again
            got = self._collected.setdefault(p, [])
            expected = got[-1].offset() + 1 if got else self._next[p]
            messages = list(run)
            if messages[0].offset() < expected:  # fetched ahead of a reassignment
                messages = [m for m in messages if m.offset() >= expected]
            got.extend(messages)
            kept += len(messages)
        return kept

    def _errors(self, bad: list[Any]) -> None:
        for m in bad:
            error = m.error()
            if error.fatal():
                raise KafkaException(error)
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("kafka group consumer %s: %s", self.topic, error)

    def caught_up(self) -> bool:
        """Whether every partition owned has been read to its end (none owned: False)."""
        if not self._next:
            return False
        for p, offset in self._next.items():
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=10.0, cached=False
            )
            if offset < high:
                return False
        return True

    def commit(self, partition: int, offset: int) -> None:
        """Tell the group how far `partition` is stored (for Kafka's tools only)."""
        try:
            self._consumer.commit(
                offsets=[TopicPartition(self.topic, partition, offset)], asynchronous=True
            )
        except KafkaException as exc:
            log.warning("kafka commit to %s/%d failed: %s", self.topic, partition, exc)

    def close(self) -> None:
        """Leave the group (its partitions revoked first, so their owner closes them)."""
        if not self._closed:
            self._closed = True
            self._consumer.close()
