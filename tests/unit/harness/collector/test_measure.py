"""StageMeasure and Recorder: per-hop values, absent stamps, clamping, intervals, merge, JSON."""

from __future__ import annotations

import numpy as np

from contracts.hdr import decode
from harness.collector.measure import MEASURES, NS_PER_S, Recorder, StageMeasure

T0 = 1_700_000_000 * NS_PER_S


def _batch(n: int, start_ns: int = T0) -> tuple[np.ndarray, ...]:
    exchange = start_ns + np.arange(n, dtype=np.int64) * 1_000_000  # 1 ms apart
    recv = exchange + 100_000  # network 100 us
    produced = recv + 50_000  # processing 50 us
    observed = produced + 2_000_000  # kafka 2 ms
    return exchange, recv, produced, observed


def test_each_measure_records_its_hop() -> None:
    recorder = Recorder("stage-1")
    recorder.record(*_batch(10))
    m = recorder.take()
    p = m.percentiles()
    assert m.messages == 10 and m.label == "stage-1"
    assert p["network"]["max"] == decode_equiv(m, "network", 100)
    assert p["processing"]["p50"] == decode_equiv(m, "processing", 50)
    assert p["kafka"]["p99"] == decode_equiv(m, "kafka", 2000)
    assert p["total"]["p50"] == decode_equiv(m, "total", 2150)
    assert p["total_uncorrected"]["p50"] == decode_equiv(m, "total_uncorrected", 2050)
    assert all(m.histograms[name].get_total_count() == 10 for name in SUT_MEASURES)
    # No broker append time (a CreateTime topic): every figure ends at the observation, and
    # the harness's own delivery hop cannot be told apart.
    assert m.histograms["delivery"].get_total_count() == 0
    assert m.basis == {"append": 0, "observed": 10} and m.unavailable["delivery"] == 10


SUT_MEASURES = tuple(m for m in MEASURES if m != "delivery")


