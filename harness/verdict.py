"""The run verdict: from the plan's stage results and rollback outcome to contract 7's exit code.

Precedence, most severe first: 2 > 1 > 5 > 0.

- 2 ROLLBACK_FAILED: a stage FAILED and health was not shown restored -- the verify hold failed
  or was inconclusive, the first stage failed (nothing to roll back to: the plan stopped the
  feed), or the policy was abort / continue (no rollback, so no verified recovery).
- 1 ROLLED_BACK: a stage failed and the verify hold at the last good stage PASSED. Exit 1 is
  only ever given for a recovery that was measured.
- 5 INCONCLUSIVE: no stage failed but one was inconclusive (the load generator fell behind,
  or a failing stage ran on a test bed saturated mostly by the harness's own parts), or no
  stage was judged at all.
- 0 PASSED: every stage of the scenario was judged and passed.

Why a failure outranks an inconclusive stage: a broken threshold is a valid measurement of
the SUT, and an inconclusive stage elsewhere cannot undo it. Codes 3 (invalid scenario or
arguments) and 4 (infrastructure unavailable) are decided before or outside the plan (the CLI,
the infra layer); they are listed in harness.exit_codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.exit_codes import ExitCode
from harness.plan import PlanOutcome, RollbackOutcome, StageResult
from harness.thresholds import Verdict


@dataclass(frozen=True, slots=True)
class RunVerdict:
    """The exit code and a one-line reason for the terminal and summary.json."""

    code: ExitCode
    reason: str


def run_verdict(outcome: PlanOutcome, stage_count: int | None = None) -> RunVerdict:
    """Exit code and reason of a run; `stage_count` = stages in the scenario (to tell "all
    passed" from "the ramp stopped early")."""
    stages = outcome.stages
    failed = [s.label for s in stages if s.verdict is Verdict.FAIL]
    inconclusive = [s.label for s in stages if s.verdict is Verdict.INCONCLUSIVE]
    if failed:
        where = ", ".join(failed)
        if outcome.rollback is RollbackOutcome.HELD:
            recovery = f" in {outcome.recovery_s:.1f} s" if outcome.recovery_s is not None else ""
            return RunVerdict(
                ExitCode.ROLLED_BACK, f"{where} broke a threshold; the rollback held{recovery}"
            )
        why = {
            RollbackOutcome.NOT_RESTORED: "the verify hold after the rollback did not pass",
            RollbackOutcome.NO_GOOD_STAGE: "no earlier stage passed, nothing to roll back to",
            RollbackOutcome.NOT_ATTEMPTED: "no rollback was attempted (policy abort/continue)",
        }.get(outcome.rollback, "health was not shown restored")
        return RunVerdict(ExitCode.ROLLBACK_FAILED, f"{where} broke a threshold; {why}")
    if inconclusive:
        return RunVerdict(
            ExitCode.INCONCLUSIVE,
            "; ".join(
                f"{s.label} inconclusive: {_why_inconclusive(s)}"
                for s in stages
                if s.verdict is Verdict.INCONCLUSIVE
            ),
        )
    if not stages:
        return RunVerdict(ExitCode.INCONCLUSIVE, "no stage was judged")
    if stage_count is not None and len(stages) < stage_count:
        return RunVerdict(
            ExitCode.INCONCLUSIVE, f"only {len(stages)} of {stage_count} stages were judged"
        )
    return RunVerdict(ExitCode.PASSED, f"all {len(stages)} stages passed")


INCONCLUSIVE_BECAUSE = {
    "generator_lateness_p99_ms_max": "the load generator fell behind",
    "achieved_rate_ratio_min": "the load generator fell behind",
    "test_bed": "the test bed was saturated, mostly by the harness's own parts",
}


def _why_inconclusive(stage: StageResult) -> str:
    reasons = dict.fromkeys(INCONCLUSIVE_BECAUSE.get(n, n) for n in stage.inconclusive)
    return "; ".join(reasons) or "the load generator or the test bed fell short"


def exit_code(outcome: PlanOutcome, stage_count: int | None = None) -> ExitCode:
    """Contract 7's exit code for a plan outcome (see run_verdict)."""
    return run_verdict(outcome, stage_count).code
