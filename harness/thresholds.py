"""Threshold evaluation of one stage, the generator guard and the early-abort rule (pure).

`evaluate(measurement, thresholds)` checks a stage's measured figures (`StageMeasurement`)
against a scenario's `Thresholds` and returns a `StageEvaluation`: one `ThresholdResult` per
checked threshold (PASS / FAIL / INCONCLUSIVE, measured vs limit, a message) and the stage
verdict:

- INCONCLUSIVE when the generator guard trips: feed_sim's lateness P99 is above
  `generator_lateness_p99_ms_max`, or the achieved rate (sent / scheduled) is below
  `achieved_rate_ratio_min`. The load generator, not the SUT, fell behind, so the stage is
  neither passed nor failed -- whatever the other figures say (contract 2).
- FAIL when any threshold fails. Too few samples (< `min_samples` records, e.g. a SUT that
  produced nothing) is a failure with its own message, never a pass; a configured threshold
  whose figure was not measured (None) fails too ("set it to null to skip").
- PASS otherwise.

Lag limits apply to the CO-corrected total / per-hop percentiles and pass when measured is
strictly below the limit (the review's "P95 < 50 ms"); maxima (RSS, Mbps, loss, duplicates)
pass when measured <= limit. RSS limits are GiB (2**30 bytes).

With the scenario's `storage` (the ClickHouse writer as a measured hop, harness.storage_writer)
a hold is also judged on the storage hop's P95/P99 (when set), on the writer reaching Kafka's
end offsets (`storage_caught_up`) and on the rows after FINAL matching Kafka's records
(`storage_rows_mismatch_max`); a writer that gave no figures fails them as not measured.

Early abort ("lost beyond doubt", like a delayed abort): during a hold, a percentile limit
P_q can no longer be met once more samples are already above the limit than (1 - q) of the
most the stage can end with. With E = the stage's EXPECTED messages (rate x symbols x hold_s)
and a slack s (default 5 %) for messages beyond the schedule, P99 is lost when
`over + pending_over > 0.01 x E x (1 + s)` and P95 when it exceeds 0.05 x E x (1 + s).
`pending_over` counts messages sent but not yet received whose lag already exceeds the limit
(they can only arrive later, or never -- which fails the loss threshold), so a SUT that stalls
completely is caught too. See `beyond_doubt()` and `early_abort_reason()`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from harness.scenario import EarlyAbortConfig, Thresholds

GIB: Final = 1 << 30
US_PER_MS: Final = 1000.0


class Verdict(StrEnum):
    """Outcome of one threshold or one stage."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class LagPercentiles:
    """Percentiles (us) of one histogram and its sample count (as contracts.hdr.percentiles)."""

    p50: int
    p95: int
    p99: int
    p999: int
    max: int
    count: int

    @classmethod
    def from_dict(cls, figures: dict[str, int]) -> LagPercentiles:
        """From `contracts.hdr.percentiles()` output (keys p50, p95, p99, p99.9, max, count)."""
        return cls(
            p50=figures["p50"],
            p95=figures["p95"],
            p99=figures["p99"],
            p999=figures["p99.9"],
            max=figures["max"],
            count=figures["count"],
        )


@dataclass(frozen=True, slots=True)
class StorageFigures:
    """The storage hop of a hold and its reconciliation (None figures: the writer failed)."""

    lag: LagPercentiles | None
    caught_up: bool | None
    mismatch: int | None
    """Rows after FINAL minus the records Kafka holds (less malformed ones)."""


@dataclass(frozen=True, slots=True)
class StageMeasurement:
    """What was measured during one stage's hold (None = not measured)."""

    label: str
    total: LagPercentiles | None  # CO-corrected: observed - intended send time
    total_uncorrected: LagPercentiles | None = None  # observed - recv (reported, not judged)
    network: LagPercentiles | None = None
    processing: LagPercentiles | None = None
    kafka: LagPercentiles | None = None
    sut_rss_bytes_max: int | None = None
    network_mbps: float | None = None
    loss_ratio: float | None = None
    duplicates: int = 0
    achieved_rate_ratio: float | None = None
    generator_lateness_p99_us: int | None = None
    expected_messages: int | None = None
    storage: StorageFigures | None = None
    """With the scenario's `storage`: the ClickHouse hop and reconciliation (None = off)."""

    @property
    def samples(self) -> int:
        """Records that arrived (the CO-corrected total histogram's count)."""
        return 0 if self.total is None else self.total.count


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """One threshold checked: verdict, measured vs limit (in `unit`) and why."""

    name: str
    verdict: Verdict
    measured: float | None
    limit: float
    unit: str
    message: str


