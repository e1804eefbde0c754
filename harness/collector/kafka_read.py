"""How the collector reads the SUT's topics: its librdkafka settings and readers, and the batch.

The SUT's lag ends at the broker's append time (contract 3), not when the collector reads a
record, so the collector reads for throughput: few, large fetches (fetch.min.bytes 4 MB,
fetch.wait.max.ms 500), batches of up to 10,000 records. How late it sees a record is its own
`delivery` hop; only the live P99 and the early abort wait for it.

`TopicReaders` holds one `KafkaReader` (harness/collector/_kafkaread.c: librdkafka's C API,
no Python object per record) per topic and reads them in turn. One consumer per topic: every
reply to a fetch wakes a consumer's broker thread to look at each of its partitions (two mutex
round trips each), so one consumer of 3 x 495 partitions spent more CPU there than three of 495
together (bench/README.md). `read()` returns a `ReadBatch`: the counts and bytes of what was
read, each record's append time, and the records either decoded into columns in C (flat
mappings), as raw values (the general decoder's input), or not at all (no stage is measured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from confluent_kafka import TopicPartition

from harness.collector._fastdecode import KafkaReader

I64 = npt.NDArray[np.int64]
BATCH = 10_000
CONSUME_TIMEOUT_S = 0.05
"""A read waits up to this long (shared over the readers) to fill a batch; the observed time is
stamped when it returns. It only moves `delivery`, the harness's own hop."""
CONSUMER_SETTINGS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "fetch.min.bytes": 4 << 20,
    "fetch.wait.max.ms": 500,
    "queued.min.messages": 20_000,
    "enable.partition.eof": False,
}


class ReadMode(IntEnum):
    """What `KafkaReader.read` does with the values (harness/collector/_kafkaread.c)."""

    COUNT = 0
    VALUES = 1
    COLUMNS = 2


Columns = tuple[list[str], list[str], bytearray]
"""(symbols, types, ints) as `harness.collector._fastdecode.extract` returns them."""


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """One read: records (messages with a value), key + value bytes, error events, each
    record's broker append time (ns; 0 = a CreateTime topic), and the records as C-decoded
    columns or raw values (or neither, when they were only counted)."""

    records: int
    nbytes: int
    errors: int = 0
    last_error: str | None = None
    append_ns: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    columns: Columns | None = None
    values: list[bytes] | None = None

    @classmethod
    def of_values(cls, values: list[bytes], append_ns: int | npt.ArrayLike = 0) -> ReadBatch:
        """A batch of raw values (what a reader returns in VALUES mode), e.g. for the bench."""
        append = np.broadcast_to(np.asarray(append_ns, dtype=np.int64), (len(values),))
        return cls(len(values), sum(map(len, values)), append_ns=append, values=values)


def librdkafka_settings(bootstrap: str, group: str, settings: Mapping[str, Any]) -> dict[str, str]:
    """A KafkaReader's settings: every value as librdkafka's text (True -> "true")."""
    text = {"bootstrap.servers": bootstrap, "group.id": group, **settings}
    return {
        key: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for key, value in text.items()
    }


class TopicReaders:
    """One KafkaReader per topic, read in turn (module docstring)."""

    def __init__(
        self, bootstrap: str, group: str, topics: Sequence[str], settings: Mapping[str, Any]
    ) -> None:
        config = librdkafka_settings(bootstrap, group, settings)
        self.assigned_at: dict[tuple[str, int], int] = {}
        """(topic, partition) -> the offset it was assigned at."""
        self.by_topic: dict[str, KafkaReader] = {}
        try:
            for topic in topics:
                self.by_topic[topic] = KafkaReader(config)
        except BaseException:
            self.close()
            raise
        self._turn = list(self.by_topic.values())
        self._next = 0

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        """Add these partitions (at their offsets) to their topic's reader."""
        for topic, reader in self.by_topic.items():
            mine = [(tp.topic, tp.partition, tp.offset) for tp in partitions if tp.topic == topic]
            if mine:
                reader.assign(mine)
                self.assigned_at.update({(t, p): offset for t, p, offset in mine})

    def positions(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the offset of the next record to read, for every assigned
        partition (its assignment offset while nothing has been read from it)."""
        found = dict(self.assigned_at)
        for reader in self.by_topic.values():
            for topic, partition, offset in reader.positions():
                if offset >= 0:
                    found[(topic, partition)] = offset
        return found

    def read(
        self,
        mode: ReadMode,
        keys: tuple[bytes | None, ...] | None = None,
        strings: dict[str, str] | None = None,
    ) -> ReadBatch:
        """The next reader's batch (`keys` and `strings`: the decoder's, for COLUMNS)."""
        reader = self._turn[self._next]
        self._next = (self._next + 1) % len(self._turn)
        timeout_s = CONSUME_TIMEOUT_S / len(self._turn)
        records, nbytes, errors, last_error, append, payload = reader.read(
            int(mode), BATCH, timeout_s, keys, strings
        )
        return ReadBatch(
            records,
            nbytes,
            errors,
            last_error,
            np.frombuffer(append, dtype=np.int64),
            payload if isinstance(payload, tuple) else None,
            payload if isinstance(payload, list) else None,
        )

    def close(self) -> None:
        for reader in self.by_topic.values():
            reader.close()
