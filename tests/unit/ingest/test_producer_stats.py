"""librdkafka statistics -> producer figures -> the `kafka_producer_*` families on /metrics.

The fixture `data/librdkafka_statistics.json` follows librdkafka's STATISTICS.md (its key sets
were checked against a real librdkafka 2.16 document): two learned brokers and the bootstrap
pseudo-broker (nodeid -1, empty windows), two topics with their UA partitions, `eos`.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from ingest.config import IngestConfig, KafkaSettings
from ingest.kafka_out import KafkaOutput
from ingest.metrics import (
    PRODUCER_METRICS,
    IngestMetrics,
    MetricFamily,
    plain_families,
    producer_families,
    render_prometheus,
)
from ingest.producer_stats import (
    ProducerFigures,
    WindowQuantiles,
    merged,
    parse_statistics,
)
from tests.unit.ingest.test_metrics import parse_exposition

FIXTURE = Path(__file__).parent / "data" / "librdkafka_statistics.json"
UNREACHABLE = "127.0.0.1:1"


def _doc() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FIXTURE.read_text())
    return loaded


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc)


def test_figures_from_a_statistics_document() -> None:
    digest = parse_statistics(FIXTURE.read_text())
    assert digest.figures == ProducerFigures(
        produce_requests=1200 + 800,  # brokers[*].req.Produce; the bootstrap sent none
        records_sent=2380,  # top-level txmsgs
        requests_in_flight=3 + 2,  # brokers[*].waitresp_cnt
        queue_records=17,  # top-level msg_cnt
        queue_time=WindowQuantiles(p50_us=3100, p99_us=75000),  # max of each over brokers
        rtt=WindowQuantiles(p50_us=1000, p99_us=9900),
    )
    assert (digest.idempotence_state, digest.producer_id) == ("Assigned", 7)
    assert parse_statistics(FIXTURE.read_bytes()) == digest


def test_empty_windows_give_unknown_quantiles_not_zero() -> None:
    doc = _doc()
    for broker in doc["brokers"].values():
        if broker["nodeid"] >= 0:  # an idle interval: librdkafka reports 0s with cnt 0
            broker["int_latency"] = copy.deepcopy(broker["throttle"])
            broker["rtt"] = copy.deepcopy(broker["throttle"])
    figures = parse_statistics(_text(doc)).figures
    assert figures.queue_time is None and figures.rtt is None
    assert figures.produce_requests == 2000 and figures.records_sent == 2380


def test_a_bootstrap_window_counts_only_with_samples() -> None:
    doc = _doc()
    bootstrap = doc["brokers"]["127.0.0.1:9092/bootstrap"]
    assert bootstrap["nodeid"] == -1 and bootstrap["rtt"]["cnt"] == 0
    bootstrap["rtt"].update(cnt=2, p50=20_000, p99=30_000)  # its metadata round trips
    assert parse_statistics(_text(doc)).figures.rtt == WindowQuantiles(20_000, 30_000)


def test_a_document_without_brokers_or_eos() -> None:
    digest = parse_statistics('{"msg_cnt": 4, "txmsgs": 0, "brokers": {}}')
    assert digest.figures == ProducerFigures(queue_records=4)
    assert (digest.idempotence_state, digest.producer_id) == (None, None)


def test_figures_of_several_producers_merge() -> None:
    a = ProducerFigures(10, 100, 1, 5, WindowQuantiles(2000, 9000), None)
    b = ProducerFigures(7, 70, 2, 0, WindowQuantiles(3000, 4000), WindowQuantiles(500, 900))
    assert a + b == ProducerFigures(
        17, 170, 3, 5, WindowQuantiles(3000, 9000), WindowQuantiles(500, 900)
    )
    assert merged([None, None]) is None
    assert merged([None, a]) == a
    assert merged([a, None, b]) == a + b


def _producer_metrics(text: str) -> dict[str, str]:
    """family name -> TYPE, for the kafka_producer_* families; each has a non-empty HELP."""
    types = dict(re.findall(r"^# TYPE (kafka_producer_\w+) (\w+)$", text, re.M))
    helps = dict(re.findall(r"^# HELP (kafka_producer_\w+) (.+)$", text, re.M))
    assert set(helps) == set(types)
    return types


def test_rendered_families_parse_back() -> None:
    figures = parse_statistics(FIXTURE.read_text()).figures
    text = IngestMetrics().render(producer_families(figures))
    assert _producer_metrics(text) == {
        "kafka_producer_produce_requests_total": "counter",
        "kafka_producer_records_sent_total": "counter",
        "kafka_producer_queue_time_seconds": "gauge",
        "kafka_producer_rtt_seconds": "gauge",
        "kafka_producer_requests_in_flight": "gauge",
        "kafka_producer_queue_records": "gauge",
    }
    assert set(_producer_metrics(text)) == set(PRODUCER_METRICS)
    parsed = parse_exposition(text)
    assert parsed["kafka_producer_produce_requests_total"] == [({}, 2000.0)]
    assert parsed["kafka_producer_records_sent_total"] == [({}, 2380.0)]
    assert dict(
        (labels["quantile"], v) for labels, v in parsed["kafka_producer_queue_time_seconds"]
    ) == {"0.5": 0.0031, "0.99": 0.075}
    assert dict((labels["quantile"], v) for labels, v in parsed["kafka_producer_rtt_seconds"]) == {
        "0.5": 0.001,
        "0.99": 0.0099,
    }
    assert parsed["kafka_producer_requests_in_flight"] == [({}, 5.0)]
    assert parsed["kafka_producer_queue_records"] == [({}, 17.0)]
    assert "max of each quantile" in text  # the merge rule is said in the HELP text
    assert parsed["ingest_kafka_delivered_total"] == [({}, 0.0)]  # the core's own families stay


def test_nothing_is_exported_before_it_is_known() -> None:
    assert producer_families(None) == []
    assert "kafka_producer_" not in IngestMetrics().render(producer_families(None))
    idle = producer_families(ProducerFigures())  # statistics came, no request sampled
    assert "kafka_producer_queue_time_seconds" not in {f.name for f in idle}
    assert "kafka_producer_rtt_seconds" not in {f.name for f in idle}
    parsed = parse_exposition(render_prometheus(idle))
    assert parsed["kafka_producer_produce_requests_total"] == [({}, 0.0)]


def test_extra_families_keep_labels_and_replace_own_names() -> None:
    labelled = MetricFamily("x_seconds", "gauge", "x.", [({"quantile": "0.5"}, 0.25)])
    text = IngestMetrics().render([labelled, *plain_families({"ingest_messages_total": 9.0})])
    parsed = parse_exposition(text)  # also fails on a family declared twice
    assert parsed["x_seconds"] == [({"quantile": "0.5"}, 0.25)]
    assert parsed["ingest_messages_total"] == [({}, 9.0)]
    assert "# TYPE ingest_messages_total counter" in text


def test_kafka_output_keeps_a_digest_per_producer() -> None:
    out = KafkaOutput(UNREACHABLE, lambda _s: 0, producers=2)
    assert out.producer_figures() is None
    assert out.describe()["producers"] == [{"idempotence_state": None, "producer_id": None}] * 2
    doc = _doc()
    out._on_statistics(1, _text(doc))
    one = parse_statistics(_text(doc)).figures
    assert out.producer_figures() == one
    doc["txmsgs"], doc["eos"]["producer_id"] = 20, 8
    out._on_statistics(0, _text(doc))
    assert out.producer_figures() == one + parse_statistics(_text(doc)).figures
    assert [p["producer_id"] for p in out.describe()["producers"]] == [8, 7]
    out._on_statistics(0, "{not json")  # an unreadable document keeps the last digest
    assert [p["producer_id"] for p in out.describe()["producers"]] == [8, 7]


def _poll_until_statistics(out: KafkaOutput, timeout_s: float = 30.0) -> ProducerFigures:
    deadline = time.monotonic() + timeout_s
    while (figures := out.producer_figures()) is None:
        assert time.monotonic() < deadline, "no librdkafka statistics arrived"
        out.poll(0.05)
    return figures


def test_statistics_are_on_by_default_in_the_core() -> None:
    assert KafkaSettings().statistics_interval_ms == 1000
    with pytest.raises(ValueError):
        KafkaSettings(statistics_interval_ms=-1)


def test_the_core_exports_producer_statistics_on_metrics() -> None:
    """librdkafka emits statistics without a broker: the counters are true zeros, the windows
    have no sample and are not exported."""
    from ingest.app import IngestApp

    config = IngestConfig.model_validate(
        {
            "kafka": {"bootstrap": UNREACHABLE, "statistics_interval_ms": 50},
            "metrics": {"port": 0},
        }
    )
    app = IngestApp(config)
    try:
        assert "kafka_producer_" not in app.server.render_metrics()
        _poll_until_statistics(app.output)
        parsed = parse_exposition(app.server.render_metrics())
        assert parsed["kafka_producer_produce_requests_total"] == [({}, 0.0)]
        assert parsed["kafka_producer_records_sent_total"] == [({}, 0.0)]
        assert parsed["kafka_producer_requests_in_flight"] == [({}, 0.0)]
        assert parsed["kafka_producer_queue_records"] == [({}, 0.0)]
        assert "kafka_producer_queue_time_seconds" not in parsed
        assert "ingest_lines_total" in parsed  # the plain extras are still there
    finally:
        app.server.stop()


def test_prometheus_client_reads_the_producer_families() -> None:
    """The harness scrapes with prometheus_client's parser: the same text reads back there."""
    parser = pytest.importorskip("prometheus_client.parser")
    figures = parse_statistics(FIXTURE.read_text()).figures
    text = IngestMetrics().render(producer_families(figures))
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
        if s.name.startswith("kafka_producer_")
    }
    assert samples == {
        ("kafka_producer_produce_requests_total", ()): 2000.0,
        ("kafka_producer_records_sent_total", ()): 2380.0,
        ("kafka_producer_queue_time_seconds", (("quantile", "0.5"),)): 0.0031,
        ("kafka_producer_queue_time_seconds", (("quantile", "0.99"),)): 0.075,
        ("kafka_producer_rtt_seconds", (("quantile", "0.5"),)): 0.001,
        ("kafka_producer_rtt_seconds", (("quantile", "0.99"),)): 0.0099,
        ("kafka_producer_requests_in_flight", ()): 5.0,
        ("kafka_producer_queue_records", ()): 17.0,
    }
    # prometheus_client names a counter family without its `_total`
    assert families["kafka_producer_produce_requests"].type == "counter"
    assert families["kafka_producer_records_sent"].type == "counter"
    assert families["kafka_producer_queue_time_seconds"].type == "gauge"
    assert families["kafka_producer_rtt_seconds"].type == "gauge"
