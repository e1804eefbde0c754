"""The stage plan and the rollback state machine of `harness run` (pure: no I/O, no sleeps).

`StagePlan` is driven by an injected clock (`now_ns`, nanoseconds; default
`time.perf_counter_ns`) and fed verdicts. The runner calls `start()`, then `tick()` about once a
second, performs the actions returned (`SetSymbols`, `StartMeasuring`, `StopMeasuring`,
`Evaluate`, `RunHook`, `Finish`), answers each `Evaluate` with `submit(verdict)`, and may call
`abort_hold(reason)` when harness.thresholds says the hold is lost beyond doubt.

Phases of a stage: WARMUP (symbols set, not measured) -> HOLD (measured) -> EVALUATE (waiting
for the verdict). Then:

- PASS: the next stage (its symbols are a superset: `stratified_subset(n)` prefixes) or DONE.
- FAIL, policy step_back: ROLLBACK -- the SUT and the feed go back to the last passing stage's
  symbols (settle_s, not measured) -> VERIFY (verify_s, measured) -> EVALUATE -> DONE with
  rollback outcome HELD (verify passed) or NOT_RESTORED (failed or inconclusive). Recovery time
  = from the rollback decision to the end of the verify hold that passed. If the FIRST stage
  fails there is no good stage: the plan goes to zero symbols (stops the feed) and ends with
  NO_GOOD_STAGE. The hook (if any) is requested at `hook_at`: when the rollback starts (the
  default, so its work counts in the recovery time) or once the verify hold is judged.
- FAIL, policy abort: DONE at once (rollback NOT_ATTEMPTED); policy continue: record the
  failure and go on to the next stage.
- INCONCLUSIVE (the generator fell behind, or the test bed was saturated by the harness's own
  parts): the ramp stops (a bigger stage needs more from both), except under policy continue,
  which goes on.

Labels: stage i (0-based) is "stage-{i+1}", the verify hold after a rollback "verify-{i+1}"
for the stage returned to; they tag histograms, .hlog intervals and feed_sim counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from harness.scenario import Scenario
from harness.symbols import SymbolUniverse
from harness.thresholds import Verdict

NS_PER_S: Final = 1_000_000_000


class Phase(StrEnum):
    """Where the plan is."""

    WARMUP = "warmup"
    HOLD = "hold"
    EVALUATE = "evaluate"
    ROLLBACK = "rollback"  # back at the last good stage's symbols, settling (not measured)
    VERIFY = "verify"  # measured hold after a rollback
    DONE = "done"


class RollbackOutcome(StrEnum):
    """How the plan dealt with a failure (input of harness.verdict)."""

    NONE = "none"  # no stage failed
    HELD = "held"  # rolled back and the verify hold passed
    NOT_RESTORED = "not_restored"  # rolled back but the verify hold failed or was inconclusive
    NO_GOOD_STAGE = "no_good_stage"  # the first stage failed: nothing to roll back to
    NOT_ATTEMPTED = "not_attempted"  # policy abort or continue


# --- actions the runner performs ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetSymbols:
    """Make the SUT subscribe to and the feed send exactly `symbols` (empty = stop the feed)."""

    label: str
    stage_index: int | None
    symbols: tuple[str, ...]
    rate_per_symbol_hz: float | None


@dataclass(frozen=True, slots=True)
class StartMeasuring:
    """Start counting into `label`'s histograms and counters."""

    label: str


