"""One line per judged hold: which hop holds most of the total lag's P99, and the evidence.

`diagnose(evidence)` names the SUT hop (contract 3: `network` = recv - intended, `processing`
= produced - recv, `kafka` = broker append - produced) with the largest P99 and its share of
the total's P99 (percentiles do not add up, so the shares of the hops need not sum to 100%),
then the evidence the harness has for that hop:

- kafka: the SUT's producer figures from its metrics (harness.sut_metrics: partition-queue
  time, ProduceRequests/s, records per request, round trip, requests in flight) and the local
  brokers' CPU;
- network: feed_sim's own lateness (part of this hop: a late generator is not the SUT), the
  SUT's CPU (a busy reader reads late) and the host's load;
- processing: the SUT's CPU.

A hold that lost records leads with that: how many beyond the in-flight allowance, the worst
symbols, and the SUT's own counters of dropped or failed records that rose during the hold
(`harness.sut_metrics.dropping_counters`). It ends with the harness's own delivery hop (observed
- append: never in the SUT's figures) and the test bed's verdict when the host was saturated.
Example:

    kafka hop 94% of P99 (271 of 288 ms); producer queue P99 206 ms (max 1 s window),
    4,203 ProduceRequests/s at 1.19 records each; broker 0.85 core; ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.testbed import TestBedJudgement, TestBedLoad
from harness.thresholds import LagPercentiles

HOPS: tuple[str, ...] = ("network", "processing", "kafka")


@dataclass(frozen=True, slots=True)
class HoldEvidence:
    """What the harness measured of one hold (None = not measured)."""

    total: LagPercentiles | None
    hops: Mapping[str, LagPercentiles | None]
    delivery: LagPercentiles | None = None
    basis: Mapping[str, int] = field(default_factory=dict)
    """Records whose figures end at the broker's append time / at the collector."""
    generator_lateness_p99_us: int | None = None
    sut_cpu_cores_mean: float | None = None
    sut_cpu_cores_max: float | None = None
    producer: Mapping[str, Any] | None = None
    test_bed: TestBedLoad | None = None
    judgement: TestBedJudgement | None = None
    loss: Mapping[str, Any] | None = None
    """The hold's completeness (`LossReport.to_json()`), when records were lost beyond the
    in-flight allowance."""
    sut_dropping: Mapping[str, float] = field(default_factory=dict)
    """The SUT's counters of dropped or failed records that rose during the hold."""
    storage: Mapping[str, Any] | None = None
    """The hold's storage block (`harness.storage_writer.storage_json`), with `storage`."""
    storage_broken: Sequence[str] = ()
    """The storage thresholds that failed."""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    hop: str | None
    """The SUT hop holding most of the P99 (None: nothing to compare)."""
    share: float | None
    """That hop's P99 / the total's P99."""
    line: str

    def to_json(self) -> dict[str, Any]:
        return {"hop": self.hop, "share_of_p99": self.share, "line": self.line}


def _ms(us: float) -> str:
    ms = us / 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.3g} ms"


def _cores(value: float) -> str:
    return f"{value:.2f} core" + ("s" if value >= 1.005 else "")


def broker_cores(load: TestBedLoad | None) -> float | None:
    """The local brokers' cores together (parts named broker-N), None without any."""
    if load is None:
        return None
    brokers = [cores for name, cores in load.parts.items() if name.startswith("broker")]
    return sum(brokers) if brokers else None


def _producer_evidence(producer: Mapping[str, Any] | None) -> list[str]:
    if not producer:
        return ["the SUT exports no producer metrics (kafka_producer_*, see scenarios/README.md)"]
    parts: list[str] = []
    queue = producer.get("queue_time_p99_ms_max")
    if queue is not None:
        parts.append(
            f"producer queue P99 {queue:,.1f} ms (max 1 s window; median "
            f"{producer.get('queue_time_p99_ms') or 0:,.1f} ms)"
        )
    requests, per_request = (
        producer.get("produce_requests_per_s"),
        producer.get("records_per_request"),
    )
    if requests is not None:
        each = f" at {per_request:.2f} records each" if per_request is not None else ""
        parts.append(f"{requests:,.0f} ProduceRequests/s{each}")
    rtt = producer.get("rtt_p99_ms_max")
    if rtt is not None:
        parts.append(f"broker round trip P99 {rtt:,.1f} ms")
    in_flight = producer.get("requests_in_flight_max")
    if in_flight is not None:
        parts.append(f"at most {in_flight:,.0f} requests awaiting a reply")
    return parts


def _hop_evidence(hop: str, e: HoldEvidence) -> list[str]:
    parts: list[str] = []
    sut_cpu = (
        f"SUT CPU {_cores(e.sut_cpu_cores_mean)} (max {_cores(e.sut_cpu_cores_max or 0)})"
        if e.sut_cpu_cores_mean is not None
        else None
    )
    if hop == "kafka":
        parts += _producer_evidence(e.producer)
        brokers = broker_cores(e.test_bed)
        if brokers is not None:
            parts.append(f"local broker {_cores(brokers)}")
        if e.basis.get("observed"):
            parts.append(
                f"{e.basis['observed']:,} records have no broker append time (CreateTime "
                "topic): their hop ends at the harness's consumer and includes it"
            )
    elif hop == "network":
        if e.generator_lateness_p99_us is not None:
            parts.append(f"of which feed_sim's own lateness P99 {_ms(e.generator_lateness_p99_us)}")
        if sut_cpu:
            parts.append(sut_cpu)
    elif hop == "processing" and sut_cpu:
        parts.append(sut_cpu)
    return parts


