"""Reading consumed Kafka records in bulk: where each came from and when it arrived, for
the plain source (kafka.py) and the group's (kafka_group.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message


def partition_of(m: Message) -> int:
    # Only error events lack a partition, and those never reach here.
    return m.partition() or 0


def offset_of(m: Message) -> int:
    offset = m.offset()
    assert offset is not None, "a consumed record always has an offset"
    return offset


def arrivals(msgs: list[Message]) -> np.ndarray:
    """The broker's timestamp of each message (the producer's CreateTime, or the broker's
    LogAppendTime if the topic says so), in ns, capped at the reader's clock: nothing
    arrived after it was read, whatever a producer's clock claims."""
    now_ms = time.time_ns() // 1_000_000
    stamps = np.fromiter(
        (
            stamp if kind != TIMESTAMP_NOT_AVAILABLE else now_ms
            for kind, stamp in (m.timestamp() for m in msgs)
        ),
        dtype=np.int64,
        count=len(msgs),
    )
    return np.minimum(stamps, now_ms) * 1_000_000


def origins(topic: str, msgs: list[Message]) -> Callable[[np.ndarray], pa.Array]:
    def origins_of(rows: np.ndarray) -> pa.Array:
        picked = [msgs[i] for i in rows.tolist()]
        partitions = pa.array([m.partition() for m in picked], pa.int32()).cast(pa.string())
        offsets = pa.array([m.offset() for m in picked], pa.int64()).cast(pa.string())
        return pc.binary_join_element_wise(f"{topic}/", partitions, "@", offsets, "")

    return origins_of
