"""Live metrics of the reference core: lag histograms, counters, and the Prometheus `/metrics`.

Owns:

- per-hop lag histograms (contract 3 hops `network` = recv - exchange and `processing` =
  produced - recv) as HdrHistograms in microseconds, 1 us .. 60 s, 3 significant digits
  (contract 6). `observe(record)` only appends to a buffer; `flush_batch()` records the buffer
  in one vectorised numpy step (hdrh's per-value `record_value` is too slow for 50k msg/s),
  at most every FLUSH_INTERVAL_NS from the loop (`flush_due`);
- counters: records by type, Kafka deliveries ok / failed by error, and the producer queue
  length (a gauge read on demand); the feed's own counters (lines, errors, reconnects, TickID
  gaps) come from the composition root as extra families (`ingest.app`);
- the Kafka producer's librdkafka figures (`ingest.producer_stats`) as the cross-core
  `kafka_producer_*` families (`producer_families`; names in PRODUCER_METRICS);
- extra families from the composition root (`MetricsServer(extra_metrics=...)`, labelled or
  plain via `plain_families`), rendered after and replacing own families of the same name;
- `MetricsServer`: a stdlib HTTP server in a thread (loopback by default) serving
  `GET /metrics` (Prometheus text format 0.0.4, lag summaries with quantiles
  0.5/0.95/0.99/0.999 from the histograms), `GET /healthz`, `GET /admin/state`,
  `GET /admin/books` (every symbol's Level 1 and book snapshot, as written to Redis) and
  `POST /admin/symbols` (a JSON list of symbols handed to a callback), plus any POST routes
  a process adds (`post_routes`: JSON body in, JSON reply out; the ClickHouse writer's
  /admin/window and /admin/reconcile). A route's ValueError is the caller's fault (HTTP 400).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

from contracts.hdr import new_histogram, prepare, record_prepared
from ingest.producer_stats import ProducerFigures, WindowQuantiles
from ingest.records import FeedRecord

log = logging.getLogger(__name__)

QUANTILES = (0.5, 0.95, 0.99, 0.999)
HOPS = ("network", "processing")
AUTO_FLUSH = 8192
FLUSH_INTERVAL_NS = 100_000_000
"""The loop records its buffered lags at most this often (`flush_due`): one numpy step
costs ~100 us whatever the batch, which on every loop turn (a few lines each at low rates)
was a fifth of the core's CPU. /metrics lags behind by at most this much plus a turn."""
MAX_BODY_BYTES = 1 << 20
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Samples = list[tuple[dict[str, str], float]]


def quantile_values(hist: HdrHistogram, quantiles: Iterable[float] = QUANTILES) -> dict[float, int]:
    """quantile (0..1) -> value in us; empty histograms give no entries."""
    if hist.get_total_count() == 0:
        return {}
    return {q: int(hist.get_value_at_percentile(q * 100.0)) for q in quantiles}


class LagHistogram:
    """One hop's histogram plus the exact sum of recorded values (for the summary `_sum`)."""

    def __init__(self) -> None:
        self.hist = new_histogram()
        self.sum_us = 0
        self.clamped = 0

    def record(self, values_us: npt.NDArray[np.int64]) -> None:
        batch = prepare(values_us, self.hist)
        record_prepared(self.hist, batch)
        self.clamped += batch.clamped
        self.sum_us += int(batch.values.sum())


