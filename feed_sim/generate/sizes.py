"""Trade and quote sizes in shares.

Owns how big prints and quotes are (market-facts 4.6): about 45-55% odd lots (more for higher
prices) with 1- and 5-share modes, round lots clustered at exactly one lot and at 2, 3, 5 and 10
lots, some mixed lots and a heavy right tail; lots follow the MDI round-lot tiers by price.
Quote sizes are whole round lots, in shares.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from feed_sim.generate.sampling import Categorical, geometric

IntArray = npt.NDArray[np.int64]

ODD_MODES = (1, 5, 10, 20, 25, 50)
ODD_MODE_PROBS = (0.17, 0.07, 0.06, 0.03, 0.03, 0.04)
LOT_MULTIPLES = (1, 2, 3, 4, 5, 10)
LOT_MULTIPLE_PROBS = (0.74, 0.07, 0.03, 0.015, 0.025, 0.012)
TAIL_PROB = 0.012
"""Round-lot prints of a heavy-tailed number of lots (blocks)."""


def odd_lot_share(price: float) -> float:
    """Expected share of odd-lot prints: 0.45 up to $100, rising to 0.55 at $1,000 and above."""
    return 0.45 + 0.10 * float(np.clip(np.log10(max(price, 1.0) / 100.0), 0.0, 1.0))


_ODD_MODES = Categorical([*ODD_MODES, 0], [*ODD_MODE_PROBS, 1.0 - sum(ODD_MODE_PROBS)])
_LOT_MULTIPLES = Categorical(
    [*LOT_MULTIPLES, -1, -2],
    [*LOT_MULTIPLE_PROBS, TAIL_PROB, 1.0 - sum(LOT_MULTIPLE_PROBS) - TAIL_PROB],
)


def _odd_sizes(rng: np.random.Generator, n: int, lot: int) -> IntArray:
    out = _ODD_MODES.draw(rng, n)
    free = np.flatnonzero((out <= 0) | (out >= lot))
    spread = np.exp(rng.random(len(free)) * np.log(max(lot, 2)))
    out[free] = np.floor(spread).astype(np.int64)
    return np.clip(out, 1, max(lot - 1, 1))


def _lot_sizes(rng: np.random.Generator, n: int, lot: int) -> IntArray:
    k = _LOT_MULTIPLES.draw(rng, n)
    tail = np.flatnonzero(k == -1)
    k[tail] = np.minimum(rng.zipf(1.8, len(tail)) * 5, 2_000)
    out = k * lot
    mixed = np.flatnonzero(k == -2)
    extra = np.minimum(rng.pareto(1.5, len(mixed)), 100.0)
    sizes = np.floor(lot * (1.0 + extra)).astype(np.int64)
    out[mixed] = sizes + (sizes % lot == 0)
    return out


def trade_sizes(rng: np.random.Generator, n: int, price: float, lot: int) -> IntArray:
    """n print sizes in shares for a symbol at `price` with round lot `lot`."""
    out = _lot_sizes(rng, n, lot)
    odd = np.flatnonzero(rng.random(n) < (odd_lot_share(price) if lot > 1 else 0.0))
    out[odd] = _odd_sizes(rng, len(odd), lot)
    return out


def quote_sizes(rng: np.random.Generator, n: int, lot: int, mean_lots: float) -> IntArray:
    """n displayed sizes in shares: whole round lots, geometric with mean about `mean_lots`."""
    return lot * geometric(rng, mean_lots, n)