@dataclass(frozen=True, slots=True)
class StopMeasuring:
    """Stop counting into `label`'s histograms and counters."""

    label: str


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Judge `label`'s measurement and `submit()` the verdict; `early_abort` gives the reason
    when the hold was cut short (the verdict is then FAIL unless inconclusive)."""

    label: str
    stage_index: int
    verify: bool
    expected_messages: int | None
    early_abort: str | None = None


@dataclass(frozen=True, slots=True)
class RunHook:
    """Run the rollback hook template with these plan-side placeholder values."""

    command: str
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class Finish:
    """The plan is done; stop the feed and the SUT, write the summary."""

    reason: str


Action = SetSymbols | StartMeasuring | StopMeasuring | Evaluate | RunHook | Finish


# --- records --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """Something that happened, at `t_ns` of the plan's clock (elapsed since start)."""

    kind: str  # stage_started, measuring_started, stage_ended, threshold_broken, early_abort,
    # rollback_started, verify_started, rollback_ended, hook_requested, finished
    t_ns: int
    label: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StageResult:
    """The verdict of one measured hold (a stage or a verify hold)."""

    label: str
    stage_index: int
    symbols: int
    verdict: Verdict
    verify: bool
    broken: tuple[str, ...] = ()
    early_abort: str | None = None
    inconclusive: tuple[str, ...] = ()
    """Names of the checks that made the hold inconclusive (generator guard, test bed)."""


@dataclass(frozen=True, slots=True)
class PlanStatus:
    """What the runner (and the progress line, the Locust shape) needs each tick."""

    stage_index: int | None
    label: str
    phase: Phase
    symbols: tuple[str, ...]
    rate_per_symbol_hz: float | None
    time_left_s: float
    measuring: bool

    @property
    def symbol_count(self) -> int:
        return len(self.symbols)


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """Everything harness.verdict needs: stage verdicts (not verify holds) and the rollback."""

    stages: tuple[StageResult, ...]
    verify: StageResult | None
    rollback: RollbackOutcome
    recovery_s: float | None
    finished: bool


# --- the plan -------------------------------------------------------------------------------


