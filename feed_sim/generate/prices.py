"""Efficient (latent mid) price paths: fat-tailed, volatility-clustered, one-factor correlated.

Owns how prices move. Every symbol's log-price on the one-second grid is a market factor plus an
idiosyncratic part, each with Student-t shocks, a slowly mean-reverting stochastic volatility
and rare jumps; the variance follows the intraday U-shape. Calibrated on market-facts 4.4:
open-to-close sigma with a median about 1.3% (close-to-close about 1.5% with the overnight gap),
pairwise correlation about 0.3-0.4, fat-tailed one-minute returns, volatility clustering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from feed_sim.generate.arrivals import ar1_paths
from feed_sim.generate.universe import SymbolSpec

FloatArray = npt.NDArray[np.float64]

TICK = 0.01
DAILY_SIGMA_MEDIAN = 0.013
DAILY_SIGMA_LOG_SD = 0.3
MARKET_SHARE_RANGE = (0.2, 0.45)
"""Share of each symbol's variance explained by the market factor (correlation ~0.35)."""
T_DF = 5.0
SV_TAU_S = 1200.0
SV_LOG_SD = 0.4
JUMPS_PER_DAY = 3.0
JUMP_SD_OF_DAILY = 0.22
OVERNIGHT_GAP_SD = 0.004


@dataclass(frozen=True, slots=True)
class PricePaths:
    """Log-price paths on the one-second grid (row s = start of second s, one row extra at the
    end) and each symbol's opening reference price on the $0.01 grid."""

    log_price: FloatArray
    """Shape (n_seconds + 1, n_symbols), starting at 0."""
    open_price: FloatArray
    daily_sigma: FloatArray


def _unit_shocks(rng: np.random.Generator, shape: tuple[int, int], var_w: FloatArray) -> FloatArray:
    """Per-second shocks whose variance sums to about 1 over a regular day (rows weighted by
    var_w): Student-t diffusion with stochastic volatility plus rare jumps."""
    n_seconds, n_series = shape
    sv = np.exp(SV_LOG_SD * ar1_paths(rng, n_seconds, n_series, SV_TAU_S) - SV_LOG_SD**2)
    jump_var = JUMPS_PER_DAY * JUMP_SD_OF_DAILY**2
    t = rng.standard_t(T_DF, shape) / np.sqrt(T_DF / (T_DF - 2.0))
    shocks = t * sv * np.sqrt(var_w * (1.0 - jump_var))[:, None]
    jumps = rng.random(shape) < JUMPS_PER_DAY / 23_400.0
    shocks[jumps] += rng.standard_normal(int(jumps.sum())) * JUMP_SD_OF_DAILY
    return np.asarray(shocks, dtype=np.float64)


def generate_paths(
    rng: np.random.Generator,
    symbols: Sequence[SymbolSpec],
    variance_weights: FloatArray,
) -> PricePaths:
    """Correlated log-price paths for `symbols`; `variance_weights` (per grid second) give the
    intraday variance shape and sum to 1 over the regular session."""
    n = len(symbols)
    n_seconds = len(variance_weights)
    day_vol = float(np.exp(0.25 * rng.standard_normal()))
    sigma = np.clip(
        DAILY_SIGMA_MEDIAN * np.exp(DAILY_SIGMA_LOG_SD * rng.standard_normal(n)), 0.006, 0.05
    )
    market_share = rng.uniform(*MARKET_SHARE_RANGE, n)
    market = _unit_shocks(rng, (n_seconds, 1), variance_weights)
    steps = _unit_shocks(rng, (n_seconds, n), variance_weights)
    steps *= np.sqrt(1.0 - market_share)
    steps += np.sqrt(market_share) * market
    steps *= sigma * day_vol
    log_price = np.zeros((n_seconds + 1, n))
    np.cumsum(steps, axis=0, out=log_price[1:])
    base = np.array([s.price for s in symbols])
    gap = np.exp(OVERNIGHT_GAP_SD * rng.standard_normal(n))
    open_price = np.maximum(np.round(base * gap / TICK), 1.0) * TICK
    return PricePaths(log_price, open_price, sigma * day_vol)


def variance_weights(activity: FloatArray, regular: npt.NDArray[np.bool_]) -> FloatArray:
    """Per-second variance shape: activity**0.7, normalised to sum to 1 over regular hours."""
    w = np.power(np.maximum(activity, 1e-12), 0.7)
    total = w[regular].sum() if regular.any() else w.sum()
    return np.asarray(w / total, dtype=np.float64)


def mid_at(paths: PricePaths, column: int, seconds: FloatArray) -> FloatArray:
    """Latent mid price of one symbol at fractional grid seconds (linear interpolation)."""
    grid = np.arange(paths.log_price.shape[0], dtype=np.float64)
    log_p = np.interp(seconds, grid, paths.log_price[:, column])
    return np.asarray(paths.open_price[column] * np.exp(log_p), dtype=np.float64)
