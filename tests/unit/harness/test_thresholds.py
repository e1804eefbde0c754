"""Threshold evaluation of a stage, the generator guard, no-data failures, the early-abort rule
and the exit-code precedence of harness.verdict."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.hdr import count_above, new_histogram, record_many
from harness.exit_codes import ExitCode
from harness.plan import PlanOutcome, RollbackOutcome, StageResult
from harness.scenario import EarlyAbortConfig, Thresholds
from harness.thresholds import (
    GIB,
    LagPercentiles,
    StageMeasurement,
    Verdict,
    beyond_doubt,
    early_abort_reason,
    evaluate,
)
from harness.verdict import exit_code, run_verdict

T = Thresholds()


def lag(p95_ms: float, p99_ms: float, count: int = 600_000) -> LagPercentiles:
    return LagPercentiles(
        p50=1_000,
        p95=int(p95_ms * 1000),
        p99=int(p99_ms * 1000),
        p999=int(p99_ms * 2000),
        max=int(p99_ms * 5000),
        count=count,
    )


GOOD = StageMeasurement(
    label="stage-1",
    total=lag(20, 60),
    total_uncorrected=lag(10, 30),
    network=lag(1, 2),
    processing=lag(5, 10),
    kafka=lag(10, 40),
    sut_rss_bytes_max=2 * GIB,
    network_mbps=12.5,
    loss_ratio=0.0,
    duplicates=0,
    achieved_rate_ratio=1.0,
    generator_lateness_p99_us=300,
    expected_messages=600_000,
)


def with_(**changes: object) -> StageMeasurement:
    return dataclasses.replace(GOOD, **changes)  # type: ignore[arg-type]


def test_a_healthy_stage_passes_every_threshold() -> None:
    result = evaluate(GOOD, T)
    assert result.verdict is Verdict.PASS
    assert not result.guard_tripped and result.broken == ()
    names = {r.name for r in result.results}
    assert {"total_lag_p95_ms", "total_lag_p99_ms", "sut_rss_gb", "loss_ratio_max"} <= names
    assert "network_mbps_max" not in names  # off by default: not a pass/fail figure


def test_p99_over_the_limit_fails_with_measured_and_limit() -> None:
    result = evaluate(with_(total=lag(40, 180)), T)
    assert result.verdict is Verdict.FAIL
    assert result.broken == ("total_lag_p99_ms",)
    p99 = next(r for r in result.results if r.name == "total_lag_p99_ms")
    assert (p99.measured, p99.limit, p99.unit) == (180.0, 100.0, "ms")
    assert "180 ms >= limit 100 ms" in p99.message
    assert "total_lag_p99_ms" in result.summary


def test_lag_limits_are_strict_and_maxima_inclusive() -> None:
    assert evaluate(with_(total=lag(50, 60)), T).broken == ("total_lag_p95_ms",)
    assert evaluate(with_(sut_rss_bytes_max=4 * GIB), T).verdict is Verdict.PASS
    assert evaluate(with_(sut_rss_bytes_max=4 * GIB + 1), T).broken == ("sut_rss_gb",)


def test_loss_and_duplicates_fail() -> None:
    assert evaluate(with_(loss_ratio=1e-6), T).broken == ("loss_ratio_max",)
    assert evaluate(with_(duplicates=3), T).broken == ("duplicates_max",)
    lenient = Thresholds(loss_ratio_max=0.001, duplicates_max=5)
    assert evaluate(with_(loss_ratio=1e-6, duplicates=3), lenient).verdict is Verdict.PASS


def test_per_hop_and_network_thresholds_only_when_configured() -> None:
    strict = Thresholds(kafka_lag_p99_ms=20, network_mbps_max=10)
    result = evaluate(GOOD, strict)
    assert set(result.broken) == {"kafka_lag_p99_ms", "network_mbps_max"}
    no_hops = evaluate(with_(kafka=None), Thresholds(kafka_lag_p99_ms=20))
    assert no_hops.broken == ("kafka_lag_p99_ms",)
    assert "no kafka lag samples" in no_hops.summary


def test_a_sut_that_produced_nothing_fails() -> None:
    result = evaluate(with_(total=None, network=None, processing=None, kafka=None), T)
    assert result.verdict is Verdict.FAIL
    assert "min_samples" in result.broken and "total_lag_p99_ms" in result.broken
    assert "0 records arrived, fewer than the 100 needed" in result.summary


def test_too_few_samples_fail_even_if_fast() -> None:
    result = evaluate(with_(total=lag(1, 2, count=99)), T)
    assert result.broken == ("min_samples",)


def test_unmeasured_configured_threshold_fails_and_null_skips_it() -> None:
    result = evaluate(with_(sut_rss_bytes_max=None), T)
    assert result.broken == ("sut_rss_gb",)
    assert "set thresholds.sut_rss_gb: null" in result.summary
    assert evaluate(with_(sut_rss_bytes_max=None), Thresholds(sut_rss_gb=None)).broken == ()


@pytest.mark.parametrize(
    "guard",
    [{"generator_lateness_p99_us": 12_000}, {"achieved_rate_ratio": 0.9}],
    ids=["lateness", "achieved-rate"],
)
def test_generator_guard_makes_the_stage_inconclusive_never_pass_or_fail(
    guard: dict[str, float],
) -> None:
    passing = evaluate(with_(**guard), T)
    failing = evaluate(with_(total=lag(90, 900), loss_ratio=0.1, **guard), T)
    empty = evaluate(with_(total=None, **guard), T)
    for result in (passing, failing, empty):
        assert result.verdict is Verdict.INCONCLUSIVE
        assert result.guard_tripped
        assert "load generator fell behind" in result.summary
    outcome = PlanOutcome(
        (StageResult("stage-1", 0, 50, passing.verdict, False),),
        None,
        RollbackOutcome.NONE,
        None,
        True,
    )
    assert exit_code(outcome) is ExitCode.INCONCLUSIVE


# --- early abort ----------------------------------------------------------------------------


def test_beyond_doubt_p99_and_p95_budgets() -> None:
    assert not beyond_doubt(1_050, 100_000, 0.99)  # 1% of 100k x 1.05
    assert beyond_doubt(1_051, 100_000, 0.99)
    assert beyond_doubt(1_001, 100_000, 0.99, slack=0.0)
    assert not beyond_doubt(5_000, 100_000, 0.95, slack=0.0)
    assert beyond_doubt(5_001, 100_000, 0.95, slack=0.0)
    assert beyond_doubt(0, 100_000, 0.99, slack=0.0, pending_over_limit=1_001)  # a stalled SUT
    assert not beyond_doubt(10, 0, 0.99)
    with pytest.raises(ValueError):
        beyond_doubt(1, 10, 1.0)


@given(
    expected=st.integers(1, 10_000_000),
    over=st.integers(0, 10_000_000),
    slack=st.floats(0, 1),
    quantile=st.sampled_from([0.95, 0.99, 0.999]),
)
def test_beyond_doubt_is_sound(expected: int, over: int, slack: float, quantile: float) -> None:
    """When it says "lost", no final count up to E x (1 + slack) can keep the quantile."""
    if beyond_doubt(over, expected, quantile, slack=slack):
        most = int(expected * (1 + slack))
        assert over > (1 - quantile) * most


def test_early_abort_reason() -> None:
    rule = EarlyAbortConfig()
    kwargs = {"expected_total": 600_000, "over_p95_limit": 100, "over_p99_limit": 100}
    assert early_abort_reason(T, rule, **kwargs) is None
    lost = dict(kwargs, over_p99_limit=7_000)
    reason = early_abort_reason(T, rule, **lost)
    assert reason is not None and reason.startswith("total lag P99 lost beyond doubt")
    assert early_abort_reason(T, EarlyAbortConfig(enabled=False), **lost) is None
    unknown = {"over_p95_limit": 100, "over_p99_limit": 7_000}
    assert early_abort_reason(T, rule, expected_total=None, **unknown) is None
    p95 = early_abort_reason(T, rule, **dict(kwargs, over_p95_limit=40_000))
    assert p95 is not None and "P95" in p95


def test_count_above_is_conservative_on_hdr_buckets() -> None:
    hist = new_histogram()
    record_many(hist, [1_000] * 990 + [250_000] * 10)
    assert count_above(hist, 100_000) == 10
    assert count_above(hist, 250_000) == 0  # equal is not above
    assert count_above(hist, 249_000) == 10
    assert count_above(new_histogram(), 1) == 0


# --- exit codes -----------------------------------------------------------------------------


def outcome_of(*verdicts: Verdict, rollback: RollbackOutcome = RollbackOutcome.NONE) -> PlanOutcome:
    stages = tuple(
        StageResult(f"stage-{i + 1}", i, 50 * (i + 1), v, False) for i, v in enumerate(verdicts)
    )
    recovery = 70.0 if rollback is RollbackOutcome.HELD else None
    return PlanOutcome(stages, None, rollback, recovery, True)


P, F, INC = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("verdicts", "rollback", "code"),
    [
        ((P, P, P, P), RollbackOutcome.NONE, ExitCode.PASSED),
        ((P, P, F), RollbackOutcome.HELD, ExitCode.ROLLED_BACK),
        ((P, P, F), RollbackOutcome.NOT_RESTORED, ExitCode.ROLLBACK_FAILED),
        ((F,), RollbackOutcome.NO_GOOD_STAGE, ExitCode.ROLLBACK_FAILED),
        ((P, F), RollbackOutcome.NOT_ATTEMPTED, ExitCode.ROLLBACK_FAILED),
        ((P, INC), RollbackOutcome.NONE, ExitCode.INCONCLUSIVE),
        ((P, INC, F), RollbackOutcome.HELD, ExitCode.ROLLED_BACK),  # failure outranks 5
        ((INC, F, P), RollbackOutcome.NOT_ATTEMPTED, ExitCode.ROLLBACK_FAILED),
        ((), RollbackOutcome.NONE, ExitCode.INCONCLUSIVE),
    ],
)
def test_exit_code_precedence(
    verdicts: tuple[Verdict, ...], rollback: RollbackOutcome, code: ExitCode
) -> None:
    assert exit_code(outcome_of(*verdicts, rollback=rollback)) is code


def test_run_verdict_reasons() -> None:
    held = run_verdict(outcome_of(P, F, rollback=RollbackOutcome.HELD))
    assert held.reason == "stage-2 broke a threshold; the rollback held in 70.0 s"
    short = run_verdict(outcome_of(P, P), stage_count=4)
    assert short.code is ExitCode.INCONCLUSIVE and "only 2 of 4" in short.reason
    assert run_verdict(outcome_of(P, P), stage_count=2).code is ExitCode.PASSED


def test_generator_guard_default_is_a_tenth_of_the_p99_budget() -> None:
    defaults = Thresholds()
    assert defaults.total_lag_p99_ms is not None
    assert defaults.generator_lateness_p99_ms_max == defaults.total_lag_p99_ms / 10
