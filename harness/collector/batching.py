"""Buffering of small numpy batches until a vectorised step is worth its fixed cost.

numpy's per-call cost (a few us a call, tens of calls a step) dominates the collector's
per-message cost below a few thousand records, and one Kafka poll at 50k msg/s returns about
a thousand. `PendingColumns` keeps batches of equal-length columns until `flush_at` records
and hands them back joined, in arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


class PendingColumns:
    """Batches of columns (each batch: a sequence of same-length int64 arrays)."""

    def __init__(self, flush_at: int) -> None:
        self.flush_at = flush_at
        self._batches: list[Sequence[I64]] = []
        self._records = 0

    def add(self, columns: Sequence[I64], records: int) -> bool:
        """Keep one batch (its arrays, not copies); True when `flush_at` records are held."""
        self._batches.append(columns)
        self._records += records
        return self._records >= self.flush_at

    def take(self) -> tuple[I64, ...] | None:
        """Every held batch joined column by column (None when empty); starts anew."""
        if not self._batches:
            return None
        batches, self._batches, self._records = self._batches, [], 0
        if len(batches) == 1:
            return tuple(batches[0])
        return tuple(np.concatenate(column) for column in zip(*batches, strict=True))
