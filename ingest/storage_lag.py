"""The storage hop: Kafka append -> row visible in ClickHouse, measured by the writer.

Owns the writer's histograms (contract 6 layout, microseconds):

- `storage`: per record, the time its batch's insert returned (rows are visible to queries
  once a synchronous insert returns) minus the record's Kafka timestamp, which is the broker's
  append time on LogAppendTime topics (whole milliseconds, so a value is up to 1 ms high);
- `wait`: per record, when its batch's insert started minus its append time: the broker's
  fetch path, the consumer's queue and the writer's batch (a batch is written `batch_ms` after
  its first record at the latest, so beyond that it is the fetch);
- `insert`: per batch, how long the insert itself took (storage = wait + insert).

Besides the since-start histograms there are WINDOWS: a caller (the harness) opens a window
with a label and a start time and closes it with an end time; a record counts in a window when
its append time falls inside it (so a hold gets its own records, however late they are
written). `take(label)` hands a window's figures over and forgets it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

from contracts.hdr import new_histogram, record_many
from ingest.metrics import quantile_values

NS_PER_US = 1000


@dataclass
class LagWindow:
    """The storage figures of records appended in [start_ns, end_ns)."""

    start_ns: int
    end_ns: int | None = None
    storage: HdrHistogram = field(default_factory=new_histogram)
    wait: HdrHistogram = field(default_factory=new_histogram)
    insert: HdrHistogram = field(default_factory=new_histogram)
    batches: int = 0
    clamped: int = 0

    def to_json(self) -> dict[str, Any]:
        """Both histograms encoded (HdrHistogram's compressed base64) and the batch count."""
        return {
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "storage": self.storage.encode().decode("ascii"),
            "wait": self.wait.encode().decode("ascii"),
            "insert": self.insert.encode().decode("ascii"),
            "records": int(self.storage.get_total_count()),
            "batches": self.batches,
            "clamped": self.clamped,
        }


class StorageLag:
    """Storage-hop histograms since start and per open window; safe across threads."""

    def __init__(self) -> None:
        self.since_start = LagWindow(start_ns=0)
        self._windows: dict[str, LagWindow] = {}
        self._lock = threading.Lock()

    def observe_batch(
        self,
        append_ns: npt.NDArray[np.int64],
        insert_started_ns: int,
        visible_ns: int,
    ) -> None:
        """One written batch: its records' append times, when its insert started and when it
        returned (the rows visible)."""
        if not append_ns.size:
            return
        lags_us = (visible_ns - append_ns) // NS_PER_US
        wait_us = (insert_started_ns - append_ns) // NS_PER_US
        insert_us = np.array([(visible_ns - insert_started_ns) // NS_PER_US], dtype=np.int64)
        with self._lock:
            self._record(self.since_start, lags_us, wait_us, insert_us)
            for window in self._windows.values():
                inside = append_ns >= window.start_ns
                if window.end_ns is not None:
                    inside &= append_ns < window.end_ns
                if inside.any():
                    self._record(window, lags_us[inside], wait_us[inside], insert_us)

    @staticmethod
    def _record(
        window: LagWindow,
        lags_us: npt.NDArray[np.int64],
        wait_us: npt.NDArray[np.int64],
        insert_us: npt.NDArray[np.int64],
    ) -> None:
        window.clamped += record_many(window.storage, lags_us)
        record_many(window.wait, wait_us)
        record_many(window.insert, insert_us)
        window.batches += 1

    def open(self, label: str, start_ns: int) -> None:
        """Start counting records appended from `start_ns` under `label` (a reopen restarts)."""
        with self._lock:
            self._windows[label] = LagWindow(start_ns=start_ns)

    def close(self, label: str, end_ns: int) -> None:
        """Records appended from `end_ns` on no longer count in `label`; KeyError if unknown."""
        with self._lock:
            self._windows[label].end_ns = end_ns

    def take(self, label: str) -> dict[str, Any] | None:
        """The window's figures (`LagWindow.to_json`), removed; None if it was never opened."""
        with self._lock:
            window = self._windows.pop(label, None)
        return None if window is None else window.to_json()

    def quantiles_us(self) -> dict[str, dict[float, int]]:
        """Quantiles of the since-start histograms (for /metrics)."""
        with self._lock:
            return {
                "storage": quantile_values(self.since_start.storage),
                "wait": quantile_values(self.since_start.wait),
                "insert": quantile_values(self.since_start.insert),
            }