class StagePlan:
    """The ramp of one scenario over its nested, stratified symbol subsets."""

    def __init__(
        self,
        scenario: Scenario,
        universe: SymbolUniverse,
        now_ns: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.scenario = scenario
        self._now = now_ns
        self.stage_symbols: tuple[tuple[str, ...], ...] = tuple(
            tuple(info.symbol for info in universe.stratified_subset(stage.symbols))
            for stage in scenario.stages
        )
        self.events: list[PlanEvent] = []
        self.results: list[StageResult] = []
        self.rollback = RollbackOutcome.NONE
        self.recovery_s: float | None = None
        self._t0: int | None = None
        self._phase = Phase.WARMUP
        self._index = 0  # stage (or, in ROLLBACK/VERIFY, the stage returned to)
        self._phase_end = 0
        self._last_good: int | None = None
        self._failed: int | None = None
        self._decision_ns = 0
        self._hold_end_ns = 0
        self._early_abort: str | None = None
        self._finished = False

    # --- queries ---

    @property
    def phase(self) -> Phase:
        return self._phase

    def label(self) -> str:
        prefix = "verify" if self._phase in (Phase.ROLLBACK, Phase.VERIFY) else "stage"
        if self._phase is Phase.EVALUATE and self._verifying:
            prefix = "verify"
        return f"{prefix}-{self._index + 1}"

    def status(self) -> PlanStatus:
        """The current stage, phase, symbols, rate, time left and whether it is measured."""
        now = self._now()
        if self._phase is Phase.DONE:
            return PlanStatus(None, "done", Phase.DONE, (), None, 0.0, False)
        left = max(0, self._phase_end - now) if self._phase is not Phase.EVALUATE else 0
        return PlanStatus(
            self._index,
            self.label(),
            self._phase,
            self.stage_symbols[self._index],
            self.scenario.stage_rate_hz(self._index),
            left / NS_PER_S,
            self._phase in (Phase.HOLD, Phase.VERIFY),
        )

    def expected_messages(self, index: int, hold_s: float | None = None) -> int | None:
        """Messages a hold of stage `index` should bring (Level 1 + Level 2); None under tape
        timing, where feed_sim alone knows."""
        rate = self.scenario.stage_rate_hz(index)
        if rate is None:
            return None
        rate += self.scenario.feed.level2_rate_per_symbol_hz
        seconds = self.scenario.stages[index].hold_s if hold_s is None else hold_s
        return int(rate * len(self.stage_symbols[index]) * seconds)

    def outcome(self) -> PlanOutcome:
        """The stage verdicts so far and how the rollback went."""
        stages = tuple(r for r in self.results if not r.verify)
        verify = next((r for r in self.results if r.verify), None)
        return PlanOutcome(stages, verify, self.rollback, self.recovery_s, self._finished)

    # --- driving ---

    def start(self) -> list[Action]:
        """Begin the first stage."""
        if self._t0 is not None:
            raise RuntimeError("the plan has already started")
        self._t0 = self._now()
        return self._begin_stage(0)

    def tick(self) -> list[Action]:
        """Advance by the clock: end warm-ups, holds, settles and verify holds that are due."""
        if self._t0 is None:
            raise RuntimeError("call start() first")
        actions: list[Action] = []
        while self._phase in (Phase.WARMUP, Phase.HOLD, Phase.ROLLBACK, Phase.VERIFY):
            if self._now() < self._phase_end:
                break
            actions += self._phase_over()
        return actions

    def abort_hold(self, reason: str) -> list[Action]:
        """End the running hold now: it is lost beyond doubt (harness.thresholds)."""
        if self._phase not in (Phase.HOLD, Phase.VERIFY):
            return []
        self._early_abort = reason
        self._event("early_abort", reason=reason)
        return self._end_hold()

    def submit(
        self, verdict: Verdict, broken: Sequence[str] = (), inconclusive: Sequence[str] = ()
    ) -> list[Action]:
        """The verdict of the hold that `Evaluate` asked for (with the names of the checks
        that failed it or made it inconclusive); returns the next actions."""
        if self._phase is not Phase.EVALUATE:
            raise RuntimeError(f"no evaluation pending (phase {self._phase})")
        reason, self._early_abort = self._early_abort, None
        if reason is not None and verdict is Verdict.PASS:
            verdict = Verdict.FAIL  # lost beyond doubt: partial figures cannot make it pass
        result = StageResult(
            self.label(),
            self._index,
            len(self.stage_symbols[self._index]),
            verdict,
            self._verifying,
            tuple(broken),
            reason,
            tuple(inconclusive),
        )
        self.results.append(result)
        self._event("stage_ended", verdict=verdict.value, broken=list(broken))
        if verdict is Verdict.FAIL:
            self._event("threshold_broken", thresholds=list(broken), early_abort=reason)
        if self._verifying:
            return self._verify_judged(verdict)
        return self._stage_judged(verdict)

    # --- transitions ---

    @property
    def _verifying(self) -> bool:
        return self._failed is not None and self._last_good is not None

    def _elapsed(self) -> int:
        return self._now() - (self._t0 or 0)

    def _event(self, kind: str, **detail: Any) -> None:
        label = "done" if self._phase is Phase.DONE else self.label()
        self.events.append(PlanEvent(kind, self._elapsed(), label, detail))

    def _set_phase(self, phase: Phase, seconds: float) -> None:
        self._phase = phase
        self._phase_end = self._now() + int(seconds * NS_PER_S)

    def _set_symbols(self) -> SetSymbols:
        return SetSymbols(
            self.label(),
            self._index,
            self.stage_symbols[self._index],
            self.scenario.stage_rate_hz(self._index),
        )

    def _begin_stage(self, index: int) -> list[Action]:
        self._index = index
        stage = self.scenario.stages[index]
        self._set_phase(Phase.WARMUP, stage.warmup_s)
        self._event("stage_started", symbols=stage.symbols, warmup_s=stage.warmup_s)
        return [self._set_symbols(), *self.tick()]

    def _phase_over(self) -> list[Action]:
        if self._phase is Phase.WARMUP:
            self._set_phase(Phase.HOLD, self.scenario.stages[self._index].hold_s)
            self._event("measuring_started")
            return [StartMeasuring(self.label())]
        if self._phase is Phase.ROLLBACK:
            self._set_phase(Phase.VERIFY, self.scenario.rollback.verify_s)
            self._event("verify_started")
            return [StartMeasuring(self.label())]
        return self._end_hold()

    def _end_hold(self) -> list[Action]:
        label = self.label()
        verify = self._phase is Phase.VERIFY
        hold_s = self.scenario.rollback.verify_s if verify else None
        self._phase = Phase.EVALUATE
        self._hold_end_ns = self._now()
        return [
            StopMeasuring(label),
            Evaluate(
                label,
                self._index,
                verify,
                self.expected_messages(self._index, hold_s),
                self._early_abort,
            ),
        ]

    def _stage_judged(self, verdict: Verdict) -> list[Action]:
        policy = self.scenario.rollback.policy
        last = self._index == len(self.scenario.stages) - 1
        if verdict is Verdict.PASS:
            self._last_good = self._index
            return self._finish("all stages passed") if last else self._begin_stage(self._index + 1)
        if policy == "continue":
            if verdict is Verdict.FAIL:
                self.rollback = RollbackOutcome.NOT_ATTEMPTED
            return self._finish("last stage judged") if last else self._begin_stage(self._index + 1)
        if verdict is Verdict.INCONCLUSIVE:
            return self._finish(
                f"{self.label()} inconclusive: the load generator or the test bed fell short"
            )
        if policy == "abort":
            self.rollback = RollbackOutcome.NOT_ATTEMPTED
            return self._finish(f"{self.label()} failed; policy abort")
        return self._roll_back()

    def _roll_back(self) -> list[Action]:
        failed_label = self.label()
        self._failed = self._index
        self._decision_ns = self._now()
        cfg = self.scenario.rollback
        if self._last_good is None:
            self.rollback = RollbackOutcome.NO_GOOD_STAGE
            self._event("rollback_started", failed=failed_label, to=None)
            actions: list[Action] = [SetSymbols("stopped", None, (), None)]
            actions += self._hook("rollback_started", failed_label, "", "pending")
            self._event("rollback_ended", outcome=self.rollback.value)
            return actions + self._finish(f"{failed_label} failed and no earlier stage passed")
        self._index = self._last_good
        self._set_phase(Phase.ROLLBACK, cfg.settle_s)
        self._event("rollback_started", failed=failed_label, to=f"stage-{self._index + 1}")
        actions = [self._set_symbols()]
        actions += self._hook("rollback_started", failed_label, self._good_label(), "pending")
        return actions + self.tick()

    def _good_label(self) -> str:
        return "" if self._last_good is None else f"stage-{self._last_good + 1}"

    def _verify_judged(self, verdict: Verdict) -> list[Action]:
        failed_label = f"stage-{(self._failed or 0) + 1}"
        if verdict is Verdict.PASS:
            self.rollback = RollbackOutcome.HELD
            self.recovery_s = (self._hold_end_ns - self._decision_ns) / NS_PER_S
        else:
            self.rollback = RollbackOutcome.NOT_RESTORED
        self._event("rollback_ended", outcome=self.rollback.value, recovery_s=self.recovery_s)
        actions = self._hook("verify_done", failed_label, self._good_label(), self.rollback.value)
        return actions + self._finish(f"rollback {self.rollback.value}")

    def _hook(self, when: str, failed: str, good: str, outcome: str) -> list[Action]:
        cfg = self.scenario.rollback
        if cfg.hook is None or cfg.hook_at != when:
            return []
        self._event("hook_requested", when=when)
        values = {"failed_stage": failed, "good_stage": good, "outcome": outcome}
        return [RunHook(cfg.hook, values)]

    def _finish(self, reason: str) -> list[Action]:
        self._phase = Phase.DONE
        self._finished = True
        self._event("finished", reason=reason)
        return [Finish(reason)]
