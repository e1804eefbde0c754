"""Nasdaq Level II market-maker rows: which real MPIDs quote a symbol and their quote updates.

Owns the Level 2 side of the tape. Every symbol shows NSDQ (Nasdaq's unattributed interest, which
follows the NBBO), a handful of other exchange MPIDs, and 10-40 market makers drawn without
replacement from the real MPIDs that posted attributed Nasdaq orders (ITCH 'F', March 2025,
`data/nasdaq_itch_F_orders_by_mpid_2025-03.csv`), weighted by that activity (market-facts 3).
Each row quotes its own bid and ask at or behind the NBBO in force when it updates.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from feed_sim.generate.sampling import Categorical, geometric

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DATA = Path(__file__).resolve().parent / "data"
F_ORDERS_FILE = DATA / "nasdaq_itch_F_orders_by_mpid_2025-03.csv"
MPIDLIST_FILE = DATA / "nasdaqtrader_mpidlist_2025-12-02.txt"

ANONYMOUS = "NSDQ"
OTHER_EXCHANGES: dict[str, float] = {
    "ARCX": 6.0,
    "EDGX": 5.0,
    "BATS": 4.0,
    "MEMX": 3.5,
    "IEXG": 2.5,
    "BATY": 1.5,
    "EDGA": 1.5,
    "BOSX": 1.0,
    "CINN": 0.8,
    "NQPX": 0.5,
    "EPRL": 0.5,
    "CHXE": 0.3,
    "LTSE": 0.2,
}
MM_COUNT = {1: (25, 40), 2: (15, 30), 3: (10, 20)}
DELETE_PROB = 0.03
NSDQ_FOLLOW = 0.6
"""Probability that an NBBO price change is echoed by an NSDQ row update."""


@cache
def mpid_directory() -> frozenset[str]:
    """Every MPID in the Nasdaq Trader participant directory."""
    with MPIDLIST_FILE.open(encoding="utf-8") as fh:
        return frozenset(line.split("|", 1)[0] for line in fh if "|" in line)


@cache
def market_maker_ranking() -> tuple[tuple[str, int], ...]:
    """(MPID, attributed order count) of the real Level II quoters, most active first."""
    with F_ORDERS_FILE.open(encoding="utf-8") as fh:
        rows = [(r["mpid"], int(r["f_order_count"])) for r in csv.DictReader(fh)]
    known = mpid_directory()
    return tuple(row for row in rows if row[0] in known and row[1] > 0)


@dataclass(frozen=True, slots=True)
class BookRows:
    """The Level II rows of one symbol and how each behaves."""

    mmids: tuple[str, ...]
    activity: FloatArray
    """Relative update rate of each row."""
    at_touch: FloatArray
    """Probability that an update joins the NBBO."""
    depth_lots: FloatArray
    """Mean displayed size in round lots."""


def choose_rows(rng: np.random.Generator, tier: int) -> BookRows:
    """NSDQ, 4-8 other exchanges and 10-40 market makers for a symbol of `tier`."""
    ranking = market_maker_ranking()
    counts = np.array([c for _, c in ranking], dtype=np.float64)
    low, high = MM_COUNT.get(tier, MM_COUNT[3])
    k = min(int(rng.integers(low, high + 1)), len(ranking))
    picked = rng.choice(len(ranking), k, replace=False, p=counts / counts.sum())
    picked.sort()
    ex_names = tuple(OTHER_EXCHANGES)
    ex_w = np.array([OTHER_EXCHANGES[m] for m in ex_names])
    n_ex = int(rng.integers(4, 9))
    ex_idx = np.sort(rng.choice(len(ex_names), n_ex, replace=False, p=ex_w / ex_w.sum()))
    mm_strength = np.sqrt(counts[picked] / counts.max())
    mmids = (ANONYMOUS, *(ex_names[i] for i in ex_idx), *(ranking[i][0] for i in picked))
    activity = np.concatenate([[8.0], 1.0 + ex_w[ex_idx] / 2.0, 0.4 + 3.0 * mm_strength])
    at_touch = np.concatenate([[0.8], np.full(n_ex, 0.4), 0.1 + 0.4 * mm_strength])
    lots = np.concatenate([[5.0], np.full(n_ex, 3.0), np.full(k, 1.5)])
    return BookRows(mmids, activity, at_touch, lots)


@dataclass(frozen=True, slots=True)
class DepthColumns:
    """Level II updates of one symbol, columnar, sorted by time."""

    mmids: tuple[str, ...]
    ts: IntArray
    row: IntArray
    side: IntArray
    """0 = bid ("B"), 1 = ask ("A")."""
    delete: npt.NDArray[np.bool_]
    price: FloatArray
    size: IntArray


def depth_updates(
    rng: np.random.Generator,
    rows: BookRows,
    random_ts: IntArray,
    quote_ts: IntArray,
    bid_ticks: IntArray,
    ask_ticks: IntArray,
    spread_scale: float,
    lot: int,
    tick: float = 0.01,
) -> DepthColumns:
    """Depth events: an opening snapshot of every row, NSDQ following every NBBO price change,
    and updates (a few deletes) of random rows at `random_ts`; prices at or behind the NBBO."""
    n_rows = len(rows.mmids)
    snap_ts = quote_ts[0] + 1_000 * np.arange(2 * n_rows, dtype=np.int64)
    snap_row = np.repeat(np.arange(n_rows, dtype=np.int64), 2)
    snap_side = np.tile(np.array([0, 1], dtype=np.int64), n_rows)
    bid_moved = (
        np.flatnonzero((np.diff(bid_ticks) != 0) & (rng.random(len(bid_ticks) - 1) < NSDQ_FOLLOW))
        + 1
    )
    ask_moved = (
        np.flatnonzero((np.diff(ask_ticks) != 0) & (rng.random(len(ask_ticks) - 1) < NSDQ_FOLLOW))
        + 1
    )
    follow_ts = np.concatenate([quote_ts[bid_moved], quote_ts[ask_moved]]) + 1_000
    follow_side = np.concatenate([np.zeros(len(bid_moved)), np.ones(len(ask_moved))])
    rand_row = Categorical(np.arange(n_rows), rows.activity).draw(rng, len(random_ts))
    ts = np.concatenate([snap_ts, follow_ts, random_ts])
    row = np.concatenate([snap_row, np.zeros(len(follow_ts), dtype=np.int64), rand_row])
    side = np.concatenate([snap_side, follow_side, rng.integers(0, 2, len(random_ts))])
    side = side.astype(np.int64)
    delete = np.zeros(len(ts), dtype=np.bool_)
    pulled = (rand_row != 0) & (rng.random(len(random_ts)) < DELETE_PROB)
    delete[len(ts) - len(random_ts) :] = pulled
    order = np.argsort(ts, kind="stable")
    ts, row, side, delete = ts[order], row[order], side[order], delete[order]
    at = np.clip(np.searchsorted(quote_ts, ts, side="right") - 1, 0, None)
    behind = rng.random(len(ts)) >= rows.at_touch[row]
    offset = np.where(behind, np.ceil(geometric(rng, 2.5, len(ts)) * spread_scale), 0)
    price_ticks = np.where(side == 0, bid_ticks[at] - offset, ask_ticks[at] + offset)
    price_ticks = np.maximum(price_ticks, 1)
    size = lot * geometric(rng, rows.depth_lots[row], len(ts))
    size = np.where(delete, 0, size)
    price = np.round(price_ticks * tick, 2)
    return DepthColumns(rows.mmids, ts, row, side, delete, price, size)
