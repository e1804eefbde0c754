"""Turning what was measured during one hold into what is judged and explained (pure).

`stage_measurement` builds the `StageMeasurement` the thresholds judge (the collector's lag
percentiles, the sent counters against the schedule, resources, loss, storage); `sut_exited`
fails a hold during which the SUT died; `hold_evidence` gathers what the diagnosis explains
the hold with. The runner (harness.run) fetches the inputs; harness.stage_results writes the
outcome.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from contracts import hdr
from harness.collector.loss import LossReport
from harness.collector.replies import CollectorSnapshot
from harness.diagnosis import HoldEvidence
from harness.plan import Evaluate
from harness.scenario import Scenario
from harness.storage_writer import StorageHold
from harness.testbed import TestBedJudgement, TestBedLoad
from harness.thresholds import (
    LagPercentiles,
    StageEvaluation,
    StageMeasurement,
    StorageFigures,
    ThresholdResult,
    Verdict,
)


def lag_percentiles(
    measure: Any, name: str, pct: dict[str, dict[str, int]] | None = None
) -> LagPercentiles | None:
    """One measure's percentiles, None when it has no samples."""
    values = (pct if pct is not None else measure.percentiles()).get(name)
    return LagPercentiles.from_dict(values) if values and values["count"] else None


def cores(percent: float | None) -> float | None:
    """CPU percent (100 = one core) as cores."""
    return None if percent is None else percent / 100


def storage_figures(enabled: bool, storage: StorageHold | None) -> StorageFigures | None:
    """The hold's storage figures to judge (None without the scenario's `storage`)."""
    if not enabled:
        return None
    if storage is None:  # the writer failed: judged as not measured
        return StorageFigures(lag=None, caught_up=None, mismatch=None)
    figures = hdr.percentiles(storage.storage)
    return StorageFigures(
        lag=LagPercentiles.from_dict(figures) if figures["count"] else None,
        caught_up=storage.reconciliation.caught_up,
        mismatch=storage.reconciliation.mismatch,
    )


def stage_measurement(
    scenario: Scenario,
    action: Evaluate,
    snapshot: CollectorSnapshot,
    sent: Any,
    resources: Mapping[str, Any],
    loss: LossReport,
    storage: StorageFigures | None,
    now_ns: int,
) -> StageMeasurement:
    """What the thresholds judge of the hold `action` closes (`sent`: feed_sim's counters)."""
    measure = snapshot.measure
    pct = measure.percentiles()

    def lag(name: str) -> LagPercentiles | None:
        return lag_percentiles(measure, name, pct)

    duration_s = max(1e-9, ((sent.ended_ns or now_ns) - sent.started_ns) / 1e9)
    expected = action.expected_messages
    if expected and action.early_abort is not None:
        # The hold was cut short: the schedule promised only its share of the messages.
        planned_s = (
            scenario.rollback.verify_s
            if action.verify
            else scenario.stages[action.stage_index].hold_s
        )
        expected = int(expected * min(1.0, duration_s / planned_s))
    achieved_ratio = None
    if expected:
        achieved_ratio = sent.messages / expected
    late = hdr.percentiles(sent.lateness_us)
    return StageMeasurement(
        label=action.label,
        total=lag("total"),
        total_uncorrected=lag("total_uncorrected"),
        network=lag("network"),
        processing=lag("processing"),
        kafka=lag("kafka"),
        sut_rss_bytes_max=resources.get("rss_bytes_max"),
        network_mbps=resources.get("feed_mbps_mean"),
        loss_ratio=loss.loss_ratio_beyond_tolerance,
        duplicates=snapshot.completeness.totals().get("duplicates", 0),
        achieved_rate_ratio=achieved_ratio,
        generator_lateness_p99_us=late["p99"] if late["count"] else None,
        expected_messages=expected,
        storage=storage,
    )


def sut_exited(evaluation: StageEvaluation) -> StageEvaluation:
    """A hold during which the SUT died fails, whatever else was measured: the generator
    guard cannot make it inconclusive (feed_sim stops sending when its watcher is gone)."""
    died = ThresholdResult(
        "sut_alive", Verdict.FAIL, 0.0, 1.0, "", "the system under test exited mid-hold"
    )
    return dataclasses.replace(
        evaluation, verdict=Verdict.FAIL, results=(*evaluation.results, died)
    )


def hold_evidence(
    measurement: StageMeasurement,
    snapshot: CollectorSnapshot,
    resources: Mapping[str, Any],
    *,
    test_bed: TestBedLoad,
    judgement: TestBedJudgement,
    loss: LossReport,
    sut_dropping: Mapping[str, float],
    storage: Mapping[str, Any] | None,
    broken: Sequence[str],
) -> HoldEvidence:
    """What the diagnosis explains the hold with."""
    return HoldEvidence(
        total=measurement.total,
        hops={
            "network": measurement.network,
            "processing": measurement.processing,
            "kafka": measurement.kafka,
        },
        delivery=lag_percentiles(snapshot.measure, "delivery"),
        basis=snapshot.measure.basis,
        generator_lateness_p99_us=measurement.generator_lateness_p99_us,
        sut_cpu_cores_mean=cores(resources.get("cpu_percent_mean")),
        sut_cpu_cores_max=cores(resources.get("cpu_percent_max")),
        producer=resources.get("producer"),
        test_bed=test_bed,
        judgement=judgement,
        loss=loss.to_json() if loss.lost_beyond_tolerance else None,
        sut_dropping=sut_dropping,
        storage=storage,
        storage_broken=[name for name in broken if name.startswith("storage")],
    )
