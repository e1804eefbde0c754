"""Calibration of the measurement core (no Kafka): known injected delays -> exact percentiles.

An open-model feed schedules 5,000 msg/s for 60 s (300,000 messages, intended times fixed in
advance). The SUT reads each message about 100 us after its intended time, except during one
500 ms READER STALL: messages scheduled then wait in the socket buffer and are all read when
the stall ends. After the read, 1% of messages are held 20 ms (processing). The recorder's
percentiles must equal the exact ones (sorted raw lags, the same rank rule as HdrHistogram)
within the histogram's precision; the 20 ms mode shows at P99.x; the stall shows in the
CO-corrected tail (observed - intended) and not in the uncorrected one (observed - recv).
"""

from __future__ import annotations

import numpy as np
import pytest

from contracts.hdr import new_histogram
from harness.collector.measure import Recorder

RATE = 5_000
SECONDS = 60
STALL_AT_S, STALL_NS = 30.0, 500_000_000
HELD_NS, HELD_SHARE = 20_000_000, 0.01
POINTS = (50, 90, 99, 99.5, 99.9, 99.99, 100)


def _synthesize() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    n = RATE * SECONDS
    t0 = 1_750_000_000 * 10**9
    intended = t0 + np.arange(n, dtype=np.int64) * (10**9 // RATE)
    arrive = intended + rng.integers(50_000, 150_000, n)  # network
    stall_start = t0 + int(STALL_AT_S * 1e9)
    stall_end = stall_start + STALL_NS
    in_stall = (arrive >= stall_start) & (arrive < stall_end)
    recv = np.where(in_stall, stall_end + rng.integers(0, 20_000, n), arrive)
    processing = rng.integers(20_000, 80_000, n)
    held = rng.random(n) < HELD_SHARE
    produced = recv + processing + np.where(held, HELD_NS, 0)
    observed = produced + rng.integers(200_000, 900_000, n)  # kafka
    return {
        "intended": intended,
        "recv": recv,
        "produced": produced,
        "observed": observed,
        "in_stall": in_stall,
        "held": held,
    }


def _exact(values_us: np.ndarray, p: float) -> int:
    """Value at percentile p of the raw values, with HdrHistogram's rank rule."""
    ordered = np.sort(values_us)
    rank = max(1, int(p / 100 * ordered.size + 0.5))
    return int(ordered[min(rank, ordered.size) - 1])


@pytest.fixture(scope="module")
def measured() -> tuple[dict[str, np.ndarray], dict[str, dict[str, int]]]:
    raw = _synthesize()
    recorder = Recorder("stage-1")
    step = 1000  # as polls would hand them over
    for i in range(0, raw["observed"].size, step):
        s = slice(i, i + step)
        recorder.record(raw["intended"][s], raw["recv"][s], raw["produced"][s], raw["observed"][s])
    measure = recorder.take()
    reported = {
        name: {f"p{p:g}": int(measure.histograms[name].get_value_at_percentile(p)) for p in POINTS}
        for name in ("total", "total_uncorrected")
    }
    return raw, reported


def test_reported_percentiles_equal_exact_ones(
    measured: tuple[dict[str, np.ndarray], dict[str, dict[str, int]]],
) -> None:
    raw, reported = measured
    hist = new_histogram()
    lags = {
        "total": (raw["observed"] - raw["intended"]) // 1000,
        "total_uncorrected": (raw["observed"] - raw["recv"]) // 1000,
    }
    lines = []
    for name, values in lags.items():
        for p in POINTS:
            exact, got = _exact(values, p), reported[name][f"p{p:g}"]
            assert hist.values_are_equivalent(exact, got), (name, p, exact, got)
            assert abs(got - exact) <= exact * 0.001 + 1, (name, p, exact, got)
            lines.append(f"{name:>17} P{p:<6g} exact {exact:>8} us  reported {got:>8} us")
    print("\n" + "\n".join(lines))


def test_the_20ms_mode_shows_at_p99x(
    measured: tuple[dict[str, np.ndarray], dict[str, dict[str, int]]],
) -> None:
    _, reported = measured
    # 1% held 20 ms: above P99 of the uncorrected lag every value is in the 20 ms mode
    assert 20_000 <= reported["total_uncorrected"]["p99.5"] <= 21_200
    assert 20_000 <= reported["total_uncorrected"]["p99.9"] <= 21_200
    assert reported["total_uncorrected"]["p99"] < 21_200
    assert 20_000 <= reported["total"]["p99"] <= 21_200  # corrected: the mode is at P99 too


def test_the_stall_shows_only_in_the_corrected_tail(
    measured: tuple[dict[str, np.ndarray], dict[str, dict[str, int]]],
) -> None:
    raw, reported = measured
    corrected, uncorrected = reported["total"], reported["total_uncorrected"]
    scheduled_in_stall = int(raw["in_stall"].sum())
    assert scheduled_in_stall == pytest.approx(RATE * STALL_NS / 1e9, rel=0.01)
    assert corrected["p100"] >= 490_000  # the first message of the stall waited ~500 ms
    assert corrected["p99.9"] >= 100_000  # 0.83% of messages were scheduled in the stall
    assert uncorrected["p100"] < 25_000  # measured from the read: the stall is invisible
    report = [
        f"{p:>7}: corrected {corrected[p] / 1000:8.1f} ms  uncorrected {uncorrected[p] / 1000:8.1f}"
        f" ms  difference {(corrected[p] - uncorrected[p]) / 1000:8.1f} ms"
        for p in corrected
    ]
    print(
        f"\n{scheduled_in_stall} messages scheduled during the 500 ms stall\n" + "\n".join(report)
    )
