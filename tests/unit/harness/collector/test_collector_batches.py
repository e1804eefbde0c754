"""`Collector.on_batch`: what it takes from a read (counts, append times, columns or values)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from contracts.records import FieldMapping
from harness.collector._fastdecode import extract
from harness.collector.client import collector_cost, describe_cost
from harness.collector.kafka_read import ReadBatch, ReadMode
from harness.collector.process import Collector
from ingest.records import FeedRecord


def value(seq: int) -> bytes:
    return FeedRecord("AAPL", "quote", seq, 1_000 + seq, 2_000 + seq, 3_000 + seq, {}).to_value()


def test_columns_and_values_are_measured_alike() -> None:
    values = [value(i) for i in range(1, 5)]
    by_values, by_columns = Collector(), Collector()
    for collector in (by_values, by_columns):
        collector.set_stage("s")
        assert collector.read_mode is ReadMode.COLUMNS
    by_values.on_batch(ReadBatch.of_values(values, 5_000_000), 9_000_000)
    decoder = by_columns.decoder
    assert decoder.native_keys is not None
    columns = extract(values, decoder.native_keys, decoder.strings)  # type: ignore[arg-type]
    assert columns is not None
    append = np.full(4, 5_000_000, dtype=np.int64)
    by_columns.on_batch(ReadBatch(4, 1_000, append_ns=append, columns=columns), 9_000_000)
    for collector in (by_values, by_columns):
        measure = collector.stages["s"].recorder.measure
        assert measure.messages == 4 and measure.basis == {"append": 4, "observed": 0}
        delivery = measure.histograms["delivery"]  # 9 ms observed - 5 ms appended
        assert delivery.get_max_value() == delivery.get_highest_equivalent_value(4_000)
        assert collector.stages["s"].tracker.snapshot().totals()["unique"] == 4
    assert by_columns.consumed_bytes == 1_000


def test_create_time_records_end_at_the_observation() -> None:
    collector = Collector()
    collector.set_stage("s")
    append = np.array([5_000_000, 0], dtype=np.int64)  # the second topic stamps CreateTime
    collector.on_batch(ReadBatch.of_values([value(1), value(2)], append), 9_000_000)
    measure = collector.stages["s"].recorder.measure
    assert measure.basis == {"append": 1, "observed": 1}
    assert measure.histograms["delivery"].get_total_count() == 1


def test_errors_are_counted_and_an_unmeasured_read_only_counts() -> None:
    collector = Collector()
    assert collector.read_mode is ReadMode.COUNT  # no stage: nothing to decode
    collector.on_batch(ReadBatch(0, 0, errors=2, last_error="Broker: Unknown partition"), 1)
    assert collector.kafka_errors == 2 and collector.last_error == "Broker: Unknown partition"
    append = np.full(3, 7_000_000, dtype=np.int64)
    collector.on_batch(ReadBatch(3, 600, append_ns=append), 9_000_000)  # counted, not decoded
    assert (collector.consumed_messages, collector.consumed_bytes) == (3, 600)
    assert collector.stages == {}


def test_nested_mappings_read_values() -> None:
    nested = Collector(FieldMapping(symbol="meta.symbol"))
    nested.set_stage("s")
    assert nested.read_mode is ReadMode.VALUES


def test_counters_report_the_process_cpu_and_collector_cost_divides_it() -> None:
    ticks = iter([2_000_000_000, 2_500_000_000])
    now = [10_000_000_000]
    collector = Collector(clock=lambda: now[0], cpu_clock=lambda: next(ticks))
    collector.set_stage("s")
    before = collector.counters()
    collector.on_batch(ReadBatch.of_values([value(i) for i in range(1, 6)]), 1)
    now[0] += 2_000_000_000
    after = collector.counters()
    assert (before.cpu_ns, after.cpu_ns) == (2_000_000_000, 2_500_000_000)
    cost = collector_cost(before, after)
    assert cost == {
        "collector_cpu_seconds": 0.5,
        "collector_messages": 5,
        "collector_cpu_us_per_message": 100_000.0,
        "collector_cpu_cores": 0.25,
    }
    assert describe_cost(cost) == (
        "harness cost: the collector used 25% of a core, 100000.0 us CPU a message "
        "(5 messages, librdkafka included)"
    )
    unknown = collector_cost(replace(before, cpu_ns=0), after)
    assert unknown["collector_cpu_seconds"] is None
    assert unknown["collector_cpu_us_per_message"] is None
    assert unknown["collector_cpu_cores"] is None
    assert describe_cost(unknown) is None
    no_time = collector_cost(before, replace(after, t_ns=before.t_ns))
    assert no_time["collector_cpu_cores"] is None and no_time["collector_cpu_seconds"] == 0.5
