"""Live metrics of the reference core: HDR lag quantiles, counters, /metrics and admin HTTP."""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from contracts.hdr import new_histogram
from ingest.metrics import (
    QUANTILES,
    IngestMetrics,
    MetricsServer,
    parse_symbols_body,
    plain_families,
    quantile_values,
)
from ingest.records import FeedRecord

# One exposition line: name{labels} value  (Prometheus text format 0.0.4)
SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})? '
    r"(?P<value>NaN|[+-]Inf|-?[0-9.eE+-]+)$"
)
META = re.compile(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$")


def parse_exposition(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Strictly parse Prometheus text; name -> [(labels, value)]. Fails on any bad line."""
    assert text.endswith("\n")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        meta = META.match(line)
        if meta:
            if meta.group(1) == "TYPE":
                assert meta.group(3) in {"counter", "gauge", "summary", "histogram", "untyped"}
                assert meta.group(2) not in types, f"family {meta.group(2)} declared twice"
                types[meta.group(2)] = meta.group(3)
            continue
        match = SAMPLE.match(line)
        assert match, f"not an exposition line: {line!r}"
        labels = dict(
            re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(3) or "")
        )
        base = re.sub(r"_(sum|count)$", "", match.group(1))
        assert match.group(1) in types or base in types, f"sample before its TYPE: {line}"
        samples.setdefault(match.group(1), []).append((labels, float(match.group("value"))))
    return samples


def _record(i: int, exchange: int, recv: int, produced: int, kind: str = "trade") -> FeedRecord:
    return FeedRecord("AAPL", kind, i, exchange, recv, produced, {})


def test_quantiles_match_sorted_list_within_hdr_precision() -> None:
    rng = np.random.default_rng(11)
    lags_us = rng.lognormal(mean=7.0, sigma=1.2, size=50_000).astype(np.int64) + 1
    metrics = IngestMetrics()
    for i, lag in enumerate(lags_us):
        recv = 1_700_000_000_000_000_000 + i
        metrics.observe(_record(i, recv - int(lag) * 1000, recv, recv + int(lag) * 1000))
    metrics.flush_batch()
    ordered = np.sort(lags_us)
    for hop in ("network", "processing"):
        got = metrics.quantiles(hop)
        assert set(got) == set(QUANTILES)
        for q in QUANTILES:
            exact = int(ordered[math.ceil(q * len(ordered)) - 1])
            # 3 significant digits: HDR reports within 1/1024 of the value (plus 1 us).
            assert abs(got[q] - exact) <= exact / 1000 + 1, (hop, q, got[q], exact)
        assert metrics.histogram(hop).get_total_count() == len(lags_us)


def test_counters_and_exposition_parse() -> None:
    queue = [3]
    metrics = IngestMetrics(queue_length=lambda: queue[0])
    metrics.observe(_record(1, 1_000_000, 1_500_000, 1_700_000))
    metrics.observe(_record(2, 0, 2_000_000, 2_100_000, "depth"))  # no exchange time
    metrics.observe(_record(3, 1_000_000, 1_200_000, 1_300_000, "quote"))
    metrics.flush_batch()
    metrics.count_delivery(None)
    metrics.count_delivery("_MSG_TIMED_OUT")
    metrics.count_delivery('we"ird\\error')
    parsed = parse_exposition(
        metrics.render(plain_families({"ingest_lines_total": 42.0, "ingest_up": 1.0}))
    )
    assert dict((lbl["type"], v) for lbl, v in parsed["ingest_records_total"]) == {
        "trade": 1.0,
        "quote": 1.0,
        "depth": 1.0,
    }
    assert parsed["ingest_kafka_delivered_total"] == [({}, 1.0)]
    failed = {lbl["error"]: v for lbl, v in parsed["ingest_kafka_delivery_failed_total"]}
    assert failed == {"_MSG_TIMED_OUT": 1.0, 'we\\"ird\\\\error': 1.0}  # escaped
    assert parsed["ingest_kafka_queue_length"] == [({}, 3.0)]
    assert parsed["ingest_lines_total"] == [({}, 42.0)]
    counts = {lbl["hop"]: v for lbl, v in parsed["ingest_lag_microseconds_count"]}
    assert counts == {"network": 2.0, "processing": 3.0}
    net = {
        lbl["quantile"]: v
        for lbl, v in parsed["ingest_lag_microseconds"]
        if lbl["hop"] == "network"
    }
    assert set(net) == {"0.5", "0.95", "0.99", "0.999"}
    assert net["0.5"] == 200.0 and net["0.999"] == 500.0


def test_empty_histograms_render_nan() -> None:
    parsed = parse_exposition(IngestMetrics().render())
    assert all(math.isnan(v) for _, v in parsed["ingest_lag_microseconds"])
    assert quantile_values(new_histogram()) == {}


def test_parse_symbols_body() -> None:
    assert parse_symbols_body(b'["aapl", " MSFT", "AAPL"]') == ["AAPL", "MSFT"]
    assert parse_symbols_body(b'{"symbols": ["IBM"]}') == ["IBM"]
    for bad in (b"", b"{}", b"[1]", b'[""]', b"not json"):
        with pytest.raises(ValueError):
            parse_symbols_body(bad)


@pytest.fixture
def server() -> Iterator[tuple[MetricsServer, list[list[str]]]]:
    received: list[list[str]] = []

    def on_symbols(symbols: list[str]) -> dict[str, Any]:
        received.append(symbols)
        return {"symbols": len(symbols)}

    def state() -> dict[str, Any]:
        return {"symbols": sum(len(s) for s in received[-1:])}

    srv = MetricsServer(
        IngestMetrics(),
        "127.0.0.1",
        0,
        on_symbols=on_symbols,
        state=state,
        extra_metrics=lambda: plain_families({"ingest_kafka_delivered_total": 5.0}),
    )
    srv.start()
    try:
        yield srv, received
    finally:
        srv.stop()


def _http(url: str, body: bytes | None = None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["Content-Type"]


def test_http_endpoints(server: tuple[MetricsServer, list[list[str]]]) -> None:
    srv, received = server
    assert srv.host == "127.0.0.1"
    status, body, ctype = _http(srv.url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    parsed = parse_exposition(body.decode())
    assert parsed["ingest_kafka_delivered_total"] == [({}, 5.0)]  # extra replaces own family
    assert _http(srv.url + "/healthz")[0] == 200
    status, body, _ = _http(srv.url + "/admin/symbols", b'["AAPL", "MSFT"]')
    assert (status, json.loads(body)) == (200, {"symbols": 2})
    assert received == [["AAPL", "MSFT"]]
    assert json.loads(_http(srv.url + "/admin/state")[1]) == {"symbols": 2}
    assert _http(srv.url + "/admin/symbols", b'{"nope": 1}')[0] == 400
    assert _http(srv.url + "/nowhere")[0] == 404


def test_the_loop_records_buffered_lags_at_most_every_flush_interval() -> None:
    from ingest.metrics import FLUSH_INTERVAL_NS

    now = [0]
    metrics = IngestMetrics(clock_ns=lambda: now[0])
    metrics.observe(_record(1, 1_000_000, 1_500_000, 1_700_000))
    metrics.flush_due()  # no time has passed: still buffered
    assert metrics.histogram("processing").get_total_count() == 0
    now[0] += FLUSH_INTERVAL_NS
    metrics.flush_due()
    assert metrics.histogram("processing").get_total_count() == 1
    metrics.observe(_record(2, 1_000_000, 1_600_000, 1_900_000))
    metrics.flush_due()  # the interval restarts at each flush
    assert metrics.histogram("network").get_total_count() == 1
    metrics.flush_batch()  # the drain at shutdown: whatever is buffered
    assert metrics.histogram("network").get_total_count() == 2
    assert metrics.histogram("processing").get_value_at_percentile(100) == 300
