"""Collector shards: which partitions a shard reads.

In distributed mode (`harness.distributed_collector`: master and workers) each worker hosts a
collector process that reads a share of the SUT's partitions: partition p belongs to shard
p mod N. The reference core keys records by symbol, so a symbol's records all land in one
shard and the shards' per-symbol sequence states are disjoint, and their replies add up
(`harness.collector.replies.sum_replies`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Reply = dict[str, Any]
SUMMED_COUNTERS = ("consumed_messages", "consumed_bytes", "kafka_errors", "cpu_ns")


def shard_of(partition: int, shards: int) -> int:
    """The shard that reads partition number `partition`."""
    return partition % shards


def in_shard(partition: int, shard: int, shards: int) -> bool:
    return shard_of(partition, shards) == shard


def split_partitions(partitions: Sequence[int], shards: int) -> list[list[int]]:
    """`partitions` split by shard (index = shard), each list in the given order."""
    split: list[list[int]] = [[] for _ in range(shards)]
    for partition in partitions:
        split[shard_of(int(partition), shards)].append(int(partition))
    return split


def parse_shard(text: str) -> tuple[int, int]:
    """ "I/N" -> (I, N) with 0 <= I < N; ValueError otherwise."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ValueError(f"a shard is written I/N (e.g. 0/2), not {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {text!r}: need 0 <= I < N")
    return index, count
