"""Bursty event arrivals: a doubly-stochastic (Cox) Poisson process with clustered children.

Owns *when* events happen. The intensity of every symbol is its U-shaped baseline times a
log-normal modulation (a slow component shared by the market, a slow and a fast idiosyncratic
component), which makes per-second counts overdispersed. Trades additionally arrive in clusters
(sweeps printing across venues and price levels in the same millisecond) whose heavy-tailed
sizes give per-second variance/mean well above 1 even for thin names (market-facts 4.2, 4.8).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
NS = 1_000_000_000

# (time constant in seconds, log-sd, share of the log-variance that is market-wide)
MODULATION_COMPONENTS: tuple[tuple[float, float, float], ...] = (
    (300.0, 0.25, 0.3),
    (20.0, 0.75, 0.2),
    (2.0, 0.6, 0.0),
)
SINGLE_PROB = 0.7
"""Share of clusters that are a single print."""
MAX_CLUSTER = 80


def ar1_paths(rng: np.random.Generator, n_steps: int, n_series: int, tau: float) -> FloatArray:
    """Unit-variance AR(1) paths, one column per series, started in the stationary law."""
    a = float(np.exp(-1.0 / tau))
    shocks = rng.standard_normal((n_steps, n_series)) * np.sqrt(1.0 - a * a)
    if n_steps:
        shocks[0] = rng.standard_normal(n_series)
    # Blocked scan: inside a block x[b0 + j] = a**j * cumsum(a**-i * e[b0 + i]) + a**(j + 1) *
    # x[b0 - 1]; blocks are short enough that a**-j stays finite.
    block = max(1, min(1024, int(300 * tau)))
    j = np.arange(block, dtype=np.float64)
    down, up = (a**j)[:, None], (a**-j)[:, None]
    out = np.empty((n_steps, n_series))
    carry = np.zeros(n_series)
    for b0 in range(0, n_steps, block):
        m = min(block, n_steps - b0)
        part = np.cumsum(shocks[b0 : b0 + m] * up[:m], axis=0)
        part *= down[:m]
        part += (a * carry) * down[:m]
        out[b0 : b0 + m] = part
        carry = part[-1]
    return out


def intensity_modulation(rng: np.random.Generator, n_seconds: int, n_symbols: int) -> FloatArray:
    """Mean-one log-normal multipliers per second and symbol, shape (n_seconds, n_symbols).

    Components with a market share are common to all symbols, so activity bursts are correlated
    across the universe as they are in real markets.
    """
    log_m = np.zeros((n_seconds, n_symbols))
    total_var = 0.0
    for tau, sd, market in MODULATION_COMPONENTS:
        idio = ar1_paths(rng, n_seconds, n_symbols, tau)
        if market > 0:
            common = ar1_paths(rng, n_seconds, 1, tau)
            idio = np.sqrt(market) * common + np.sqrt(1.0 - market) * idio
        log_m += sd * idio
        total_var += sd * sd
    return np.exp(log_m - total_var / 2.0)


def poisson_times(rng: np.random.Generator, rate_per_second: FloatArray, start_ns: int) -> IntArray:
    """Sorted event times (ns) of a Poisson process piecewise constant on the one-second grid."""
    counts = rng.poisson(rate_per_second)
    seconds = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    frac = (rng.random(len(seconds)) * NS).astype(np.int64)
    times = start_ns + seconds * NS + frac
    times.sort()
    return times


def cluster_sizes(rng: np.random.Generator, n: int) -> IntArray:
    """Prints per cluster: SINGLE_PROB singles, else a heavy (Zipf-like) tail up to MAX_CLUSTER."""
    multi = rng.random(n) >= SINGLE_PROB
    tail = np.minimum(rng.zipf(1.9, n), MAX_CLUSTER - 1)
    return np.where(multi, 1 + tail, 1).astype(np.int64)


def mean_cluster_size(rng_seed: int = 0, n: int = 200_000) -> float:
    """The mean of cluster_sizes (estimated once, deterministic)."""
    return float(cluster_sizes(np.random.default_rng(rng_seed), n).mean())


def expand_clusters(
    rng: np.random.Generator, parent_ns: IntArray, sizes: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Child print times for clusters: (times, cluster index, position within the cluster).

    Children of one cluster follow each other by 0 (same timestamp, half the time) or a few
    microseconds, so most of a sweep shares its millisecond.
    """
    cluster = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    starts = np.cumsum(sizes) - sizes
    position = np.arange(len(cluster), dtype=np.int64) - starts[cluster]
    gaps = np.where(rng.random(len(cluster)) < 0.5, 0, rng.integers(1_000, 60_000, len(cluster)))
    gaps[position == 0] = 0
    offsets = np.cumsum(gaps)
    offsets -= offsets[starts][cluster]
    return parent_ns[cluster] + offsets, cluster, position