def test_append_time_ends_the_sut_figures_and_delivery_is_apart() -> None:
    exchange, recv, produced, observed = _batch(10)
    # The broker appended 3 ms after the produce call (whole ms); the collector saw the
    # records 40 ms later still: that is the harness's consumer, not the SUT.
    append = (produced + 3_000_000) // 1_000_000 * 1_000_000
    observed = append + 40_000_000
    recorder = Recorder()
    recorder.record(exchange, recv, produced, observed, append)
    m = recorder.take()
    p = m.percentiles()
    kafka_ms = (append - produced) // 1000
    assert p["kafka"]["max"] == decode_equiv(m, "kafka", int(kafka_ms.max()))
    assert 2000 <= p["kafka"]["p50"] <= 3000
    assert p["delivery"]["p50"] == decode_equiv(m, "delivery", 40_000)
    assert p["total"]["max"] == decode_equiv(m, "total", int(((append - exchange) // 1000).max()))
    assert p["total"]["max"] < 10_000  # the collector's 40 ms are not in the SUT's total
    assert m.basis == {"append": 10, "observed": 0}
    assert m.unavailable["delivery"] == 0


def test_append_within_the_produce_millisecond_is_zero_not_negative() -> None:
    exchange, recv, produced, observed = _batch(4)
    produced = produced + 700_000  # 0.7 ms into a millisecond
    append = produced // 1_000_000 * 1_000_000  # appended in the same ms: the stamp is earlier
    recorder = Recorder()
    recorder.record(exchange, recv, produced, observed, append)
    m = recorder.take()
    assert m.negative["kafka"] == 0
    assert m.histograms["kafka"].get_max_value() == 0
    skewed = Recorder()  # a broker clock 5 ms behind is skew, and counted
    skewed.record(exchange, recv, produced, observed, append - 5_000_000)
    assert skewed.take().negative["kafka"] == 4


def test_records_without_append_time_end_at_observation() -> None:
    exchange, recv, produced, observed = _batch(6)
    append = np.where(np.arange(6) < 4, produced + 1_000_000, 0)
    recorder = Recorder()
    recorder.record(exchange, recv, produced, observed, append)
    m = recorder.take()
    assert m.basis == {"append": 4, "observed": 2}
    assert m.histograms["delivery"].get_total_count() == 4
    assert m.histograms["kafka"].get_max_value() == decode_equiv(m, "kafka", 2000)


def decode_equiv(m: StageMeasure, name: str, value: int) -> int:
    return int(m.histograms[name].get_highest_equivalent_value(value))


def test_absent_stamps_skip_their_measures() -> None:
    exchange, recv, produced, observed = _batch(4)
    exchange[0] = 0  # e.g. a Nasdaq L2 delete: no exchange time
    recv[1] = 0  # a core without recv stamps
    produced[2] = 0
    recorder = Recorder()
    recorder.record(exchange, recv, produced, observed)
    m = recorder.take()
    counts = {name: m.histograms[name].get_total_count() for name in MEASURES}
    assert counts == {
        "total": 3,
        "total_uncorrected": 3,
        "network": 2,
        "processing": 2,
        "kafka": 3,
        "delivery": 0,
    }
    assert m.unavailable == {
        "total": 1,
        "total_uncorrected": 1,
        "network": 2,
        "processing": 2,
        "kafka": 1,
        "delivery": 4,
    }


def test_negative_values_are_clamped_and_counted() -> None:
    exchange, recv, produced, observed = _batch(5)
    recv[:2] = exchange[:2] - 5_000  # recv before the exchange time: clock skew
    recorder = Recorder()
    recorder.record(exchange, recv, produced, observed)
    m = recorder.take()
    assert m.negative["network"] == 2
    assert m.histograms["network"].get_min_value() == 0
    assert m.overflow["network"] == 0


def test_small_batches_are_buffered_and_flushed_on_read() -> None:
    recorder = Recorder(flush_at=1000)
    for i in range(5):
        recorder.record(*_batch(3, T0 + i * 10_000_000))
    assert recorder.measure.messages == 15


def test_interval_histograms_per_observed_second() -> None:
    recorder = Recorder(flush_at=1)
    for second in range(5):
        recorder.record(*_batch(100, T0 + second * NS_PER_S))  # 100 ms of records per second
    m = recorder.take()
    seconds = [s for s, _ in m.interval_histograms("total")]
    assert seconds == [T0 // NS_PER_S + i for i in range(5)]
    assert sum(h.get_total_count() for _, h in m.interval_histograms("total")) == 500
    assert sum(h.get_total_count() for _, h in m.interval_histograms("total_uncorrected")) == 500


def test_batch_spanning_seconds_is_split() -> None:
    recorder = Recorder()
    exchange, recv, produced, observed = _batch(1500, T0 + NS_PER_S // 2)  # 1.5 s of records
    recorder.record(exchange, recv, produced, observed)
    m = recorder.take()
    counts = [h.get_total_count() for _, h in m.interval_histograms()]
    assert sum(counts) == 1500 and len(counts) == 3


def test_live_p99_is_the_last_completed_second() -> None:
    now = [T0 + 3 * NS_PER_S + 10]
    recorder = Recorder(clock=lambda: now[0])
    exchange, recv, produced, observed = _batch(100, T0 + 2 * NS_PER_S)
    observed = observed + np.where(np.arange(100) >= 98, 50_000_000, 0)  # 2 slow records
    recorder.record(exchange, recv, produced, observed)
    live = recorder.live_p99_us()
    assert live is not None and 50_000 <= live <= 52_300
    now[0] += 5 * NS_PER_S
    assert recorder.live_p99_us() is None


def test_merge_adds_histograms_and_intervals() -> None:
    a, b = Recorder("stage-2"), Recorder("stage-2")
    a.record(*_batch(100))
    b.record(*_batch(50, T0 + NS_PER_S // 100))
    b.record(*_batch(10, T0 + 7 * NS_PER_S))
    ma, mb = a.take(), b.take()
    total = ma + mb
    assert total.messages == 160
    assert total.histograms["total"].get_total_count() == 160
    by_second = dict(total.interval_histograms())
    assert by_second[T0 // NS_PER_S].get_total_count() == 150
    assert by_second[T0 // NS_PER_S + 7].get_total_count() == 10
    assert total.first_observed_ns == ma.first_observed_ns


def test_json_round_trip() -> None:
    recorder = Recorder("stage-3")
    recorder.record(*_batch(200))
    m = recorder.take()
    back = StageMeasure.from_json(m.to_json())
    assert back.percentiles() == m.percentiles()
    assert back.intervals == m.intervals and back.messages == 200
    assert back.basis == m.basis == {"append": 0, "observed": 200}
    assert decode(m.to_json()["histograms"]["kafka"]).get_total_count() == 200


def test_take_starts_a_new_measure() -> None:
    recorder = Recorder("stage-1")
    recorder.record(*_batch(5))
    first = recorder.take("stage-2")
    recorder.record(*_batch(7))
    second = recorder.take()
    assert (first.messages, second.messages) == (5, 7)
    assert second.label == "stage-2"
