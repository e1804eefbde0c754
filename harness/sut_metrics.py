"""A SUT's Prometheus metrics: scraped once a second, and the Kafka producer evidence in them.

`MetricsScraper(url)` GETs the SUT's `metrics_url` (Prometheus text format, parsed with
prometheus_client's parser) and returns every numeric sample as `{"name{label="v",...}": value}`
(at most `max_series`), or None when the endpoint did not answer within its timeout. The
sampler calls it once a second and keeps the series with the samples.

`producer_figures()` derives a hold's producer evidence from those series, when the SUT
exports these names (the reference core does, from librdkafka's statistics; any core may):

    kafka_producer_produce_requests_total            counter: ProduceRequests sent
    kafka_producer_records_sent_total                counter: records transmitted
    kafka_producer_queue_time_seconds{quantile=...}  0.5 / 0.99 of the time records waited in
                                                     the producer's partition queues (last window)
    kafka_producer_rtt_seconds{quantile=...}         0.5 / 0.99 of the broker round trip
    kafka_producer_requests_in_flight                requests awaiting a reply now
    kafka_producer_queue_records                     records in the producer's queues now

Requests/s and records per request come from the counters' first and last scrape of the
hold; a quantile over the hold is reported as the median and the max of its 1 s windows (the
windows cannot be merged into one exact percentile).

`dropping_counters()` finds, whatever the core names them, the counters (`*_total`) whose names
say that something was dropped, skipped or failed and that rose during the hold: the SUT's own
account of where records went missing, quoted by the diagnosis of a hold that lost some.
"""

from __future__ import annotations

import statistics
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "kafka_producer_produce_requests_total"
RECORDS = "kafka_producer_records_sent_total"
QUEUE_TIME = "kafka_producer_queue_time_seconds"
RTT = "kafka_producer_rtt_seconds"
IN_FLIGHT = "kafka_producer_requests_in_flight"
QUEUE_RECORDS = "kafka_producer_queue_records"
PRODUCER_METRICS = (REQUESTS, RECORDS, QUEUE_TIME, RTT, IN_FLIGHT, QUEUE_RECORDS)

Scrape = tuple[int, dict[str, float]]
"""(t_ns, series -> value) of one scrape."""


def series_key(name: str, labels: dict[str, str]) -> str:
    """`name{a="1",b="2"}` (labels sorted), or the bare name without labels."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def parse_metrics(text: str, max_series: int = 5000) -> dict[str, float]:
    """Every sample of a Prometheus text document (at most `max_series`); ValueError if the
    text is not Prometheus text."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if len(found) >= max_series:
                return found
            found[series_key(sample.name, dict(sample.labels))] = float(sample.value)
    return found


class MetricsScraper:
    """GETs a Prometheus text endpoint; `errors` counts failed scrapes. `url` may be a callable
    (a SUT whose port is known only once it started; None = not yet, no scrape)."""

    def __init__(
        self,
        url: str | Callable[[], str | None],
        timeout_s: float = 0.5,
        max_series: int = 5000,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.max_series = max_series
        self.errors = 0
        self.last_error = ""

    def __call__(self) -> dict[str, float] | None:
        url = self.url() if callable(self.url) else self.url
        if url is None:
            return None
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                text = response.read().decode("utf-8", errors="replace")
            return parse_metrics(text, self.max_series)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            self.errors += 1
            self.last_error = str(exc)
            return None


DROP_WORDS = ("drop", "discard", "without", "skip", "lost", "error", "fail", "malformed", "gap")
"""Words in a counter's name that say records went missing or wrong."""


def dropping_counters(scrapes: Sequence[Scrape], top: int = 3) -> dict[str, float]:
    """Counters (`*_total`) named for dropping or failing that rose between the hold's first
    and last scrape: name -> increase, the largest `top`."""
    if len(scrapes) < 2:
        return {}
    first, last = scrapes[0][1], scrapes[-1][1]
    rose = {
        name: last[name] - first.get(name, 0.0)
        for name in last
        if name.split("{")[0].endswith("_total")
        and any(word in name for word in DROP_WORDS)
        and last[name] > first.get(name, 0.0)
    }
    return dict(sorted(rose.items(), key=lambda kv: -kv[1])[:top])


def _rate(scrapes: Sequence[Scrape], name: str) -> tuple[float, float] | None:
    """(increase, seconds) of a counter between its first and last scrape (None: < 2)."""
    points = [(t, values[name]) for t, values in scrapes if name in values]
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    return points[-1][1] - points[0][1], (points[-1][0] - points[0][0]) / 1e9


def _windows_ms(scrapes: Sequence[Scrape], key: str) -> list[float]:
    return [values[key] * 1000 for _, values in scrapes if key in values]


def producer_figures(scrapes: Sequence[Scrape]) -> dict[str, Any] | None:
    """The hold's producer evidence (module docstring); None when the SUT exports none of it."""
    if not any(name.split("{")[0] in PRODUCER_METRICS for _, v in scrapes for name in v):
        return None
    figures: dict[str, Any] = {"scrapes": len(scrapes)}
    requests, records = _rate(scrapes, REQUESTS), _rate(scrapes, RECORDS)
    figures["produce_requests_per_s"] = requests[0] / requests[1] if requests else None
    figures["records_per_s"] = records[0] / records[1] if records else None
    figures["records_per_request"] = (
        records[0] / requests[0] if requests and records and requests[0] > 0 else None
    )
    for prefix, name in (("queue_time", QUEUE_TIME), ("rtt", RTT)):
        for quantile, point in (("0.5", "p50"), ("0.99", "p99")):
            windows = _windows_ms(scrapes, series_key(name, {"quantile": quantile}))
            tag = f"{prefix}_{point}_ms"
            figures[tag] = statistics.median(windows) if windows else None
            figures[f"{tag}_max"] = max(windows) if windows else None
    for tag, name in (("requests_in_flight", IN_FLIGHT), ("queue_records", QUEUE_RECORDS)):
        values = [v[name] for _, v in scrapes if name in v]
        figures[f"{tag}_max"] = max(values) if values else None
        figures[f"{tag}_mean"] = statistics.fmean(values) if values else None
    return figures


def gauge_max(scrapes: Sequence[Scrape], name: str) -> float | None:
    """The largest value of a gauge over the hold's scrapes (None: not exported)."""
    values = [v[name] for _, v in scrapes if name in v]
    return max(values) if values else None


SNAPSHOT_PREFIX = "ingest_redis_snapshot_"


def snapshot_figures(scrapes: Sequence[Scrape]) -> dict[str, Any]:
    """The reference core's Redis snapshot figures over a hold (`ingest_redis_snapshot_*`):
    cycles and failed cycles in the hold, the largest write lag (ms) seen, and the largest age
    of the last written cycle (s; grows while Redis is down)."""
    cycles = _rate(scrapes, SNAPSHOT_PREFIX + "cycles_total")
    errors = _rate(scrapes, SNAPSHOT_PREFIX + "errors_total")
    write = gauge_max(scrapes, SNAPSHOT_PREFIX + "write_seconds")
    age = gauge_max(scrapes, SNAPSHOT_PREFIX + "age_seconds")
    return {
        "snapshot_cycles": cycles[0] if cycles else None,
        "snapshot_errors": errors[0] if errors else None,
        "snapshot_write_ms_max": None if write is None else write * 1000,
        "snapshot_age_s_max": age,
    }
