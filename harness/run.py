"""Composition root of `harness run SCENARIO`: infrastructure, feed_sim, SUT, collector,
sampler and the stage plan, wired together; results written as the run goes.

The loop ticks the plan about once a second and performs its actions: `SetSymbols` goes to the
SUT (live reload or restart, per adapter) and to feed_sim (active symbols and rate);
`StartMeasuring` opens a stage label in feed_sim's counters and the collector's histograms;
`Evaluate` snapshots both, builds the stage measurement, judges it against the thresholds and
submits the verdict; `RunHook` runs the rollback hook; `Finish` ends the run. Every stage is
written to summary.json, the .hlog and junit.xml as soon as it is judged, so an interrupted
run keeps what it measured. Whatever the runner started is stopped in `finally`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from harness import hdr, paths
from harness.collector.client import CollectorProcess, CollectorSnapshot
from harness.collector.completeness import compare
from harness.exit_codes import ExitCode
from harness.feed_process import FeedSimProcess
from harness.infra.errors import InfraError
from harness.infra.kafka_local import LocalKafka
from harness.infra.topics import ensure_topics, feed_topic_specs
from harness.plan import (
    Evaluate,
    Finish,
    RunHook,
    SetSymbols,
    StagePlan,
    StartMeasuring,
    StopMeasuring,
)
from harness.results.hlog import append_intervals
from harness.results.junit import write_junit
from harness.results.summary import SummaryWriter, run_metadata, stage_entry
from harness.sampler import ResourceSampler
from harness.scenario import Scenario
from harness.sut.base import KafkaEndpoints, SutError
from harness.sut.factory import make_sut
from harness.symbols import load_universe
from harness.thresholds import LagPercentiles, StageMeasurement, Verdict, evaluate
from harness.verdict import run_verdict

log = logging.getLogger(__name__)


class RunInterrupted(Exception):
    """Ctrl-C: stop cleanly and keep the results written so far."""


@dataclasses.dataclass
class RunContext:
    """What the run started; `close()` stops it all, in reverse order."""

    kafka: LocalKafka | None = None
    bootstrap: str = ""
    feed: FeedSimProcess | None = None
    sut: Any = None
    collector: CollectorProcess | None = None
    sampler: ResourceSampler | None = None

    def close(self) -> None:
        steps: list[Callable[[], object]] = []
        if self.sampler is not None:
            steps.append(self.sampler.stop)
        if self.collector is not None:
            steps.append(lambda: self.collector.stop(timeout_s=30) if self.collector else None)
        if self.sut is not None:
            steps.append(lambda: self.sut.stop(timeout_s=60))
        if self.feed is not None:
            steps.append(self.feed.stop)
        if self.kafka is not None:
            steps.append(self.kafka.down)
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping a run component failed")


class HarnessRun:
    """One run of a scenario; `execute()` returns the exit code (contract 7)."""

    def __init__(
        self,
        scenario: Scenario,
        scenario_path: Path,
        console: Console,
        results_root: Path | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.scenario = scenario
        self.scenario_path = scenario_path
        self.console = console
        self.clock_ns = clock_ns
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        root = results_root or scenario.resolve(scenario.outputs.dir)
        self.run_dir = root / f"{stamp}-{scenario.name}"
        self.universe = load_universe(scenario.resolve(scenario.symbols_file))
        self.ctx = RunContext()
        self.stage_rows: list[dict[str, Any]] = []
        self.measuring: str | None = None
        self.started = False

    # -- lifecycle ------------------------------------------------------------------------------

    def execute(self) -> ExitCode:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.summary = SummaryWriter(
            self.run_dir,
            run_metadata(
                self.scenario.name, self.scenario_path.read_text(), started_ns=self.clock_ns()
            ),
        )
        self.run_start_ns = self.clock_ns()
        self.console.print(f"results: {self.run_dir}")
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            self._start_infrastructure()
            plan = StagePlan(self.scenario, self.universe)
            code = self._drive(plan)
        except InfraError as exc:
            self.console.print(f"[red]infrastructure unavailable:[/] {exc}")
            self.summary.add_event("infrastructure_unavailable", error=str(exc))
            code = ExitCode.INFRA_UNAVAILABLE
        except SutError as exc:
            self.console.print(f"[red]system under test failed to start:[/] {exc}")
            self.summary.add_event("sut_unavailable", error=str(exc))
            code = ExitCode.INFRA_UNAVAILABLE
        except (KeyboardInterrupt, RunInterrupted):
            self.console.print("[yellow]interrupted: stopping what the run started[/]")
            self.summary.add_event("interrupted")
            code = ExitCode.INCONCLUSIVE
        finally:
            self.ctx.close()
            signal.signal(signal.SIGTERM, previous)
        self.summary.finish(int(code), self._verdict_text)
        write_junit(self.run_dir / "junit.xml", self.scenario.name, self.stage_rows)
        return code

    _verdict_text = "not judged"

    def _start_infrastructure(self) -> None:
        infra = self.scenario.infra
        if infra.mode == "local":
            kafka = LocalKafka(state_dir=self.run_dir / "kafka-state")
            self.ctx.kafka = kafka
            with self.console.status(f"starting {infra.brokers} Kafka broker(s)..."):
                state = kafka.up(brokers=infra.brokers)
            self.ctx.bootstrap = state.bootstrap
            brokers = state.broker_count
        else:
            self.ctx.bootstrap = infra.bootstrap or ""
            brokers = len(self.ctx.bootstrap.split(","))
        partitions = len(self.universe.symbols)
        ensure_topics(self.ctx.bootstrap, feed_topic_specs(brokers, partitions))
        with self.console.status("starting feed_sim..."):
            self.ctx.feed = FeedSimProcess(self.scenario, self.run_dir)
            self.ctx.feed.start()
        sut = make_sut(self.scenario, self.run_dir)
        self.ctx.sut = sut
        self.ctx.collector = CollectorProcess(
            self.ctx.bootstrap, sut.topics(), sut.record_mapping()
        )
        self.ctx.collector.start()
        self.ctx.sampler = ResourceSampler(
            sut_pids=sut.pids,
            feed=self.ctx.feed.control,
            kafka_bytes=self.ctx.collector.consumed_bytes,
        )

    # -- the loop -------------------------------------------------------------------------------

    def _drive(self, plan: StagePlan) -> ExitCode:
        pending: list[object] = list(plan.start())
        while True:
            while pending:
                action = pending.pop(0)
                if isinstance(action, Finish):
                    verdict = run_verdict(plan.outcome(), len(self.scenario.stages))
                    self._verdict_text = verdict.reason
                    self.console.print(f"finished: {verdict.reason} (exit {int(verdict.code)})")
                    for event in plan.events:
                        self.summary.add_event(
                            event.kind, label=event.label, t_ns=event.t_ns, **event.detail
                        )
                    return verdict.code
                pending.extend(self._perform(plan, action))
            time.sleep(1.0)
            self._progress(plan)
            if self.started and self.ctx.sut is not None and not self.ctx.sut.alive():
                self.summary.add_event("sut_died", label=plan.label())
                self.console.print("[red]the system under test exited mid-stage[/]")
                pending.extend(plan.abort_hold("the system under test exited"))
                continue
            pending.extend(plan.tick())

    def _perform(self, plan: StagePlan, action: object) -> list[object]:
        """Carry out one plan action; returns the plan's follow-up actions."""
        feed, sut, collector = self.ctx.feed, self.ctx.sut, self.ctx.collector
        assert feed is not None and sut is not None and collector is not None
        if isinstance(action, SetSymbols):
            symbols = list(action.symbols)
            if not self.started:
                sut.start(symbols, feed.endpoints, KafkaEndpoints(self.ctx.bootstrap))
                if self.ctx.sampler is not None:
                    self.ctx.sampler.start()
                self.started = True
            else:
                sut.set_symbols(symbols)
            feed.control.set_symbols(symbols)
            if symbols:
                rate = action.rate_per_symbol_hz
                if rate is None:
                    feed.control.set_rate(
                        "tape", speed=getattr(self.scenario.feed.rate, "speed", 1.0)
                    )
                else:
                    feed.control.set_rate(
                        "fixed",
                        rate_hz=rate,
                        l2_rate_hz=self.scenario.feed.level2_rate_per_symbol_hz,
                        weights=self._weights(symbols),
                    )
                feed.control.start()
            else:
                feed.control.pause()
            self.console.print(f"{action.label}: {len(symbols)} symbols")
        elif isinstance(action, StartMeasuring):
            feed.control.stage(action.label)
            collector.stage(action.label)
            self.measuring = action.label
        elif isinstance(action, StopMeasuring):
            feed.control.stage(f"{action.label}-after")
            collector.stage(None)
            self.measuring = None
        elif isinstance(action, Evaluate):
            return self._evaluate(plan, action)
        elif isinstance(action, RunHook):
            self._run_hook(action)
        return []

    def _weights(self, symbols: list[str]) -> dict[str, float]:
        if getattr(self.scenario.feed.rate, "model", "") != "tier_weighted":
            return {}
        return {s: self.universe.by_symbol(s).weight for s in symbols}

    def _evaluate(self, plan: StagePlan, action: Evaluate) -> list[object]:
        feed, collector = self.ctx.feed, self.ctx.collector
        assert feed is not None and collector is not None
        snapshot = collector.snapshot()
        sent = feed.control.counters(action.label)
        resources = (
            self.ctx.sampler.window(sent.started_ns, sent.ended_ns or self.clock_ns())
            if self.ctx.sampler is not None
            else {}
        )
        measurement = self._measurement(action, snapshot, sent, resources)
        evaluation = evaluate(measurement, self.scenario.thresholds)
        self._record_stage(plan, action, snapshot, sent, resources, evaluation)
        return list(plan.submit(evaluation.verdict, evaluation.broken))

    def _measurement(
        self, action: Evaluate, snapshot: CollectorSnapshot, sent: Any, resources: dict[str, Any]
    ) -> StageMeasurement:
        measure = snapshot.measure
        pct = measure.percentiles()

        def lag(name: str) -> LagPercentiles | None:
            values = pct.get(name)
            return LagPercentiles.from_dict(values) if values and values["count"] else None

        loss = compare(snapshot.completeness, sent)
        duration_s = max(1e-9, ((sent.ended_ns or self.clock_ns()) - sent.started_ns) / 1e9)
        expected = action.expected_messages
        achieved_ratio = None
        if expected:
            achieved_ratio = sent.messages / expected
        late = hdr.percentiles(sent.lateness_us)
        return (
            StageMeasurement(
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
            )
            if duration_s
            else StageMeasurement(action.label, None)
        )

    def _record_stage(
        self,
        plan: StagePlan,
        action: Evaluate,
        snapshot: CollectorSnapshot,
        sent: Any,
        resources: dict[str, Any],
        evaluation: Any,
    ) -> None:
        verdicts = [dataclasses.asdict(r) for r in evaluation.results]
        symbols = len(plan.stage_symbols[action.stage_index])
        entry = stage_entry(
            action.stage_index,
            action.label,
            symbols,
            measure=snapshot.measure,
            verdict=str(evaluation.verdict),
            verdicts=verdicts,
            resources=resources,
            completeness=compare(snapshot.completeness, sent).to_json(),
            extra_histograms={"generator_lateness": sent.lateness_us},
        )
        self.summary.add_stage(entry, snapshot.measure.histograms)
        for tag_suffix, intervals in (
            ("", snapshot.intervals),
            ("-uncorrected", snapshot.intervals_uncorrected),
        ):
            by_tag: dict[str, list[tuple[int, Any]]] = {}
            for second, tag, encoded in intervals:
                by_tag.setdefault(tag + tag_suffix, []).append((second, hdr.decode(encoded)))
            for tag, rows in by_tag.items():
                append_intervals(self.run_dir / "lag.hlog", self.run_start_ns, tag, rows)
        self.stage_rows.append(
            {
                "index": action.stage_index + 1,
                "label": action.label,
                "symbols": symbols,
                "verdict": str(evaluation.verdict),
                "thresholds": verdicts,
                "duration_s": (sent.ended_ns - sent.started_ns) / 1e9 if sent.ended_ns else 0.0,
            }
        )
        write_junit(self.run_dir / "junit.xml", self.scenario.name, self.stage_rows)
        colour = {Verdict.PASS: "green", Verdict.FAIL: "red"}.get(evaluation.verdict, "yellow")
        self.console.print(
            f"{action.label} ({symbols} symbols): "
            f"[{colour}]{evaluation.verdict}[/] {evaluation.summary}"
        )

    def _run_hook(self, action: RunHook) -> None:
        command = action.command.format(**action.values)
        self.console.print(f"rollback hook: {command}")
        proc = subprocess.run(
            shlex.split(command),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=paths.repo_root(),
        )
        self.summary.add_event(
            "hook_ran",
            command=command,
            exit_code=proc.returncode,
            output=(proc.stdout + proc.stderr)[-2000:],
        )

    def _progress(self, plan: StagePlan) -> None:
        status = plan.status()
        live = self.ctx.collector.live_p99_us() if self.ctx.collector else None
        p99 = f"{live / 1000:.1f} ms" if live is not None else "-"
        self.console.print(
            f"[dim]{status.label} {status.phase} {status.symbol_count} symbols, "
            f"{status.time_left_s:.0f} s left, live P99 {p99}[/]",
            highlight=False,
        )