class IngestMetrics:
    """Counters and lag histograms; `observe` from the ingest loop, render from any thread."""

    def __init__(
        self,
        queue_length: Callable[[], int] | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.queue_length = queue_length
        self._clock_ns = clock_ns
        self._flushed_ns = clock_ns()
        self.delivered = 0
        self.records_by_type: dict[str, int] = {}
        self.delivery_failed_by_error: dict[str, int] = {}
        self._lags = {hop: LagHistogram() for hop in HOPS}
        self._pending: dict[str, list[int]] = {hop: [] for hop in HOPS}
        self._lock = threading.Lock()

    # -- recording (ingest loop) ----------------------------------------------------------------

    def observe(self, record: FeedRecord) -> None:
        """Count the record and buffer its network and processing lag (ns)."""
        self.records_by_type[record.type] = self.records_by_type.get(record.type, 0) + 1
        if record.exchange_ns:
            self._pending["network"].append(record.recv_ns - record.exchange_ns)
        processing = self._pending["processing"]
        processing.append(record.produced_ns - record.recv_ns)
        if len(processing) >= AUTO_FLUSH:
            self.flush_batch()

    def observe_lags_ns(self, hop: str, lags_ns: Iterable[int]) -> None:
        """Buffer raw lags (ns) of one hop (for callers that compute lags themselves)."""
        self._pending[hop].extend(lags_ns)

    def flush_due(self) -> None:
        """`flush_batch` if FLUSH_INTERVAL_NS has passed since the last one (the ingest loop
        calls this on every turn)."""
        if self._clock_ns() - self._flushed_ns >= FLUSH_INTERVAL_NS:
            self.flush_batch()

    def flush_batch(self) -> None:
        """Record the buffered lags into the histograms (one numpy step per hop).

        Call it from the thread that calls `observe` (the ingest loop, via `flush_due`, and
        the drain at shutdown).
        """
        self._flushed_ns = self._clock_ns()
        for hop, pending in self._pending.items():
            if not pending:
                continue
            values_us = np.asarray(pending, dtype=np.int64) // 1000
            self._pending[hop] = []
            with self._lock:
                self._lags[hop].record(values_us)

    def count_delivery(self, error: str | None) -> None:
        """A Kafka delivery report: None when delivered, else the error name."""
        if error is None:
            self.delivered += 1
        else:
            self.delivery_failed_by_error[error] = self.delivery_failed_by_error.get(error, 0) + 1

    # -- reading (any thread) -------------------------------------------------------------------

    def histogram(self, hop: str) -> HdrHistogram:
        """A copy of one hop's histogram (mergeable with other processes' histograms)."""
        copy = new_histogram()
        with self._lock:
            copy.add(self._lags[hop].hist)
        return copy

    def quantiles(self, hop: str) -> dict[float, int]:
        """quantile -> lag (us) of one hop, from its histogram."""
        with self._lock:
            return quantile_values(self._lags[hop].hist)

    def families(self) -> list[MetricFamily]:
        """Every metric family, ready for `render_prometheus`."""
        fams = [
            MetricFamily(
                "ingest_records_total",
                "counter",
                "Records produced, by type.",
                _labelled("type", self.records_by_type),
            ),
            MetricFamily(
                "ingest_kafka_delivered_total",
                "counter",
                "Kafka deliveries acked.",
                [({}, self.delivered)],
            ),
            MetricFamily(
                "ingest_kafka_delivery_failed_total",
                "counter",
                "Kafka deliveries failed, by error.",
                _labelled("error", self.delivery_failed_by_error),
            ),
        ]
        if self.queue_length is not None:
            fams.append(
                MetricFamily(
                    "ingest_kafka_queue_length",
                    "gauge",
                    "Records in the producer's local queue.",
                    [({}, self.queue_length())],
                )
            )
        fams.append(self._lag_family())
        return fams

    def _lag_family(self) -> MetricFamily:
        samples: Samples = []
        with self._lock:
            for hop, lag in self._lags.items():
                values = quantile_values(lag.hist)
                for q in QUANTILES:
                    samples.append(({"hop": hop, "quantile": f"{q:g}"}, values.get(q, math.nan)))
                samples.append(({"hop": hop, "__suffix__": "_sum"}, lag.sum_us))
                samples.append(({"hop": hop, "__suffix__": "_count"}, lag.hist.get_total_count()))
        return MetricFamily(
            "ingest_lag_microseconds",
            "summary",
            "Lag per hop in microseconds (HdrHistogram, 3 significant digits).",
            samples,
        )

    def render(self, extra: Iterable[MetricFamily] = ()) -> str:
        """Prometheus text; `extra` families are added (one of an own name replaces it)."""
        fams = {f.name: f for f in self.families()}
        fams.update((f.name, f) for f in extra)
        return render_prometheus(fams.values())


def _labelled(label: str, values: Mapping[str, int]) -> Samples:
    return [({label: key}, value) for key, value in sorted(dict(values).items())]


class MetricFamily:
    """One Prometheus metric family: name, type, help and (labels, value) samples."""

    def __init__(self, name: str, kind: str, help_text: str, samples: Samples) -> None:
        self.name = name
        self.kind = kind
        self.help_text = help_text
        self.samples = samples


def plain_families(values: Mapping[str, float]) -> list[MetricFamily]:
    """One unlabelled sample per name: `*_total` names are counters, the others gauges."""
    return [
        MetricFamily(
            name,
            "counter" if name.endswith("_total") else "gauge",
            name.replace("_", " ") + ".",
            [({}, value)],
        )
        for name, value in values.items()
    ]


PRODUCER_METRICS = (
    "kafka_producer_produce_requests_total",
    "kafka_producer_records_sent_total",
    "kafka_producer_queue_time_seconds",
    "kafka_producer_rtt_seconds",
    "kafka_producer_requests_in_flight",
    "kafka_producer_queue_records",
)
"""The Kafka producer families, a cross-core convention (the harness scrapes these names from
any core under test): keep names, types and units."""
MAX_OF_QUANTILES = "with several brokers or producers, the max of each quantile"


def producer_families(figures: ProducerFigures | None) -> list[MetricFamily]:
    """The `kafka_producer_*` families of the producers' latest librdkafka statistics.

    None (no statistics yet) gives no family; a window without samples in the last interval
    gives no quantile family: nothing is exported that is not known."""
    if figures is None:
        return []
    requests, records, queue_time, rtt, in_flight, queued = PRODUCER_METRICS
    fams = [
        MetricFamily(
            requests,
            "counter",
            "ProduceRequests sent (librdkafka brokers[].req.Produce, "
            "summed over brokers and producers).",
            [({}, figures.produce_requests)],
        ),
        MetricFamily(
            records,
            "counter",
            "Records transmitted to the brokers (librdkafka txmsgs, summed over producers; "
            "a retried record counts again).",
            [({}, figures.records_sent)],
        ),
    ]
    if figures.queue_time is not None:
        fams.append(
            MetricFamily(
                queue_time,
                "gauge",
                "Time records waited in the producer's partition queues in the last statistics "
                f"interval (librdkafka int_latency); {MAX_OF_QUANTILES}.",
                _quantile_samples(figures.queue_time),
            )
        )
    if figures.rtt is not None:
        fams.append(
            MetricFamily(
                rtt,
                "gauge",
                "Broker round-trip time of the producer's requests in the last statistics "
                f"interval (librdkafka rtt); {MAX_OF_QUANTILES}.",
                _quantile_samples(figures.rtt),
            )
        )
    fams += [
        MetricFamily(
            in_flight,
            "gauge",
            "Requests sent and awaiting a reply now (librdkafka waitresp_cnt, "
            "summed over brokers and producers).",
            [({}, figures.requests_in_flight)],
        ),
        MetricFamily(
            queued,
            "gauge",
            "Records in the producer queues now (librdkafka msg_cnt, summed over producers).",
            [({}, figures.queue_records)],
        ),
    ]
    return fams


def _quantile_samples(window: WindowQuantiles) -> Samples:
    return [
        ({"quantile": "0.5"}, window.p50_us / 1_000_000),
        ({"quantile": "0.99"}, window.p99_us / 1_000_000),
    ]


def render_prometheus(families: Iterable[MetricFamily]) -> str:
    """Prometheus text exposition format 0.0.4."""
    lines: list[str] = []
    for fam in families:
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help_text)}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        for labels, value in fam.samples:
            suffix = labels.get("__suffix__", "")
            shown = {k: v for k, v in labels.items() if k != "__suffix__"}
            label_text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in shown.items())
            braces = f"{{{label_text}}}" if label_text else ""
            lines.append(f"{fam.name}{suffix}{braces} {_format_value(value)}")
    return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(int(value))