def _loss_evidence(e: HoldEvidence) -> list[str]:
    loss = e.loss
    if not loss or not loss.get("lost_beyond_tolerance"):
        return []
    worst = ", ".join(
        f"{w['symbol']} {w['lost']:,} of {w['sent']:,}" for w in list(loss.get("worst", []))[:3]
    )
    parts = [
        f"lost {loss['lost_beyond_tolerance']:,} of {loss['sent']:,} records beyond the "
        f"in-flight allowance ({loss['lost']:,} missing in all; worst {worst or 'none'})"
    ]
    if e.sut_dropping:
        counters = ", ".join(f"{name} +{rose:,.0f}" for name, rose in e.sut_dropping.items())
        parts.append(f"the SUT's own counters in the hold: {counters}")
    else:
        parts.append("the SUT exports no counter of dropped records that rose")
    return parts


def _storage_evidence(e: HoldEvidence) -> list[str]:
    """The storage hop: where its P99 comes from (the insert, or waiting for the writer) and
    the reconciliation; leads the line when a storage threshold broke."""
    block = e.storage
    if not block:
        return (
            ["the ClickHouse writer gave no figures (event storage_failed)"]
            if (e.storage_broken)
            else []
        )
    lag = block.get("lag_us") or {}
    parts: list[str] = []
    if lag.get("count"):
        parts.append(f"storage hop (Kafka append -> row visible) P99 {_ms(lag['p99'])}")
        wait = (block.get("wait_us") or {}).get("p99")
        insert = (block.get("insert_us") or {}).get("p99")
        if wait is not None and insert is not None:
            batch_ms = block.get("batch_ms")
            fetch = "" if batch_ms is None else f"; the batch waits {batch_ms:,} ms at most"
            worst = (
                "the ClickHouse insert"
                if insert >= wait
                else "waiting before the insert (the writer's Kafka fetch and its batch)"
            )
            parts.append(
                f"most of it {worst} (P99s: wait {_ms(wait)}{fetch}, insert {_ms(insert)}; "
                f"{block.get('batches', 0):,} batches of "
                f"{block.get('records_per_batch') or 0:,.0f} records)"
            )
    rec = block.get("reconciliation") or {}
    if rec:
        if not rec.get("caught_up"):
            behind = sum((rec.get("behind") or {}).values())
            parts.append(f"the writer was {behind:,} records behind Kafka's end offsets")
        mismatch = rec.get("mismatch", 0)
        state = (
            "reconciled"
            if mismatch == 0
            else f"{-mismatch:,} rows missing"
            if mismatch < 0
            else f"{mismatch:,} rows too many"
        )
        parts.append(
            f"ClickHouse {rec.get('rows_final', 0):,} rows after FINAL for "
            f"{rec.get('kafka_records', 0):,} Kafka records ({state}; "
            f"{rec.get('duplicates_collapsed', 0):,} duplicates collapsed)"
        )
    return parts


def diagnose(e: HoldEvidence) -> Diagnosis:
    """The hold's diagnosis line (module docstring)."""
    total = e.total
    storage = _storage_evidence(e)
    lost = _loss_evidence(e)
    if e.storage_broken:  # the storage hop failed the hold: say so first
        lost = [*storage, *lost]
        storage = []
    tail: list[str] = []
    if e.delivery is not None and e.delivery.count:
        tail.append(
            f"harness consumer (delivery, not in the SUT's figures) P99 {_ms(e.delivery.p99)}"
        )
    tail += storage
    if e.judgement is not None and e.judgement.saturated:
        tail.append(e.judgement.message)
    if total is None or total.count == 0:
        line = "no total-lag samples to diagnose"
        return Diagnosis(None, None, "; ".join([*lost, line, *tail]))
    measured = {h: p.p99 for h in HOPS if (p := e.hops.get(h)) is not None and p.count}
    if not measured:
        line = f"total P99 {_ms(total.p99)}; the SUT stamps no hop times to split it"
        return Diagnosis(None, None, "; ".join([*lost, line, *tail]))
    hop = max(measured, key=lambda h: measured[h])
    share = min(1.0, measured[hop] / total.p99) if total.p99 > 0 else None
    head = (
        f"{hop} hop {share:.0%} of P99 ({_ms(measured[hop])} of {_ms(total.p99)})"
        if share is not None
        else f"{hop} hop P99 {_ms(measured[hop])}"
    )
    others = ", ".join(f"{h} {_ms(v)}" for h, v in measured.items() if h != hop)
    parts = [head, *_hop_evidence(hop, e)]
    if others:
        parts.append(f"other hops' P99: {others}")
    return Diagnosis(hop, share, "; ".join([*lost, *parts, *tail]))
