"""The hops split at the broker's append time (contract 3), with real parts only.

feed_sim (FeedSimProcess, 4 symbols x 100 msg/s) -> the test core `delay_core.py` (a command
SUT over real sockets) -> a real 1-broker Kafka whose topic stamps LogAppendTime -> two of the
harness's collector processes reading the same partitions.

- The core waits PRODUCE_DELAY_MS between stamping `produced_ns` and calling produce: the
  delay must show in the `kafka` hop (append - produced) of every record, not in `processing`
  (produced - recv) nor in the harness's `delivery` (observed - append).
- One collector is slowed on purpose (`--test-slow-ms`: it sleeps after every batch): its
  `delivery` hop grows, and its `total` histogram is exactly the other's (both end at the
  broker's append time of the same records).
- On a CreateTime topic the same records end at the collector: `basis` says so, and
  `timestamp_types` / `lag_basis` tell the run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from contracts.hdr import encode
from harness.collector.client import CollectorProcess
from harness.collector.replies import CollectorSnapshot
from harness.feed_process import FeedSimProcess
from harness.infra.kafka_local import ClusterState, LocalKafka
from harness.infra.topics import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    TIMESTAMP_TYPE,
    TopicSpec,
    ensure_topics,
    feed_topic_specs,
    lag_basis,
    timestamp_types,
)
from harness.scenario import DEFAULT_SYMBOLS_FILE, CommandSut
from harness.sut import KafkaEndpoints
from harness.sut.command import CommandCore
from harness.symbols import load_universe
from ingest.records import FeedRecord
from tests.integration.harness.test_calibration import scenario as calibration_scenario
from tests.integration.harness.test_run_thresholds import core_command

pytestmark = pytest.mark.integration

TOPIC = "hops.quotes"
SYMBOLS = 4
RATE_HZ = 100
FEED_S = 8.0
PRODUCE_DELAY_MS = 1000.0
SLOW_MS = 700.0
WAIT_S = 120.0
"""A bound on the waits below (a hang, not a timing assertion)."""


def core_config() -> CommandSut:
    command = core_command(f"--produce-delay-ms {PRODUCE_DELAY_MS}", TOPIC)
    return CommandSut.model_validate(
        {"command": command, "reload": {"method": "none"}, "record_mapping": {"topics": [TOPIC]}}
    )


def wait_for(collectors: list[CollectorProcess], label: str, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    for collector in collectors:
        while collector.snapshot(label).stage_messages < count:
            assert time.monotonic() < deadline, "a collector did not see every record"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def bootstrap(kafka_single: tuple[LocalKafka, ClusterState]) -> str:
    _, state = kafka_single
    ensure_topics(state.bootstrap, feed_topic_specs(1, names=(TOPIC,)))
    return state.bootstrap


@pytest.fixture(scope="module")
def two_collectors(
    bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CollectorSnapshot, CollectorSnapshot, int]]:
    """(normal collector's snapshot, slowed collector's snapshot, records sent)."""
    run_dir = tmp_path_factory.mktemp("hops")
    scen = calibration_scenario(SYMBOLS, RATE_HZ, FEED_S)
    universe_file = scen.resolve(DEFAULT_SYMBOLS_FILE)
    universe = load_universe(universe_file)
    symbols = [s.symbol for s in universe.stratified_subset(SYMBOLS)]
    partitions = [universe.partition_of(s) for s in symbols]
    feed = FeedSimProcess(scen, run_dir, startup_timeout_s=180)
    core = CommandCore(core_config(), run_dir, universe_file)
    mapping = core.record_mapping()
    normal = CollectorProcess(bootstrap, [TOPIC], mapping, all_partitions=False)
    slowed = CollectorProcess(
        bootstrap,
        [TOPIC],
        mapping,
        all_partitions=False,
        extra_args=["--test-slow-ms", str(SLOW_MS)],
    )
    try:
        for collector in (normal, slowed):
            collector.start()
            collector.assign(partitions)
            collector.stage("hold")  # both measure every record of the run
        feed.start()
        core.start(symbols, feed.endpoints, KafkaEndpoints(bootstrap))
        feed.control.set_symbols(symbols)
        feed.control.set_rate("fixed", rate_hz=RATE_HZ)
        feed.control.stage("hold")
        feed.control.start()
        time.sleep(FEED_S)
        feed.control.pause()
        sent = feed.control.counters("hold").messages
        # Everything appended by now has been read once `drain` answers: the slowed collector
        # (700 ms asleep after every read) too, without waiting for counts.
        time.sleep(PRODUCE_DELAY_MS / 1000 + 0.5)  # the core's last records are appended
        drained = slowed.drain(time.time_ns(), 60)
        assert drained.drained and drained.behind == 0, drained
        assert slowed.snapshot("hold").stage_messages == sent
        wait_for([normal], "hold", sent)
        assert core.alive(), "the test core died"
        yield normal.snapshot("hold"), slowed.snapshot("hold"), sent
    finally:
        for collector in (normal, slowed):
            collector.stop(timeout_s=30)
        core.stop(timeout_s=30)
        feed.stop(timeout_s=30)


def figures(snapshot: CollectorSnapshot, measure: str) -> dict[str, Any]:
    return snapshot.measure.percentiles()[measure]


def test_the_topic_stamps_log_append_time(bootstrap: str) -> None:
    assert timestamp_types(bootstrap, [TOPIC]) == {TOPIC: LOG_APPEND_TIME}


def test_a_delayed_produce_call_shows_in_the_kafka_hop_only(two_collectors: Any) -> None:
    normal, _, sent = two_collectors
    delay_us = PRODUCE_DELAY_MS * 1000
    kafka, processing = figures(normal, "kafka"), figures(normal, "processing")
    delivery, total = figures(normal, "delivery"), figures(normal, "total")
    kafka_min = normal.measure.histograms["kafka"].get_min_value()
    print(
        f"\n{sent} records: kafka min {kafka_min} us, P50 {kafka['p50']} us; processing P99 "
        f"{processing['p99']} us; delivery P99 {delivery['p99']} us; total P50 {total['p50']} us"
    )
    assert normal.measure.basis == {"append": sent, "observed": 0}
    # Every record waited the delay between its produced stamp and the produce call; the
    # append time is whole milliseconds (floor), so the hop reads at most 1 ms low (and the
    # histogram keeps 3 significant digits).
    hist = normal.measure.histograms["kafka"]
    assert kafka_min >= hist.get_lowest_equivalent_value(int(delay_us) - 1000)
    assert processing["p99"] < delay_us / 2
    assert delivery["p99"] < delay_us
    assert total["p50"] >= delay_us


def test_a_slowed_collector_moves_delivery_not_total(two_collectors: Any) -> None:
    normal, slowed, sent = two_collectors
    for measure in ("total", "total_uncorrected", "network", "processing", "kafka"):
        mine, theirs = normal.measure.histograms[measure], slowed.measure.histograms[measure]
        assert mine.get_total_count() == theirs.get_total_count() == sent, measure
        assert encode(mine) == encode(theirs), f"{measure} differs between the collectors"
    fast, slow = figures(normal, "delivery"), figures(slowed, "delivery")
    print(f"\ndelivery P50: {fast['p50']} us normal, {slow['p50']} us slowed by {SLOW_MS} ms")
    assert slow["p50"] >= fast["p50"] + SLOW_MS * 1000 / 4
    assert slow["max"] >= SLOW_MS * 1000 / 2


def test_a_create_time_topic_ends_at_the_collector(bootstrap: str) -> None:
    topic = "hops.created"
    ensure_topics(bootstrap, [TopicSpec(topic, 1, 1, {TIMESTAMP_TYPE: CREATE_TIME})])
    assert timestamp_types(bootstrap, [topic, TOPIC]) == {
        topic: CREATE_TIME,
        TOPIC: LOG_APPEND_TIME,
    }
    basis = lag_basis({topic: CREATE_TIME, TOPIC: LOG_APPEND_TIME})
    assert basis["ends_at"] == "mixed" and "measured at the harness's consumer" in basis["note"]
    assert lag_basis({topic: CREATE_TIME})["ends_at"] == "harness_consumer"
    with CollectorProcess(bootstrap, [topic], all_partitions=True) as collector:
        collector.stage("created")
        producer = Producer({"bootstrap.servers": bootstrap})
        now = time.time_ns()
        for seq in range(1, 21):
            value = FeedRecord("AAPL", "quote", seq, now, now, now, {}).to_value()
            producer.produce(topic, value, key=b"AAPL", partition=0)
        assert producer.flush(30) == 0
        deadline = time.monotonic() + WAIT_S
        while (snapshot := collector.snapshot("created")).stage_messages < 20:
            assert time.monotonic() < deadline, "the collector did not see the records"
            time.sleep(0.2)
    assert snapshot.measure.basis == {"append": 0, "observed": 20}
    assert snapshot.measure.histograms["delivery"].get_total_count() == 0
    assert snapshot.measure.histograms["total"].get_total_count() == 20
