"""Where prints happen and how they are flagged: market centers, conditions, basis and prices.

Owns the venue mix (IQFeed listed-market IDs, iqfeed-protocol.md 6.1) calibrated on the
suggested 2025-26 mix of market-facts 4.7 (about half of prints on the FINRA TRFs, the rest over
a dozen exchanges), the trade-condition codes consistent with size and session (6.2: 87 odd
lot, 3D intermarket sweep, 17 Form T outside regular hours, 01 regular, the 8A42/4042 crosses)
with the basis for last seen in real IQFeed history (C / O for odd lots / E), and print prices
relative to the NBBO (lit prints at the touch or walking the book, TRF prints at the touch, the
midpoint or with sub-penny price improvement).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from feed_sim.generate.sampling import Categorical

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NTRF, NYSE_TRF = 19, 24
NASDAQ, NYSE = 5, 7
TRF_SHARE = 0.50
"""Target share of prints reported to a TRF (market-facts 4.7: 45-55%)."""
TRF_SPLIT = {NTRF: 0.72, NYSE_TRF: 0.28}
"""Nasdaq vs NYSE TRF, as in the real 2021 IQFeed sample (11,239 vs 4,282 prints)."""
EXCHANGE_WEIGHTS: dict[int, float] = {
    NASDAQ: 13.0,
    NYSE: 7.0,
    11: 6.5,  # NYSE Arca
    26: 6.0,  # Cboe EDGX
    187: 4.0,  # MEMX (id INFERRED, iqfeed-protocol.md 6.1)
    18: 3.5,  # Cboe BZX
    153: 2.5,  # IEX
    28: 1.5,  # Cboe BYX
    25: 1.2,  # Cboe EDGA
    12: 1.2,  # Nasdaq BX
    10: 1.0,  # NYSE National (NSX)
    80: 0.5,  # Nasdaq PSX
    164: 0.5,  # MIAX Pearl Equities or LTSE (id INFERRED)
    8: 0.3,  # NYSE Chicago
    6: 0.3,  # NYSE American
}
EXTENDED_EXCHANGES = (NASDAQ, 11, 26, 18, 187, 25, 28)
"""Exchanges that run pre- and post-market sessions (others print only in regular hours)."""

CONDITIONS = ("01", "87", "3D", "3D87", "17", "8717", "173D", "873D17", "8A42", "4042")
"""Index = odd + 2*sweep + 4*extended; 8 = opening cross, 9 = closing cross."""
BASIS = ("C", "O", "C", "O", "E", "O", "E", "O", "C", "C")
OPEN_CROSS, CLOSE_CROSS = 8, 9


def listing_market(symbol: str) -> int:
    """Listed-market id of the auction venue: a stable pseudo-assignment (about 40% Nasdaq),
    since the symbol file does not carry the listing exchange."""
    digest = hashlib.sha256(symbol.encode()).digest()
    return NASDAQ if digest[0] < 102 else NYSE


_ALL_EXCHANGES = Categorical(list(EXCHANGE_WEIGHTS), list(EXCHANGE_WEIGHTS.values()))
_EXTENDED = Categorical(EXTENDED_EXCHANGES, [EXCHANGE_WEIGHTS[i] for i in EXTENDED_EXCHANGES])


def exchange_centers(rng: np.random.Generator, n: int, extended: BoolArray) -> IntArray:
    """Exchange market centers (no TRF), restricted to extended-hours venues where flagged."""
    out = _ALL_EXCHANGES.draw(rng, n)
    if extended.any():
        out[extended] = _EXTENDED.draw(rng, int(extended.sum()))
    return out


def trade_centers(
    rng: np.random.Generator, sweep: BoolArray, extended: BoolArray
) -> tuple[IntArray, BoolArray]:
    """Market center of every print and whether it is a TRF report.

    Sweep children print on exchanges; the others go to a TRF with the probability that makes
    the overall TRF share TRF_SHARE.
    """
    n = len(sweep)
    sweep_share = float(sweep.mean()) if n else 0.0
    p_trf = min(0.9, TRF_SHARE / max(1.0 - sweep_share, 1e-9))
    trf = ~sweep & (rng.random(n) < np.where(extended, min(0.95, p_trf + 0.1), p_trf))
    centers = exchange_centers(rng, n, extended)
    trf_ids = np.where(rng.random(n) < TRF_SPLIT[NTRF], NTRF, NYSE_TRF)
    return np.where(trf, trf_ids, centers), trf


def condition_index(odd: BoolArray, sweep: BoolArray, extended: BoolArray) -> IntArray:
    """Index into CONDITIONS / BASIS for continuous-trading prints."""
    return odd.astype(np.int64) + 2 * sweep.astype(np.int64) + 4 * extended.astype(np.int64)


def trade_prices(
    rng: np.random.Generator,
    buy: BoolArray,
    bid: FloatArray,
    ask: FloatArray,
    trf: BoolArray,
    level: IntArray,
    tick: float = 0.01,
) -> tuple[FloatArray, IntArray]:
    """Print prices (4 decimals) and aggressor codes (1 buy, 2 sell, 3 neither, 0 unknown).

    Lit prints take the touch, `level` ticks through it for sweeps, 8% at the midpoint (hidden
    midpoint orders). TRF prints: 35% at the touch, 20% at the midpoint, the rest improved by a
    sub-penny amount up to half the spread (retail wholesalers).
    """
    n = len(buy)
    touch = np.where(buy, ask + level * tick, bid - level * tick)
    mid = (bid + ask) / 2.0
    u = rng.random(n)
    half = (ask - bid) / 2.0
    improve = np.minimum(rng.uniform(0.0001, 0.005, n), half)
    improved = np.where(buy, ask - improve, bid + improve)
    lit_mid = ~trf & (u < 0.08) & (level == 0)
    trf_mid = trf & (u < 0.20)
    trf_improved = trf & (u >= 0.55)
    price = np.where(lit_mid | trf_mid, mid, np.where(trf_improved, improved, touch))
    aggressor = np.where(buy, 1, 2)
    aggressor = np.where(trf, 0, aggressor)
    aggressor = np.where(lit_mid | trf_mid, 3, aggressor)
    return np.round(price, 4).astype(np.float64), aggressor.astype(np.int64)
