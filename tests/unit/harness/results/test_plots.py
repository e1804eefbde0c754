"""Plots are written as non-empty PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.collector.measure import NS_PER_S, Recorder, StageMeasure
from harness.results.plots import (
    plot_lag_over_time,
    plot_percentile_spectrum,
    plot_resources,
    spectrum,
)

T0 = 1_750_000_000 * NS_PER_S
PNG = b"\x89PNG\r\n\x1a\n"


def _stage(label: str, offset_s: int, slow: float) -> StageMeasure:
    rng = np.random.default_rng(offset_s)
    recorder = Recorder(label)
    n = 20_000
    exchange = T0 + offset_s * NS_PER_S + np.arange(n, dtype=np.int64) * 500_000  # 10 s
    recv = exchange + rng.integers(50_000, 200_000, n)
    held = rng.random(n) < slow
    produced = recv + 30_000 + np.where(held, 20_000_000, 0)
    observed = produced + rng.integers(300_000, 3_000_000, n)
    recorder.record(exchange, recv, produced, observed)
    return recorder.take()


def test_plots_are_written(tmp_path: Path) -> None:
    one, two = _stage("stage-1", 0, 0.001), _stage("stage-2", 10, 0.02)
    limits = {"P95": 50.0, "P99": 100.0}
    spectrum_png = plot_percentile_spectrum(
        tmp_path / "stage-2-spectrum.png",
        two.histograms,
        "stage-2 (100 symbols)",
        limits,
    )
    over_time = plot_lag_over_time(tmp_path / "lag.png", [one, two], limits)
    rows = [
        {"t_ns": T0 + i * NS_PER_S, "rss_bytes": 2e9 + i * 1e7, "feed_mbps": 20 + i % 3,
         "kafka_mbps": 30.0}
        for i in range(20)
    ]  # fmt: skip
    resources = plot_resources(
        tmp_path / "resources.png",
        rows,
        boundaries=[("stage-1", T0), ("stage-2", T0 + 10 * NS_PER_S)],
        limits={"rss_mb": 4000.0, "mbps": 50.0},
    )
    for path in (spectrum_png, over_time, resources):
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, path


def test_spectrum_reaches_the_tail() -> None:
    stage = _stage("stage-1", 0, 0.02)
    xs, values = spectrum(stage.histograms["total"])
    assert xs[0] == 1.0 and xs[-1] >= 10_000  # up to P99.99 for 20,000 values
    assert values[-1] >= 20.0  # the 20 ms mode is in the tail (ms)
    assert np.all(np.diff(values) >= 0)


def test_empty_inputs_still_plot(tmp_path: Path) -> None:
    assert plot_resources(tmp_path / "r.png", []).stat().st_size > 0
    assert plot_percentile_spectrum(tmp_path / "s.png", {}, "empty").stat().st_size > 0