SymbolsCallback = Callable[[list[str]], Mapping[str, Any]]
JsonCallback = Callable[[], Mapping[str, Any]]
PostCallback = Callable[[Any], Mapping[str, Any]]
"""A POST route: the decoded JSON body in, the JSON reply out (ValueError: HTTP 400)."""


class RendersMetrics(Protocol):
    """What `MetricsServer` serves on /metrics: `IngestMetrics` or a process's own figures."""

    def render(self, extra: Iterable[MetricFamily] = ()) -> str: ...


class MetricsServer:
    """`/metrics`, `/healthz` and the admin endpoints on a stdlib HTTP server thread."""

    def __init__(
        self,
        metrics: RendersMetrics,
        host: str = "127.0.0.1",
        port: int = 9108,
        *,
        on_symbols: SymbolsCallback | None = None,
        state: JsonCallback | None = None,
        health: JsonCallback | None = None,
        extra_metrics: Callable[[], Iterable[MetricFamily]] | None = None,
        books: JsonCallback | None = None,
        post_routes: Mapping[str, PostCallback] | None = None,
    ) -> None:
        self.metrics = metrics
        self.on_symbols = on_symbols
        self.post_routes = dict(post_routes or {})
        self.state = state
        self.books = books
        self.health = health
        self.extra_metrics = extra_metrics
        self._httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (useful when constructed with port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="ingest-metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def render_metrics(self) -> str:
        extra = list(self.extra_metrics()) if self.extra_metrics is not None else []
        return self.metrics.render(extra)


def parse_symbols_body(body: bytes) -> list[str]:
    """`["AAPL", ...]` or `{"symbols": [...]}` -> upper-case symbols; ValueError otherwise."""
    data = json.loads(body or b"null")
    if isinstance(data, dict):
        data = data.get("symbols")
    if not isinstance(data, list) or not all(isinstance(s, str) and s.strip() for s in data):
        raise ValueError('expected a JSON list of symbols, e.g. ["AAPL", "MSFT"]')
    return list(dict.fromkeys(s.strip().upper() for s in data))


def _handler_class(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, server.render_metrics().encode(), CONTENT_TYPE)
            elif path == "/healthz":
                self._json(200, server.health() if server.health else {"status": "ok"})
            elif path == "/admin/state" and server.state is not None:
                self._call(server.state)
            elif path == "/admin/books" and server.books is not None:
                self._call(server.books)
            else:
                self._json(404, {"error": f"no such endpoint: GET {path}"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            route = server.post_routes.get(path)
            symbols_route = path == "/admin/symbols" and server.on_symbols is not None
            if route is None and not symbols_route:
                self._json(404, {"error": f"no such endpoint: POST {path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._json(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                return
            body = self.rfile.read(length)
            try:
                if route is not None:
                    payload = json.loads(body or b"null")
                    self._call(lambda: route(payload))
                    return
                symbols = parse_symbols_body(body)
            except ValueError as exc:
                self._json(400, {"error": str(exc)})
                return
            callback = server.on_symbols
            assert callback is not None
            self._call(lambda: callback(symbols))

        def _call(self, fn: JsonCallback) -> None:
            try:
                result = fn()
            except ValueError as exc:  # the request's fault
                self._json(400, {"error": str(exc)})
                return
            except Exception as exc:  # the admin callback's failure goes back to the caller
                log.exception("admin callback failed")
                self._json(500, {"error": f"{type(exc).__name__}: {exc}"})
                return
            self._json(200, result)

        def _json(self, status: int, payload: Mapping[str, Any]) -> None:
            body = json.dumps(payload, default=str).encode()
            self._send(status, body, "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics http: " + format, *args)

    return Handler
