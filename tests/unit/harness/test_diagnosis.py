"""harness.diagnosis: the hop that holds the P99, with its evidence, in one line."""

from __future__ import annotations

from harness.diagnosis import HoldEvidence, diagnose
from harness.testbed import TestBedJudgement, TestBedLoad
from harness.thresholds import LagPercentiles


def lag(p99_ms: float, count: int = 1000) -> LagPercentiles:
    us = int(p99_ms * 1000)
    return LagPercentiles(us // 2, us // 2, us, us, us, count)


PRODUCER = {
    "produce_requests_per_s": 4203.0,
    "records_per_request": 1.19,
    "queue_time_p99_ms": 150.0,
    "queue_time_p99_ms_max": 206.0,
    "rtt_p99_ms_max": 3.4,
    "requests_in_flight_max": 5.0,
}
BED = TestBedLoad(2, 1.9, 1.95, 0.0, 3.0, 6, {"broker-1": 0.85, "sut": 0.5}, ("broker-1",), 10)


def test_the_kafka_hop_with_producer_and_broker_evidence() -> None:
    diagnosis = diagnose(
        HoldEvidence(
            total=lag(288),
            hops={"network": lag(4), "processing": lag(0.5), "kafka": lag(271)},
            delivery=lag(9),
            basis={"append": 1000, "observed": 0},
            producer=PRODUCER,
            test_bed=BED,
        )
    )
    assert diagnosis.hop == "kafka" and diagnosis.share is not None
    line = diagnosis.line
    assert line.startswith("kafka hop 94% of P99 (271 ms of 288 ms)")
    assert "producer queue P99 206.0 ms" in line
    assert "4,203 ProduceRequests/s at 1.19 records each" in line
    assert "local broker 0.85 core" in line
    assert "harness consumer (delivery, not in the SUT's figures) P99 9 ms" in line
    assert "network 4 ms" in line and "CreateTime" not in line


def test_a_core_without_producer_metrics_is_said_so() -> None:
    diagnosis = diagnose(
        HoldEvidence(
            total=lag(120),
            hops={"network": lag(2), "processing": lag(1), "kafka": lag(118)},
            basis={"append": 0, "observed": 1000},
        )
    )
    assert "exports no producer metrics" in diagnosis.line
    assert "1,000 records have no broker append time (CreateTime topic)" in diagnosis.line


def test_the_network_hop_names_the_generator_s_share() -> None:
    diagnosis = diagnose(
        HoldEvidence(
            total=lag(60),
            hops={"network": lag(55), "processing": lag(1), "kafka": lag(5)},
            generator_lateness_p99_us=40_000,
            sut_cpu_cores_mean=0.9,
            sut_cpu_cores_max=1.0,
        )
    )
    assert diagnosis.hop == "network"
    assert "of which feed_sim's own lateness P99 40 ms" in diagnosis.line
    assert "SUT CPU 0.90 core (max 1.00 core)" in diagnosis.line


def test_a_saturated_bed_is_added_and_nothing_measured_is_said() -> None:
    judgement = TestBedJudgement(True, 0.8, True, "test bed saturated: broker-1 0.85 of 2 cores")
    diagnosis = diagnose(HoldEvidence(total=None, hops={}, judgement=judgement))
    assert diagnosis.hop is None
    assert diagnosis.line == (
        "no total-lag samples to diagnose; test bed saturated: broker-1 0.85 of 2 cores"
    )
    unsplit = diagnose(HoldEvidence(total=lag(30), hops={"network": None}))
    assert unsplit.line == "total P99 30 ms; the SUT stamps no hop times to split it"


def test_a_hold_that_lost_records_leads_with_the_loss_and_the_sut_s_counters() -> None:
    loss = {
        "sent": 600_916,
        "lost": 2_861,
        "lost_beyond_tolerance": 552,
        "worst": [
            {"symbol": "WM", "sent": 12_018, "lost": 217},
            {"symbol": "WST", "sent": 12_019, "lost": 181},
        ],
    }
    diagnosis = diagnose(
        HoldEvidence(
            total=lag(34.8),
            hops={"network": lag(3.9), "processing": lag(0.2), "kafka": lag(34.2)},
            loss=loss,
            sut_dropping={"ingest_level1_without_record_total": 2_890.0},
        )
    )
    assert diagnosis.line.startswith(
        "lost 552 of 600,916 records beyond the in-flight allowance (2,861 missing in all; "
        "worst WM 217 of 12,018, WST 181 of 12,019); the SUT's own counters in the hold: "
        "ingest_level1_without_record_total +2,890; kafka hop 98% of P99"
    )
    silent = diagnose(HoldEvidence(total=lag(30), hops={"kafka": lag(29)}, loss=loss))
    assert "the SUT exports no counter of dropped records that rose" in silent.line
