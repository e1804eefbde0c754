"""NBBO spreads: tiered by price and liquidity, wider after the open and outside regular hours.

Owns how wide each symbol's NBBO is (market-facts 4.3): about 1 tick for cheap liquid names,
0.5-2 bps for liquid mega caps, 2-5 bps for the median name, 5-15 bps for the least liquid and
dollars for four-digit prices; the first 30 minutes are about 1.7-2x midday and the close is a
little tighter. Each symbol gets its own level (no two symbols share one spread).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from feed_sim.generate.universe import SymbolSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TICK = 0.01
REFERENCE_ADV_DOLLARS = 4e8
REFERENCE_BPS = 3.5
ADV_ELASTICITY = -0.45
TIER_FACTOR = {1: 0.85, 2: 1.0, 3: 1.25}
EXTENDED_HOURS_FACTOR = 4.0


def base_spread_ticks(rng: np.random.Generator, spec: SymbolSpec) -> float:
    """The symbol's typical midday NBBO spread in (fractional) ticks, at least one tick."""
    bps = REFERENCE_BPS * (max(spec.adv_dollars, 1.0) / REFERENCE_ADV_DOLLARS) ** ADV_ELASTICITY
    bps *= TIER_FACTOR.get(spec.tier, 1.0) * float(np.exp(0.25 * rng.standard_normal()))
    return max(1.0, float(bps) * 1e-4 * spec.price / TICK)


def intraday_factor(seconds_from_open: FloatArray, session_seconds: float) -> FloatArray:
    """Spread multiplier by time of day: ~1.9x at the open decaying over ~30 min, 0.85x into the
    close, EXTENDED_HOURS_FACTOR outside regular hours."""
    t = seconds_from_open
    factor = 1.0 + 0.9 * np.exp(-np.maximum(t, 0.0) / 600.0)
    factor -= 0.15 * np.clip((t - (session_seconds - 1800.0)) / 1800.0, 0.0, 1.0)
    outside = (t < 0) | (t >= session_seconds)
    return np.asarray(np.where(outside, EXTENDED_HOURS_FACTOR, factor), dtype=np.float64)


def spread_multiplier(factor: FloatArray, noise: FloatArray) -> FloatArray:
    """Time-of-day factor x log-normal noise (`noise`: a unit-variance persistent series)."""
    return np.asarray(factor * np.exp(0.35 * noise - 0.06), dtype=np.float64)


def spread_ticks(rng: np.random.Generator, base: float, multiplier: FloatArray) -> IntArray:
    """Integer spreads in ticks for quotes: base x multiplier, stochastically rounded, never
    below one tick."""
    raw = base * multiplier
    ticks = np.floor(raw + rng.random(len(raw), dtype=np.float32)).astype(np.int64)
    return np.maximum(ticks, 1)
