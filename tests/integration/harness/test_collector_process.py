"""The collector process against a real 1-broker Kafka: stages, completeness, per-hop lag.

Records with known stamps are produced for a warmup and two stages, with gaps and
duplicates; the collector runs in its own process, driven by `CollectorProcess`. Counts,
gaps and duplicates per stage are exact. The network (recv - exchange) and processing
(produced - recv) histograms are fully determined by the record values, so their percentiles
must equal the sorted-list percentiles (nearest rank, rounded as hdrh rounds it) within the
histogram's precision (same HDR bucket). Total and kafka lag depend on when the collector
saw a record, so only their counts are checked. Every process started here is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from contracts.hdr import count_above, new_histogram
from harness.collector.client import CollectorError, CollectorProcess
from harness.collector.completeness import KeyState
from harness.collector.replies import CollectorSnapshot, Interval
from harness.infra.kafka_clients import producer
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.infra.ports import free_ports
from harness.infra.topics import ensure_topics, feed_topic_specs
from ingest.kafka_out import topic_names
from ingest.records import FeedRecord

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
SYMBOLS = ("AAA", "BBB", "CCC")
TOPICS = topic_names("collector-it")
POINTS = (0, 10, 50, 90, 95, 99, 99.9, 100)


@pytest.fixture(scope="module")
def bootstrap(kafka_single: tuple[LocalKafka, ClusterState]) -> str:
    _, state = kafka_single
    specs = feed_topic_specs(state.broker_count, PARTITIONS, names=tuple(TOPICS.values()))
    ensure_topics(state.bootstrap, specs)
    return state.bootstrap


@dataclass
class Plan:
    """The records of one stage and what the collector must find in them."""

    records: list[FeedRecord]
    duplicates: int
    gaps: int

    @property
    def network_us(self) -> list[int]:
        return [(r.recv_ns - r.exchange_ns) // 1000 for r in self.records if r.exchange_ns]

    @property
    def processing_us(self) -> list[int]:
        return [(r.produced_ns - r.recv_ns) // 1000 for r in self.records]


def make_plan(rng: random.Random, first_seq: int, per_symbol: int) -> Plan:
    """Per symbol: trades/quotes with consecutive TickIDs (family l1) and depth rows (l2);
    AAA skips 3 TickIDs, BBB sends two TickIDs twice, CCC repeats one depth row, and one
    depth row (a delete) has no exchange time."""
    base = time.time_ns() - 2 * 10**9
    records: list[FeedRecord] = []

    def add(symbol: str, kind: str, seq: int, exchange_ns: int) -> None:
        network_ns = rng.choice([rng.randint(50, 2_000), rng.randint(2_000, 80_000)]) * 1000
        processing_ns = int(rng.lognormvariate(4, 1.2)) * 1000 + rng.randint(0, 999)
        recv = (exchange_ns or base) + network_ns + rng.randint(0, 999)
        records.append(FeedRecord(symbol, kind, seq, exchange_ns, recv, recv + processing_ns))

    for n, symbol in enumerate(SYMBOLS):
        for i in range(per_symbol):
            seq = first_seq + i
            if symbol == "AAA" and i in (40, 41, 42):
                continue
            add(symbol, "trade" if i % 3 else "quote", seq, base + (n * per_symbol + i) * 997)
            if symbol == "BBB" and i in (10, 77):
                add(symbol, "trade", seq, base + i * 997)
        for j in range(20):
            add(symbol, "depth", first_seq + j, 0 if (symbol, j) == ("AAA", 5) else base + j)
            if symbol == "CCC" and j == 7:
                add(symbol, "depth", first_seq + j, base + j)
    return Plan(records, duplicates=3, gaps=3)


def produce(bootstrap: str, records: list[FeedRecord]) -> None:
    prod = producer(bootstrap, {"linger.ms": 5, "acks": "all"})
    for record in records:
        partition = SYMBOLS.index(record.symbol) % PARTITIONS
        topic = TOPICS[record.type]
        prod.produce(topic, key=record.symbol, value=record.to_value(), partition=partition)
        prod.poll(0)
    assert prod.flush(60) == 0


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def exact_percentile(values: list[int], percentile: float) -> int:
    ordered = sorted(values)
    rank = max(1, int(percentile * len(ordered) / 100 + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def assert_stage(snapshot: CollectorSnapshot, plan: Plan, label: str) -> None:
    n = len(plan.records)
    assert snapshot.label == label
    assert snapshot.stage_messages == n
    measure = snapshot.measure
    assert measure.messages == n
    totals = snapshot.completeness.totals()
    assert totals["received"] == n
    assert totals["duplicates"] == plan.duplicates
    assert totals["gaps"] == plan.gaps
    assert totals["unique"] == n - plan.duplicates
    assert totals["keys"] == len(SYMBOLS) * 2  # (symbol, l1) and (symbol, l2)
    assert totals["malformed"] == 0
    no_exchange = sum(1 for r in plan.records if not r.exchange_ns)
    assert measure.unavailable["network"] == no_exchange
    assert measure.unavailable["total"] == no_exchange
    assert measure.histograms["total"].get_total_count() == n - no_exchange
    assert measure.histograms["kafka"].get_total_count() == n
    assert measure.negative["network"] == measure.negative["processing"] == 0
    for name, values in (("network", plan.network_us), ("processing", plan.processing_us)):
        hist = measure.histograms[name]
        assert hist.get_total_count() == len(values)
        for p in POINTS:
            got, want = hist.get_value_at_percentile(p), exact_percentile(values, p)
            assert hist.values_are_equivalent(got, want), (name, p, got, want)


def interval_count(intervals: list[Interval], label: str) -> int:
    assert all(tag == label for _, tag, _ in intervals)
    seconds = [s for s, _, _ in intervals]
    assert len(seconds) == len(set(seconds)), "an interval second was sent twice"
    total = new_histogram()
    for _, _, packed in intervals:
        total.add(packed.histogram())
    return int(total.get_total_count())


@pytest.fixture
def collector(bootstrap: str) -> Iterator[CollectorProcess]:
    proc = CollectorProcess(bootstrap, list(TOPICS.values()), ready_timeout_s=60)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop(timeout_s=20)
        pid = proc.pid
        assert pid is not None
        assert not psutil.pid_exists(pid), f"collector process {pid} left behind"


def test_stages_completeness_and_per_hop_lag(bootstrap: str, collector: CollectorProcess) -> None:
    rng = random.Random(5)
    assert collector.partitions == PARTITIONS * len(TOPICS)

    warmup = make_plan(rng, 1, 30)
    produce(bootstrap, warmup.records)
    wait_for(
        "warmup consumed", lambda: collector.counters().consumed_messages == len(warmup.records)
    )
    idle = collector.snapshot()
    assert idle.label is None and idle.stage_messages == 0 and idle.live_p99_us is None

    assert collector.stage("stage-1") is None
    stage1 = make_plan(rng, 1_000, 400)
    produce(bootstrap, stage1.records)
    snaps1 = [collector.snapshot()]
    wait_for("stage-1 measured", lambda: collector.snapshot().stage_messages == len(stage1.records))
    snaps1.append(collector.snapshot())
    assert snaps1[-1].active
    assert_stage(snaps1[-1], stage1, "stage-1")
    # The early-abort figures: the same counts as the snapshot's histogram gives.
    limits = [1_000, 100_000, 60_000_000]
    stage, over = collector.above(limits)
    total_hist = snaps1[-1].measure.histograms["total"]
    assert stage == "stage-1" and over == [count_above(total_hist, v) for v in limits]
    assert over[0] >= over[1] >= over[2] == 0 and over[0] > 0

    assert collector.stage("stage-2") == "stage-1"
    with pytest.raises(CollectorError, match="no stage"):
        collector.snapshot("stage-9")
    closed1 = collector.snapshot("stage-1")
    assert not closed1.active
    assert_stage(closed1, stage1, "stage-1")
    intervals1 = [i for s in [*snaps1, closed1] for i in s.intervals]
    assert interval_count(intervals1, "stage-1") == len(stage1.records) - 1  # one w/o exchange
    assert sorted(closed1.measure.intervals["total"]) == sorted(s for s, _, _ in intervals1)

    stage2 = make_plan(rng, 5_000, 250)
    produce(bootstrap, stage2.records)
    wait_for("stage-2 measured", lambda: collector.snapshot().stage_messages == len(stage2.records))
    final = collector.stop(timeout_s=20)
    assert final is not None
    assert_stage(final, stage2, "stage-2")
    total = len(warmup.records) + len(stage1.records) + len(stage2.records)
    assert final.consumed_messages == total
    assert final.consumed_bytes == sum(
        len(r.to_value()) + len(r.symbol)
        for r in [*warmup.records, *stage1.records, *stage2.records]
    )
    assert final.kafka_errors == 0
    assert not collector.alive()


def test_sigterm_exits_cleanly(collector: CollectorProcess) -> None:
    assert collector.proc is not None
    collector.stage("stage-1")
    os.kill(collector.proc.pid, signal.SIGTERM)
    assert collector.proc.wait(timeout=30) == 0
    with pytest.raises(CollectorError):
        collector.snapshot()


def test_reads_only_the_partitions_it_is_told(bootstrap: str) -> None:
    """`--partitions none`: nothing is read until `assign`; then only those partitions, from
    their end (records produced before the assign are not read)."""
    proc = CollectorProcess(
        bootstrap, list(TOPICS.values()), ready_timeout_s=60, all_partitions=False
    )
    now = time.time_ns()

    def records(symbol: str, first: int, count: int) -> list[FeedRecord]:
        return [
            FeedRecord(symbol, "trade", first + i, now, now + 1_000, now + 2_000)
            for i in range(count)
        ]

    try:
        proc.start()
        assert proc.partitions == 0
        proc.stage("stage-1")
        produce(bootstrap, records("AAA", 1, 5))  # partition 0: not assigned yet
        time.sleep(1.0)
        assert proc.counters().consumed_messages == 0
        assert proc.assign([SYMBOLS.index("BBB") % PARTITIONS]) == 1
        assert proc.assign([SYMBOLS.index("BBB") % PARTITIONS]) == 1  # idempotent
        produce(bootstrap, records("AAA", 6, 5) + records("BBB", 1, 7))
        wait_for("BBB's records", lambda: proc.snapshot().stage_messages >= 7)
        time.sleep(1.0)
        snapshot = proc.snapshot()
        assert snapshot.stage_messages == 7  # AAA's partition is still not read
        assert set(snapshot.completeness.keys) == {("BBB", "l1")}
    finally:
        proc.stop(timeout_s=20)
    pid = proc.pid
    assert pid is not None and not psutil.pid_exists(pid)


# -- distributed: a Locust master in front of collector shards on Locust workers -------------


@contextlib.contextmanager
def locust_workers(count: int, port: int, logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` real `harness.distributed_collector.worker` processes for the master on `port`;
    stopped by PID (with the collector processes they started) even when the test fails."""
    workers: list[subprocess.Popen[bytes]] = []
    for i in range(count):
        with (logs / f"worker-{i}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "harness.distributed_collector.worker",
                        "--master-port",
                        str(port),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
    try:
        yield workers
    finally:
        for worker in workers:
            family = _process_tree(worker.pid)
            worker.kill()
            worker.wait(timeout=30)
            for pid in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    psutil.Process(pid).kill()


def _process_tree(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def arrival_independent(snapshot: CollectorSnapshot) -> dict[Any, KeyState]:
    """The completeness per key without `out_of_order`: a symbol's trades and quotes share
    the l1 TickIDs but travel on two topics, so how they interleave at a consumer (and with
    it which records count as late fills) differs between any two consumers."""
    return {
        key: replace(state, out_of_order=0) for key, state in snapshot.completeness.keys.items()
    }


def distributed(bootstrap: str, port: int, workers: int, **kwargs: Any) -> CollectorProcess:
    return CollectorProcess(
        bootstrap,
        list(TOPICS.values()),
        ready_timeout_s=60,
        module="harness.distributed_collector.master",
        extra_args=["--workers", str(workers), "--bind-port", str(port)],
        **kwargs,
    )


def test_distributed_collector_merges_its_shards_into_what_one_collector_measures(
    bootstrap: str, tmp_path: Path
) -> None:
    """Two Locust workers each host a collector shard (half the partitions); the master's
    merged stage equals the single collector's: counts, gaps, duplicates, exact per-hop
    percentiles, early-abort counts; `stop` ends the shards and the workers."""
    port = free_ports(1)[0]
    master = distributed(bootstrap, port, workers=2)
    single = CollectorProcess(bootstrap, list(TOPICS.values()), ready_timeout_s=60)
    with locust_workers(2, port, tmp_path) as workers:
        try:
            master.start()
            single.start()
            shards = [pid for w in workers for pid in _process_tree(w.pid)]
            assert len(shards) == 2, "each worker runs one collector process"
            assert master.partitions == single.partitions == PARTITIONS * len(TOPICS)
            for collector in (master, single):
                assert collector.stage("stage-1") is None
            plan = make_plan(random.Random(11), 1, 300)
            produce(bootstrap, plan.records)
            for collector in (master, single):
                wait_for(
                    "stage-1 measured",
                    lambda c=collector: c.snapshot().stage_messages == len(plan.records),
                )
            merged, alone = master.snapshot(), single.snapshot()
            assert_stage(merged, plan, "stage-1")
            assert arrival_independent(merged) == arrival_independent(alone)
            assert merged.measure.histograms["total"].get_total_count() == len(plan.records) - 1
            limits = [1_000, 60_000_000]
            stage, over = master.above(limits)
            total = merged.measure.histograms["total"]
            assert stage == "stage-1" and over == [count_above(total, v) for v in limits]
            assert master.counters().consumed_messages == len(plan.records)

            final = master.stop(timeout_s=30)
            assert final is not None and final.stage_messages == len(plan.records)
            assert [w.wait(timeout=60) for w in workers] == [0, 0]
            assert not any(psutil.pid_exists(pid) for pid in shards), "a shard was left behind"
        finally:
            master.kill()
            single.stop(timeout_s=20)
    for pid in (master.pid, single.pid):
        assert pid is not None and not psutil.pid_exists(pid)


def test_distributed_assign_goes_to_the_shard_of_each_partition(
    bootstrap: str, tmp_path: Path
) -> None:
    port = free_ports(1)[0]
    master = distributed(bootstrap, port, workers=2, all_partitions=False)
    with locust_workers(2, port, tmp_path) as workers:
        try:
            master.start()
            assert master.partitions == 0
            assert master.assign([0, 1, 3]) == 3  # shard 0 reads 0; shard 1 reads 1 and 3
            assert master.assign([1, 2]) == 4  # 1 is read already
            assert master.stop(timeout_s=30) is not None
            assert [w.wait(timeout=60) for w in workers] == [0, 0]
        finally:
            master.kill()


def test_distributed_collector_without_enough_workers_fails_to_start(
    bootstrap: str, tmp_path: Path
) -> None:
    """One worker of the two asked for: the ready line is an error and the master exits 4."""
    port = free_ports(1)[0]
    command = CollectorProcess(
        bootstrap,
        list(TOPICS.values()),
        ready_timeout_s=3,
        module="harness.distributed_collector.master",
        extra_args=["--workers", "2", "--bind-port", str(port)],
    ).command()
    with locust_workers(1, port, tmp_path) as workers:
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
        assert done.returncode == 4
        ready = json.loads(done.stdout.splitlines()[0])
        assert ready["ready"] is False
        assert "only 1 of 2 Locust workers connected within 3 s" in ready["error"]
        assert workers[0].wait(timeout=60) == 0, "the master told its worker to quit"
