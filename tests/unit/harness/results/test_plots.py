"""The figures: what each one draws (curves, labels, bands), and that they save as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.collector.measure import NS_PER_S, Recorder, StageMeasure
from harness.results.plots import (
    Band,
    HoldRate,
    lag_over_time_figure,
    percentile_spectrum_figure,
    rate_figure,
    resources_figure,
    save,
    spectrum,
    stage_spectra_figure,
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


def test_figures_draw_what_they_are_given(tmp_path: Path) -> None:
    one, two = _stage("stage-1", 0, 0.001), _stage("stage-2", 10, 0.02)
    limits = {"P95": 50.0, "P99": 100.0}
    spectra = stage_spectra_figure(
        {"stage-1": one.histograms["total"], "stage-2": two.histograms["total"]}, "t", limits
    )
    assert [line.get_label() for line in spectra.axes[0].get_lines()][:2] == ["stage-1", "stage-2"]
    series = {
        name: [(float(s - T0 // NS_PER_S), h) for m in (one, two)
               for s, h in m.interval_histograms(name)]
        for name in ("total", "total_uncorrected")
    }  # fmt: skip
    bands = [Band("stage-1", 0, 10), Band("stage-2", 10, 20)]
    over_time = lag_over_time_figure(series, bands, [(15.0, "rollback")], limits)
    axes = over_time.axes[0]
    assert axes.get_xlabel() == "time since run start (s)" and axes.get_ylabel() == "lag (ms)"
    assert len(axes.patches) == 2  # one band per hold
    rows = [
        {"t_ns": T0 + i * NS_PER_S, "rss_bytes": 2e9 + i * 1e7, "feed_mbps": 20 + i % 3,
         "kafka_mbps": 30.0}
        for i in range(20)
    ]  # fmt: skip
    resources = resources_figure(rows, bands=bands, limits={"rss_mb": 4000.0, "mbps": 50.0})
    rate = rate_figure(
        [(float(i), 2000) for i in range(20)],
        [HoldRate(bands[0], 2000.0, 1990.0), HoldRate(bands[1], 4000.0, None)],
    )
    labels = {line.get_label() for line in rate.axes[0].get_lines()}
    assert {"received per second", "scheduled", "sent (feed_sim)"} <= labels
    hold = percentile_spectrum_figure(two.histograms, "stage-2 (100 symbols)", limits)
    for name, figure in (("spectra", spectra), ("time", over_time), ("res", resources),
                         ("rate", rate), ("hold", hold)):  # fmt: skip
        data = save(figure, tmp_path / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, name


def test_spectrum_reaches_the_tail() -> None:
    stage = _stage("stage-1", 0, 0.02)
    xs, values = spectrum(stage.histograms["total"])
    assert xs[0] == 1.0 and xs[-1] >= 10_000  # up to P99.99 for 20,000 values
    assert values[-1] >= 20.0  # the 20 ms mode is in the tail (ms)
    assert np.all(np.diff(values) >= 0)


def test_empty_inputs_still_plot(tmp_path: Path) -> None:
    assert save(resources_figure([]), tmp_path / "r.png").stat().st_size > 0
    assert save(percentile_spectrum_figure({}, "empty"), tmp_path / "s.png").stat().st_size > 0