@dataclass(frozen=True, slots=True)
class StageEvaluation:
    """All threshold results of a stage and the stage verdict."""

    label: str
    verdict: Verdict
    results: tuple[ThresholdResult, ...]
    guard_tripped: bool

    @property
    def broken(self) -> tuple[str, ...]:
        """Names of the thresholds that failed."""
        return tuple(r.name for r in self.results if r.verdict is Verdict.FAIL)

    @property
    def inconclusive(self) -> tuple[str, ...]:
        """Names of the checks that were inconclusive (the generator guard, the test bed)."""
        return tuple(r.name for r in self.results if r.verdict is Verdict.INCONCLUSIVE)

    @property
    def summary(self) -> str:
        """One line: the verdict and the messages of what did not pass."""
        bad = [r.message for r in self.results if r.verdict is not Verdict.PASS]
        return f"{self.label}: {self.verdict.value}" + (": " + "; ".join(bad) if bad else "")


def _maximum(name: str, measured: float | None, limit: float, unit: str) -> ThresholdResult:
    if measured is None:
        return ThresholdResult(
            name,
            Verdict.FAIL,
            None,
            limit,
            unit,
            f"{name}: not measured (set thresholds.{name}: null to skip it)",
        )
    ok = measured <= limit
    relation = "<=" if ok else ">"
    return ThresholdResult(
        name,
        Verdict.PASS if ok else Verdict.FAIL,
        measured,
        limit,
        unit,
        f"{name}: {measured:g} {unit} {relation} limit {limit:g} {unit}",
    )


def _lag(
    name: str, figures: LagPercentiles | None, attr: str, limit_ms: float, hop: str
) -> ThresholdResult:
    if figures is None or figures.count == 0:
        return ThresholdResult(
            name,
            Verdict.FAIL,
            None,
            limit_ms,
            "ms",
            f"{name}: no {hop} lag samples, cannot show it is below {limit_ms:g} ms",
        )
    measured = getattr(figures, attr) / US_PER_MS
    ok = measured < limit_ms
    relation = "<" if ok else ">="
    return ThresholdResult(
        name,
        Verdict.PASS if ok else Verdict.FAIL,
        measured,
        limit_ms,
        "ms",
        f"{name}: {measured:g} ms {relation} limit {limit_ms:g} ms ({figures.count} samples)",
    )


def _storage(figures: StorageFigures, t: Thresholds) -> list[ThresholdResult]:
    """The storage hop's limits, whether the writer kept up and the row reconciliation."""
    results = [
        _lag(name, figures.lag, attr, limit, "storage")
        for name, limit, attr in (
            ("storage_lag_p95_ms", t.storage_lag_p95_ms, "p95"),
            ("storage_lag_p99_ms", t.storage_lag_p99_ms, "p99"),
        )
        if limit is not None
    ]
    kept_up = figures.caught_up is True
    results.append(
        ThresholdResult(
            "storage_caught_up",
            Verdict.PASS if kept_up else Verdict.FAIL,
            1.0 if kept_up else 0.0,
            1.0,
            "",
            "the ClickHouse writer reached Kafka's end offsets"
            if kept_up
            else "the ClickHouse writer did not reach Kafka's end offsets in time"
            if figures.caught_up is False
            else "the ClickHouse writer did not answer",
        )
    )
    mismatch = None if figures.mismatch is None else abs(figures.mismatch)
    result = _maximum(
        "storage_rows_mismatch_max",
        None if mismatch is None else float(mismatch),
        float(t.storage_rows_mismatch_max),
        "rows",
    )
    if figures.mismatch is not None and figures.mismatch != 0:
        what = "missing" if figures.mismatch < 0 else "more than Kafka holds"
        result = dataclasses.replace(
            result, message=f"{result.message} ({mismatch:,} rows {what} after FINAL)"
        )
    results.append(result)
    return results


def generator_guard(m: StageMeasurement, t: Thresholds) -> list[ThresholdResult]:
    """The two generator checks; INCONCLUSIVE (not FAIL) when the generator fell behind."""
    results: list[ThresholdResult] = []
    limit = t.generator_lateness_p99_ms_max
    if m.generator_lateness_p99_us is not None:
        late_ms = m.generator_lateness_p99_us / US_PER_MS
        ok = late_ms <= limit
        results.append(
            ThresholdResult(
                "generator_lateness_p99_ms_max",
                Verdict.PASS if ok else Verdict.INCONCLUSIVE,
                late_ms,
                limit,
                "ms",
                f"generator lateness P99 {late_ms:g} ms "
                + ("<= " if ok else "> ")
                + f"{limit:g} ms"
                + ("" if ok else ": the load generator fell behind, stage inconclusive"),
            )
        )
    ratio_min = t.achieved_rate_ratio_min
    if m.achieved_rate_ratio is not None:
        ok = m.achieved_rate_ratio >= ratio_min
        results.append(
            ThresholdResult(
                "achieved_rate_ratio_min",
                Verdict.PASS if ok else Verdict.INCONCLUSIVE,
                m.achieved_rate_ratio,
                ratio_min,
                "ratio",
                f"achieved rate {m.achieved_rate_ratio:.4f} of schedule "
                + (">= " if ok else "< ")
                + f"{ratio_min:g}"
                + ("" if ok else ": the load generator fell behind, stage inconclusive"),
            )
        )
    return results


