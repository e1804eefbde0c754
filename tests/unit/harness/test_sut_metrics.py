"""harness.sut_metrics: scraping a SUT's Prometheus text and its Kafka producer evidence."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.sut_metrics import (
    MetricsScraper,
    dropping_counters,
    gauge_max,
    parse_metrics,
    producer_figures,
    snapshot_figures,
)

TEXT = """# HELP kafka_producer_produce_requests_total ProduceRequests sent
# TYPE kafka_producer_produce_requests_total counter
kafka_producer_produce_requests_total {requests}
# TYPE kafka_producer_records_sent_total counter
kafka_producer_records_sent_total {records}
# TYPE kafka_producer_queue_time_seconds gauge
kafka_producer_queue_time_seconds{{quantile="0.5"}} 0.003
kafka_producer_queue_time_seconds{{quantile="0.99"}} {queue_p99}
# TYPE kafka_producer_requests_in_flight gauge
kafka_producer_requests_in_flight {in_flight}
# TYPE ingest_lag_seconds summary
ingest_lag_seconds{{hop="network",quantile="0.99"}} 0.004
ingest_lag_seconds_count{{hop="network"}} 10
"""


def scrape(t_s: float, requests: int, records: int, queue_p99: float, in_flight: int) -> tuple:
    text = TEXT.format(requests=requests, records=records, queue_p99=queue_p99, in_flight=in_flight)
    return int(t_s * 1e9), parse_metrics(text)


def test_parse_keeps_every_sample_with_sorted_labels() -> None:
    _, samples = scrape(0, 10, 12, 0.2, 3)
    assert samples["kafka_producer_produce_requests_total"] == 10
    assert samples['kafka_producer_queue_time_seconds{quantile="0.99"}'] == 0.2
    assert samples['ingest_lag_seconds{hop="network",quantile="0.99"}'] == 0.004
    assert samples['ingest_lag_seconds_count{hop="network"}'] == 10
    assert len(parse_metrics(TEXT.format(requests=1, records=1, queue_p99=1, in_flight=1), 2)) == 2
    with pytest.raises(ValueError):
        parse_metrics("this is { not prometheus\n")


def test_producer_figures_over_a_hold() -> None:
    scrapes = [
        scrape(0, 1_000, 1_190, 0.150, 2),
        scrape(1, 5_203, 6_190, 0.206, 5),
        scrape(2, 9_406, 11_190, 0.100, 1),
    ]
    figures = producer_figures(scrapes)
    assert figures is not None
    assert figures["produce_requests_per_s"] == pytest.approx(4203)
    assert figures["records_per_request"] == pytest.approx(10_000 / 8_406)
    assert figures["queue_time_p99_ms"] == pytest.approx(150)
    assert figures["queue_time_p99_ms_max"] == pytest.approx(206)
    assert figures["queue_time_p50_ms"] == pytest.approx(3)
    assert figures["rtt_p99_ms"] is None  # not exported
    assert figures["requests_in_flight_max"] == 5


def test_no_producer_metrics_gives_none() -> None:
    assert producer_figures([(0, {"ingest_lines_total": 3.0})]) is None
    assert producer_figures([]) is None


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = TEXT.format(requests=7, records=9, queue_p99=0.01, in_flight=0).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metrics_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_scraper_reads_a_live_endpoint_and_counts_failures(metrics_url: str) -> None:
    scraper = MetricsScraper(metrics_url)
    samples = scraper()
    assert samples is not None and samples["kafka_producer_records_sent_total"] == 9
    later: list[str | None] = [None]
    lazy = MetricsScraper(lambda: later[0])
    assert lazy() is None and lazy.errors == 0  # no URL yet: not a failure
    later[0] = metrics_url
    assert lazy() is not None
    dead = MetricsScraper("http://127.0.0.1:9/metrics", timeout_s=0.2)
    assert dead() is None and dead.errors == 1 and dead.last_error


def test_dropping_counters_are_those_named_so_that_rose() -> None:
    first = {
        "ingest_level1_without_record_total": 10.0,
        "ingest_errors_total": 0.0,
        "ingest_lines_total": 100.0,
        "core_dropped_total": 5.0,
    }
    last = {
        "ingest_level1_without_record_total": 2_900.0,
        "ingest_errors_total": 0.0,
        "ingest_lines_total": 9_000.0,
        "core_dropped_total": 8.0,
        "core_gap_seconds": 3.0,  # not a counter
    }
    found = dropping_counters([(0, first), (1, last)])
    assert found == {"ingest_level1_without_record_total": 2_890.0, "core_dropped_total": 3.0}
    assert dropping_counters([(0, first)]) == {}


def test_redis_snapshot_figures_over_a_hold() -> None:
    """Cycles and failures are counted within the hold; write lag and age are the largest."""
    scrapes = [
        (t * 1_000_000_000, {
            "ingest_redis_snapshot_cycles_total": 10.0 + 2 * t,
            "ingest_redis_snapshot_errors_total": 0.0 if t < 3 else t - 2.0,
            "ingest_redis_snapshot_write_seconds": 0.002 * (t + 1),
            "ingest_redis_snapshot_age_seconds": 0.5 if t < 3 else t - 2.5,
            "ingest_book_memory_bytes": 1000.0 * t,
        })
        for t in range(6)
    ]  # fmt: skip
    assert snapshot_figures(scrapes) == {
        "snapshot_cycles": 10.0,
        "snapshot_errors": 3.0,
        "snapshot_write_ms_max": pytest.approx(12.0),
        "snapshot_age_s_max": 2.5,
    }
    assert gauge_max(scrapes, "ingest_book_memory_bytes") == 5000.0
    assert gauge_max(scrapes, "absent") is None
    assert snapshot_figures([])["snapshot_cycles"] is None
