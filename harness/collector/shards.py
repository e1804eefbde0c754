"""Collector shards: which partitions a shard reads, and one reply merged from the shards'.

In distributed mode (`harness.distributed_collector`: master and workers) each worker hosts a
collector process that reads a share of the SUT's partitions: partition p belongs to shard
p mod N. The reference core keys records by symbol, so a symbol's records all land in one
shard and the shards' per-symbol sequence states are disjoint.

`merge_replies(cmd, replies)` turns the N shard replies to one control command into the reply
a single collector process would have given (the protocol of `harness.collector.process`):
HDR histograms are added (`StageMeasure + StageMeasure`, interval histograms of the same
second added), completeness states are added per key, counters are summed. The one figure
that cannot be merged exactly is the live last-second P99 of the counters: the merged reply
carries the largest shard P99, an upper bound of the P99 of all shards together (a quantile of
a union never exceeds the largest of the parts' quantiles). It feeds only the progress line
and the Locust charts; verdicts come from the merged histograms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.collector.completeness import Completeness
from harness.collector.measure import INTERVAL_MEASURES, StageMeasure, add_encoded

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


def merge_replies(cmd: str, replies: Sequence[Reply]) -> Reply:
    """One reply to `cmd` from every shard's reply (shard order); an error names its shard."""
    for shard, reply in enumerate(replies):
        if "error" in reply:
            return {"error": f"collector shard {shard}: {reply['error']}"}
    if not replies:
        return {"error": "no collector shard answered"}
    if cmd == "stage":
        return dict(replies[0])
    if cmd == "assign":
        return {
            "ok": True,
            "added": sum(int(r["added"]) for r in replies),
            "partitions": sum(int(r["partitions"]) for r in replies),
        }
    if cmd == "above":
        return {
            "stage": replies[0]["stage"],
            "messages": sum(int(r["messages"]) for r in replies),
            "above": [sum(counts) for counts in zip(*(r["above"] for r in replies), strict=True)],
        }
    if cmd == "counters":
        return _merge_counters(replies)
    if cmd == "drain":
        return {
            "drained": all(bool(r["drained"]) for r in replies),
            "behind": sum(int(r["behind"]) for r in replies),
            "waited_s": max(float(r["waited_s"]) for r in replies),
        }
    if cmd in ("snapshot", "stop"):
        return _merge_snapshots(replies)
    return {"error": f"unknown command {cmd!r}"}


def _live_p99(replies: Sequence[Reply]) -> int | None:
    known = [int(r["live_p99_us"]) for r in replies if r.get("live_p99_us") is not None]
    return max(known) if known else None


def _merge_counters(replies: Sequence[Reply]) -> Reply:
    merged: Reply = {key: sum(int(r.get(key, 0)) for r in replies) for key in SUMMED_COUNTERS}
    merged.update(
        stage=replies[0]["stage"],
        last_error="; ".join(str(r["last_error"]) for r in replies if r.get("last_error")),
        live_p99_us=_live_p99(replies),
        t_ns=max(int(r["t_ns"]) for r in replies),
    )
    return merged


def _merge_snapshots(replies: Sequence[Reply]) -> Reply:
    merged = _merge_counters(replies)
    merged["stage_messages"] = sum(int(r["stage_messages"]) for r in replies)
    merged["label"] = next((r["label"] for r in replies if r["label"] is not None), None)
    merged["active"] = any(bool(r["active"]) for r in replies)
    measure = StageMeasure()
    completeness = Completeness()
    for reply in replies:
        measure = measure + StageMeasure.from_json(reply["measure"])
        completeness = completeness + Completeness.from_json(reply["completeness"])
    data = measure.to_json()
    data["intervals"] = {name: {} for name in INTERVAL_MEASURES}
    merged["measure"] = data
    merged["completeness"] = completeness.to_json()
    for key in ("intervals", "intervals_uncorrected"):
        merged[key] = _merge_intervals([r[key] for r in replies])
    if any(r.get("final") for r in replies):
        merged["final"] = True
    return merged


def _merge_intervals(parts: Sequence[Sequence[Sequence[Any]]]) -> list[list[Any]]:
    """[[second, tag, encoded], ...] of every shard; one entry per (second, tag), added."""
    added: dict[tuple[int, str], str] = {}
    for part in parts:
        for second, tag, code in part:
            key = (int(second), str(tag))
            added[key] = add_encoded(added.get(key), str(code))
    return [[second, tag, code] for (second, tag), code in sorted(added.items())]
