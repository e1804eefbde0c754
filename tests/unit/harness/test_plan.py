"""The stage plan and rollback state machine, driven by a fake clock (no sleeps), and the
Locust shape that follows it (locust itself only in a subprocess: it monkey-patches gevent)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from typing import Any

import pytest

from harness.exit_codes import ExitCode
from harness.locust_shape import status_users
from harness.plan import (
    Action,
    Evaluate,
    Finish,
    Phase,
    RollbackOutcome,
    RunHook,
    SetSymbols,
    StagePlan,
    StartMeasuring,
    StopMeasuring,
)
from harness.scenario import Scenario
from harness.symbols import SymbolUniverse, load_universe
from harness.thresholds import Verdict
from harness.verdict import exit_code

P, F, INC = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE
S = 1_000_000_000


class FakeClock:
    """Nanoseconds that only move when the test says so."""

    def __init__(self) -> None:
        self.ns = 10 * S

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * S)


@pytest.fixture(scope="module")
def universe() -> SymbolUniverse:
    return load_universe()


def scenario(**rollback: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "t",
            "stages": [
                {"symbols": 5, "warmup_s": 2, "hold_s": 5},
                {"symbols": 10, "warmup_s": 2, "hold_s": 5},
                {"symbols": 20, "warmup_s": 2, "hold_s": 5, "rate_per_symbol_hz": 50},
            ],
            "rollback": {"settle_s": 1, "verify_s": 3, **rollback},
        }
    )


def run(
    plan: StagePlan, clock: FakeClock, verdicts: dict[str, Verdict]
) -> list[tuple[float, Action]]:
    """Drive the plan like the runner: tick every second, answer Evaluate from `verdicts`."""
    log: list[tuple[float, Action]] = []
    start = clock.ns
    pending: list[Action] = plan.start()
    for _ in range(1000):
        while pending:
            action = pending.pop(0)
            log.append(((clock.ns - start) / S, action))
            if isinstance(action, Evaluate):
                pending += plan.submit(verdicts.get(action.label, P), ["total_lag_p99_ms"])
            if isinstance(action, Finish):
                return log
        clock.advance(1)
        pending = plan.tick()
    raise AssertionError("the plan never finished")


def kinds(log: Iterable[tuple[float, Action]]) -> list[str]:
    out = []
    for t, a in log:
        label = getattr(a, "label", "")
        out.append(f"{t:g} {type(a).__name__} {label}".strip())
    return out


def test_all_stages_pass(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(), universe, clock)
    log = run(plan, clock, {})
    assert kinds(log) == [
        "0 SetSymbols stage-1",
        "2 StartMeasuring stage-1",
        "7 StopMeasuring stage-1",
        "7 Evaluate stage-1",
        "7 SetSymbols stage-2",
        "9 StartMeasuring stage-2",
        "14 StopMeasuring stage-2",
        "14 Evaluate stage-2",
        "14 SetSymbols stage-3",
        "16 StartMeasuring stage-3",
        "21 StopMeasuring stage-3",
        "21 Evaluate stage-3",
        "21 Finish",
    ]
    outcome = plan.outcome()
    assert [r.verdict for r in outcome.stages] == [P, P, P]
    assert outcome.rollback is RollbackOutcome.NONE and outcome.finished
    assert exit_code(outcome, len(plan.scenario.stages)) is ExitCode.PASSED
    sets = [a for _, a in log if isinstance(a, SetSymbols)]
    assert [len(a.symbols) for a in sets] == [5, 10, 20]
    assert [a.rate_per_symbol_hz for a in sets] == [100.0, 100.0, 50]
    assert plan.status().phase is Phase.DONE and status_users({"done": True}) is None


def test_warmup_is_not_measured_and_hold_is(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(), universe, clock)
    assert [type(a) for a in plan.start()] == [SetSymbols]
    status = plan.status()
    assert (status.phase, status.measuring, status.time_left_s) == (Phase.WARMUP, False, 2.0)
    assert status.label == "stage-1" and status.symbol_count == 5
    clock.advance(1.5)
    assert plan.tick() == [] and plan.status().time_left_s == 0.5
    clock.advance(0.5)
    assert plan.tick() == [StartMeasuring("stage-1")]
    assert (plan.status().phase, plan.status().measuring) == (Phase.HOLD, True)
    clock.advance(5)
    actions = plan.tick()
    assert actions[0] == StopMeasuring("stage-1")
    evaluate = actions[1]
    assert isinstance(evaluate, Evaluate) and not evaluate.verify
    assert evaluate.expected_messages == 5 * 100 * 5
    assert (plan.status().phase, plan.status().measuring) == (Phase.EVALUATE, False)
    assert [e.kind for e in plan.events] == ["stage_started", "measuring_started"]


def test_stage_subsets_are_nested_and_stratified(universe: SymbolUniverse) -> None:
    plan = StagePlan(Scenario(name="ramp"), universe, FakeClock())
    subsets = plan.stage_symbols
    assert [len(s) for s in subsets] == [50, 100, 200, 495]
    for small, big in itertools.pairwise(subsets):
        assert big[: len(small)] == small
    assert subsets[0] == tuple(i.symbol for i in universe.stratified_subset(50))
    assert set(subsets[-1]) == {i.symbol for i in universe.symbols}


def test_failure_rolls_back_to_the_last_good_stage_and_verify_passes(
    universe: SymbolUniverse,
) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(hook="notify {failed_stage} {good_stage}"), universe, clock)
    log = run(plan, clock, {"stage-3": F, "verify-2": P})
    assert kinds(log)[-8:] == [
        "21 StopMeasuring stage-3",
        "21 Evaluate stage-3",
        "21 SetSymbols verify-2",
        "21 RunHook",
        "22 StartMeasuring verify-2",
        "25 StopMeasuring verify-2",
        "25 Evaluate verify-2",
        "25 Finish",
    ]
    back = next(a for _, a in log if isinstance(a, SetSymbols) and a.label == "verify-2")
    assert back.symbols == plan.stage_symbols[1] and back.stage_index == 1
    hook = next(a for _, a in log if isinstance(a, RunHook))
    assert hook.values == {"failed_stage": "stage-3", "good_stage": "stage-2", "outcome": "pending"}
    verify = next(a for _, a in log if isinstance(a, Evaluate) and a.verify)
    assert verify.expected_messages == 10 * 100 * 3
    outcome = plan.outcome()
    assert [r.verdict for r in outcome.stages] == [P, P, F]
    assert outcome.verify is not None and outcome.verify.verdict is P
    assert outcome.rollback is RollbackOutcome.HELD
    assert outcome.recovery_s == 4.0  # settle 1 s + verify 3 s after the decision
    assert exit_code(outcome) is ExitCode.ROLLED_BACK
    events = [e.kind for e in plan.events]
    for kind in ("threshold_broken", "rollback_started", "hook_requested", "verify_started"):
        assert kind in events
    ended = next(e for e in plan.events if e.kind == "rollback_ended")
    assert ended.detail == {"outcome": "held", "recovery_s": 4.0}
    broken = next(e for e in plan.events if e.kind == "threshold_broken")
    assert broken.label == "stage-3" and broken.detail["thresholds"] == ["total_lag_p99_ms"]


def test_rollback_phases_report_status(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(), universe, clock)
    plan.start()
    for verdict in (P, F):
        clock.advance(2)
        plan.tick()  # warm-up over
        clock.advance(5)
        plan.tick()  # hold over
        plan.submit(verdict)
    status = plan.status()
    assert (status.phase, status.label, status.symbol_count) == (Phase.ROLLBACK, "verify-1", 5)
    assert not status.measuring and status_users({"symbols": status.symbol_count}) == (5, 50.0)
    clock.advance(1)
    assert plan.tick() == [StartMeasuring("verify-1")]
    assert plan.status().measuring and plan.status().phase is Phase.VERIFY


def test_verify_failure_means_rollback_not_restored(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(), universe, clock)
    run(plan, clock, {"stage-2": F, "verify-1": F})
    outcome = plan.outcome()
    assert outcome.rollback is RollbackOutcome.NOT_RESTORED and outcome.recovery_s is None
    assert exit_code(outcome) is ExitCode.ROLLBACK_FAILED


def test_inconclusive_verify_is_not_a_recovery(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(), universe, clock)
    run(plan, clock, {"stage-2": F, "verify-1": INC})
    assert plan.outcome().rollback is RollbackOutcome.NOT_RESTORED
    assert exit_code(plan.outcome()) is ExitCode.ROLLBACK_FAILED


def test_first_stage_failing_stops_the_feed_exit_2(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(hook="page"), universe, clock)
    log = run(plan, clock, {"stage-1": F})
    assert kinds(log)[-4:] == [
        "7 Evaluate stage-1",
        "7 SetSymbols stopped",
        "7 RunHook",
        "7 Finish",
    ]
    stop = log[-3][1]
    assert isinstance(stop, SetSymbols) and stop.symbols == ()
    assert plan.outcome().rollback is RollbackOutcome.NO_GOOD_STAGE
    assert exit_code(plan.outcome()) is ExitCode.ROLLBACK_FAILED


def test_abort_policy_stops_at_the_first_failure(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(policy="abort", hook="x"), universe, clock)
    log = run(plan, clock, {"stage-2": F})
    assert kinds(log)[-3:] == ["14 StopMeasuring stage-2", "14 Evaluate stage-2", "14 Finish"]
    assert plan.outcome().rollback is RollbackOutcome.NOT_ATTEMPTED
    assert exit_code(plan.outcome()) is ExitCode.ROLLBACK_FAILED


def test_continue_policy_records_and_goes_on(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(policy="continue"), universe, clock)
    run(plan, clock, {"stage-1": INC, "stage-2": F})
    outcome = plan.outcome()
    assert [r.verdict for r in outcome.stages] == [INC, F, P]
    assert exit_code(outcome) is ExitCode.ROLLBACK_FAILED
    clock2 = FakeClock()
    plan2 = StagePlan(scenario(policy="continue"), universe, clock2)
    run(plan2, clock2, {"stage-2": INC})
    assert exit_code(plan2.outcome(), 3) is ExitCode.INCONCLUSIVE


def test_inconclusive_stage_stops_the_ramp_exit_5(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(), universe, clock)
    log = run(plan, clock, {"stage-2": INC})
    assert isinstance(log[-1][1], Finish) and "load generator" in log[-1][1].reason
    assert [r.verdict for r in plan.outcome().stages] == [P, INC]
    assert exit_code(plan.outcome(), 3) is ExitCode.INCONCLUSIVE


def test_early_abort_ends_the_hold_and_cannot_pass(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(), universe, clock)
    plan.start()
    assert plan.abort_hold("too early") == []  # warm-up: nothing measured to abort
    clock.advance(3)
    plan.tick()
    actions = plan.abort_hold("total lag P99 lost beyond doubt")
    assert actions[0] == StopMeasuring("stage-1")
    evaluate = actions[1]
    assert isinstance(evaluate, Evaluate) and evaluate.early_abort is not None
    plan.submit(P)  # partial figures looked fine; the stage is still lost
    result = plan.outcome().stages[0]
    assert result.verdict is F and result.early_abort == "total lag P99 lost beyond doubt"
    assert plan.outcome().rollback is RollbackOutcome.NO_GOOD_STAGE


def test_hook_after_verify_gets_the_outcome(universe: SymbolUniverse) -> None:
    clock = FakeClock()
    plan = StagePlan(scenario(hook="report {outcome}", hook_at="verify_done"), universe, clock)
    log = run(plan, clock, {"stage-2": F})
    hooks = [a for _, a in log if isinstance(a, RunHook)]
    assert len(hooks) == 1 and hooks[0].values["outcome"] == "held"
    assert kinds(log)[-3:] == ["18 Evaluate verify-1", "18 RunHook", "18 Finish"]


def test_zero_warmup_measures_at_once_and_misuse_raises(universe: SymbolUniverse) -> None:
    plan = StagePlan(
        Scenario.model_validate({"name": "z", "stages": [{"symbols": 5, "warmup_s": 0}]}),
        universe,
        FakeClock(),
    )
    with pytest.raises(RuntimeError):
        plan.tick()
    assert [type(a) for a in plan.start()] == [SetSymbols, StartMeasuring]
    with pytest.raises(RuntimeError):
        plan.submit(P)
    with pytest.raises(RuntimeError):
        plan.start()


def test_tape_timing_has_no_expected_count(universe: SymbolUniverse) -> None:
    tape = Scenario.model_validate({"name": "tt", "feed": {"rate": {"model": "tape_timing"}}})
    assert StagePlan(tape, universe, FakeClock()).expected_messages(0) is None
    l2 = Scenario.model_validate({"name": "l2", "feed": {"level2_rate_per_symbol_hz": 20}})
    assert StagePlan(l2, universe, FakeClock()).expected_messages(0) == 50 * 120 * 120


def test_importing_the_plan_does_not_import_locust() -> None:
    code = "import sys, harness.plan, harness.locust_shape; print('locust' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


LOCUST_CHECK = textwrap.dedent(
    """
    import json
    from harness.locust_shape import status_shape
    from harness.plan import Evaluate, Phase, StagePlan
    from harness.scenario import Scenario
    from harness.symbols import load_universe
    from harness.thresholds import Verdict
    from locust import LoadTestShape

    now = [0]
    scenario = Scenario.model_validate({
        "name": "shape",
        "stages": [{"symbols": 5, "warmup_s": 1, "hold_s": 2},
                   {"symbols": 10, "warmup_s": 1, "hold_s": 2}],
        "rollback": {"settle_s": 1, "verify_s": 2},
    })
    plan = StagePlan(scenario, load_universe(), lambda: now[0])
    verdicts = {"stage-2": Verdict.FAIL}

    def drive(actions):
        for action in actions:
            if isinstance(action, Evaluate):
                drive(plan.submit(verdicts.get(action.label, Verdict.PASS)))

    def live_status():  # what the runner writes to live.json each second
        status = plan.status()
        return {"symbols": status.symbol_count, "done": status.phase is Phase.DONE}

    drive(plan.start())
    shape = status_shape(live_status)
    ticks = []
    for second in range(1, 20):
        now[0] = second * 1_000_000_000
        drive(plan.tick())
        ticks.append(shape.tick())
        if ticks[-1] is None:
            break
    print(json.dumps({"ticks": ticks, "is_shape": isinstance(shape, LoadTestShape),
                      "rollback": plan.rollback.value}))
    """
)


def test_locust_shape_tick_sequence_in_a_subprocess() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LOCUST_CHECK], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["is_shape"] and result["rollback"] == "held"
    ticks = [None if t is None else tuple(t) for t in result["ticks"]]
    # stage-1: 3 s at 5 symbols; stage-2: 3 s at 10 (fails); rollback to 5: settle 1 + verify 2
    assert ticks == [(5, 50.0)] * 2 + [(10, 50.0)] * 3 + [(5, 50.0)] * 3 + [None]