def evaluate(m: StageMeasurement, t: Thresholds) -> StageEvaluation:
    """Check one stage's measurement against the thresholds (rules in the module docstring)."""
    results = generator_guard(m, t)
    guard_tripped = any(r.verdict is Verdict.INCONCLUSIVE for r in results)
    enough = m.samples >= t.min_samples
    results.append(
        ThresholdResult(
            "min_samples",
            Verdict.PASS if enough else Verdict.FAIL,
            float(m.samples),
            float(t.min_samples),
            "records",
            f"{m.samples} records arrived"
            + ("" if enough else f", fewer than the {t.min_samples} needed to judge the stage"),
        )
    )
    for name, limit, figures, attr, hop in (
        ("total_lag_p95_ms", t.total_lag_p95_ms, m.total, "p95", "total"),
        ("total_lag_p99_ms", t.total_lag_p99_ms, m.total, "p99", "total"),
        ("network_lag_p99_ms", t.network_lag_p99_ms, m.network, "p99", "network"),
        ("processing_lag_p99_ms", t.processing_lag_p99_ms, m.processing, "p99", "processing"),
        ("kafka_lag_p99_ms", t.kafka_lag_p99_ms, m.kafka, "p99", "kafka"),
    ):
        if limit is not None:
            results.append(_lag(name, figures, attr, limit, hop))
    if t.sut_rss_gb is not None:
        rss = None if m.sut_rss_bytes_max is None else m.sut_rss_bytes_max / GIB
        results.append(_maximum("sut_rss_gb", rss, t.sut_rss_gb, "GiB"))
    if t.network_mbps_max is not None:
        results.append(_maximum("network_mbps_max", m.network_mbps, t.network_mbps_max, "Mbps"))
    if m.storage is not None:
        results += _storage(m.storage, t)
    results.append(_maximum("loss_ratio_max", m.loss_ratio, t.loss_ratio_max, "ratio"))
    results.append(_maximum("duplicates_max", float(m.duplicates), t.duplicates_max, "records"))
    if guard_tripped:
        verdict = Verdict.INCONCLUSIVE
    elif any(r.verdict is Verdict.FAIL for r in results):
        verdict = Verdict.FAIL
    else:
        verdict = Verdict.PASS
    return StageEvaluation(m.label, verdict, tuple(results), guard_tripped)


def expected_messages(rate_per_symbol_hz: float, symbols: int, hold_s: float) -> int:
    """Messages a stage's hold should bring: rate x symbols x hold_s (rounded down)."""
    return int(rate_per_symbol_hz * symbols * hold_s)


def beyond_doubt(
    over_limit: int,
    expected_total: int,
    quantile: float,
    *,
    slack: float = 0.05,
    pending_over_limit: int = 0,
) -> bool:
    """True when the `quantile` (e.g. 0.99) can no longer stay under its limit: more samples
    are (or will be) above it than (1 - quantile) of the most the stage can end with."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile {quantile} is outside (0, 1)")
    if expected_total <= 0:
        return False
    budget = (1.0 - quantile) * expected_total * (1.0 + slack)
    return over_limit + pending_over_limit > budget


def early_abort_reason(
    t: Thresholds,
    rule: EarlyAbortConfig,
    *,
    expected_total: int | None,
    over_p95_limit: int,
    over_p99_limit: int,
    pending_over_p95_limit: int = 0,
    pending_over_p99_limit: int = 0,
) -> str | None:
    """Why the running hold is lost beyond doubt, or None (rule disabled, unknown E, or not
    lost yet). Counts are CO-corrected total-lag samples above each limit so far."""
    if not rule.enabled or expected_total is None or expected_total <= 0:
        return None
    checks = (
        ("P99", 0.99, t.total_lag_p99_ms, over_p99_limit, pending_over_p99_limit),
        ("P95", 0.95, t.total_lag_p95_ms, over_p95_limit, pending_over_p95_limit),
    )
    for name, quantile, limit, over, pending in checks:
        if limit is None:
            continue
        if beyond_doubt(
            over, expected_total, quantile, slack=rule.slack, pending_over_limit=pending
        ):
            share = (1 - quantile) * 100
            return (
                f"total lag {name} lost beyond doubt: {over + pending} samples above "
                f"{limit:g} ms, more than {share:g}% of the {expected_total} expected "
                f"(+{rule.slack:.0%} slack)"
            )
    return None
