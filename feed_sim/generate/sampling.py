"""Fast vectorised draws used by the generator's hot paths (tens of millions of draws a day).

Owns the two samplers that dominate generation time: categorical draws from fixed weights (an
alias-free lookup table indexed by small random integers) and geometric draws (inverse CDF on
single-precision uniforms).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
TABLE_SIZE = 1 << 14


class Categorical:
    """Draws from `values` with probabilities proportional to `weights` (resolution 2**-14)."""

    def __init__(self, values: npt.ArrayLike, weights: npt.ArrayLike) -> None:
        vals = np.asarray(values, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float64)
        edges = np.round(np.cumsum(w) / w.sum() * TABLE_SIZE).astype(np.int64)
        counts = np.diff(np.concatenate([[0], edges]))
        self.table: IntArray = np.repeat(vals, counts)

    def draw(self, rng: np.random.Generator, n: int) -> IntArray:
        """n draws."""
        return self.table[rng.integers(0, TABLE_SIZE, n, dtype=np.uint32)]


@cache
def _geometric_table(mean: float) -> Categorical:
    p = 1.0 / max(mean, 1.0)
    if p >= 1.0:
        return Categorical([1], [1.0])
    top = int(np.ceil(np.log(0.5 / TABLE_SIZE) / np.log1p(-p)))
    k = np.arange(1, top + 1)
    return Categorical(k, p * (1.0 - p) ** (k - 1))


def geometric(rng: np.random.Generator, mean: float | npt.NDArray[np.float64], n: int) -> IntArray:
    """n draws on 1, 2, ... with the given mean (one scalar, or one per draw taking few
    distinct values); the tail beyond probability 2**-15 is cut."""
    if np.ndim(mean) == 0:
        return _geometric_table(round(float(mean), 3)).draw(rng, n)
    means = np.asarray(mean, dtype=np.float64)
    out = np.empty(n, dtype=np.int64)
    for value in np.unique(means):
        where = np.flatnonzero(means == value)
        out[where] = _geometric_table(round(float(value), 3)).draw(rng, len(where))
    return out
