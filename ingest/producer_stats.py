"""librdkafka statistics -> the few producer figures the reference core exports.

Owns turning one statistics document (the JSON librdkafka hands to `stats_cb` every
`statistics.interval.ms`; fields as in librdkafka's STATISTICS.md) into a small, immutable
`StatisticsDigest`, and merging the figures of several producers (`a + b`). Only these are
kept, never the document (with 3 topics x 495 partitions it is ~1 MB of JSON):

- `produce_requests`: ProduceRequests sent, sum of `brokers[*].req["Produce"]` (cumulative);
- `records_sent`: records transmitted to the brokers, top-level `txmsgs` (cumulative; a
  retried record counts again);
- `queue_time`: time in the producer's partition queues, `brokers[*].int_latency`, and
  `rtt`: the broker round trip, `brokers[*].rtt`. Both are librdkafka rolling windows in
  microseconds over the last statistics interval; their P50 and P99 are the max over the
  brokers (and, merged, over the producers). A window with no sample (`cnt` 0: the bootstrap
  pseudo-brokers, nodeid -1, and a broker without a request in the interval) is skipped, and
  with none left the quantiles are unknown (None), not 0;
- `requests_in_flight`: requests awaiting a reply now, sum of `brokers[*].waitresp_cnt`;
- `queue_records`: records in the producer's queues now, top-level `msg_cnt`;
- the idempotent producer's state and id (`eos.idemp_state`, `eos.producer_id`).

Imports nothing from the rest of `ingest`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class WindowQuantiles:
    """P50 and P99 (us) of a librdkafka rolling window (the last statistics interval)."""

    p50_us: int
    p99_us: int

    def __or__(self, other: WindowQuantiles) -> WindowQuantiles:
        """The larger of each quantile (windows of several brokers or producers)."""
        return WindowQuantiles(max(self.p50_us, other.p50_us), max(self.p99_us, other.p99_us))


def _either(a: WindowQuantiles | None, b: WindowQuantiles | None) -> WindowQuantiles | None:
    if a is None:
        return b
    return a if b is None else a | b


@dataclass(frozen=True)
class ProducerFigures:
    """One producer's figures from its latest statistics, or several producers' merged (`+`).

    Counters and gauges add up; the window quantiles take the max (None: no sample)."""

    produce_requests: int = 0
    records_sent: int = 0
    requests_in_flight: int = 0
    queue_records: int = 0
    queue_time: WindowQuantiles | None = None
    rtt: WindowQuantiles | None = None

    def __add__(self, other: ProducerFigures) -> ProducerFigures:
        return ProducerFigures(
            produce_requests=self.produce_requests + other.produce_requests,
            records_sent=self.records_sent + other.records_sent,
            requests_in_flight=self.requests_in_flight + other.requests_in_flight,
            queue_records=self.queue_records + other.queue_records,
            queue_time=_either(self.queue_time, other.queue_time),
            rtt=_either(self.rtt, other.rtt),
        )


@dataclass(frozen=True)
class StatisticsDigest:
    """What the core keeps of one producer's statistics document."""

    figures: ProducerFigures
    idempotence_state: str | None = None
    producer_id: int | None = None


def merged(figures: Iterable[ProducerFigures | None]) -> ProducerFigures | None:
    """The sum of the known figures; None when no producer has reported yet."""
    total: ProducerFigures | None = None
    for one in figures:
        if one is not None:
            total = one if total is None else total + one
    return total


def parse_statistics(text: str | bytes) -> StatisticsDigest:
    """Digest one librdkafka statistics document (parsed once; only the brokers are walked)."""
    doc = orjson.loads(text)
    requests = in_flight = 0
    queue_time: WindowQuantiles | None = None
    rtt: WindowQuantiles | None = None
    brokers: Mapping[str, Any] = doc.get("brokers") or {}
    for broker in brokers.values():
        requests += int((broker.get("req") or {}).get("Produce", 0))
        in_flight += int(broker.get("waitresp_cnt", 0))
        queue_time = _either(queue_time, _window(broker.get("int_latency")))
        rtt = _either(rtt, _window(broker.get("rtt")))
    eos: Mapping[str, Any] = doc.get("eos") or {}
    producer_id = eos.get("producer_id")
    return StatisticsDigest(
        ProducerFigures(
            produce_requests=requests,
            records_sent=int(doc.get("txmsgs", 0)),
            requests_in_flight=in_flight,
            queue_records=int(doc.get("msg_cnt", 0)),
            queue_time=queue_time,
            rtt=rtt,
        ),
        idempotence_state=eos.get("idemp_state"),
        producer_id=None if producer_id is None else int(producer_id),
    )


def _window(window: Mapping[str, Any] | None) -> WindowQuantiles | None:
    """A window's P50/P99, or None when it sampled nothing (librdkafka then reports 0s)."""
    if not window or int(window.get("cnt", 0)) <= 0:
        return None
    return WindowQuantiles(int(window["p50"]), int(window["p99"]))
