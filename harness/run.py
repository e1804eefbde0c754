"""Composition root of `harness run SCENARIO`: infrastructure, feed_sim, SUT, collector,
sampler and the stage plan, wired together; results written as the run goes.

The loop ticks the plan about once a second and performs its actions: `SetSymbols` goes to the
SUT (live reload or restart, per adapter) and to feed_sim (active symbols and rate);
`StartMeasuring` opens a stage label in feed_sim's counters and the collector's histograms;
`Evaluate` snapshots both, builds the stage measurement, judges it against the thresholds and
submits the verdict; `RunHook` runs the rollback hook; `Finish` ends the run. Every stage is
written to summary.json, the .hlog and junit.xml as soon as it is judged, so an interrupted
run keeps what it measured. Whatever the runner started is stopped in `finally`.

Around it: `run_context` (what was started, stopped in reverse), `run_topics` (the SUT's
topics and where its lag ends), `run_sinks` (Redis and the ClickHouse writer),
`datacheck.feed.check_run_feed` (the feed's legitimacy), `hold_judgement` (measurement,
evidence), `stage_results` (writing a judged hold), `live_status` (progress line, live.json),
`rollback_hook`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from harness import testbed
from harness.collector.client import CollectorError, collector_cost
from harness.collector.launch import start_collector
from harness.collector.loss import compare, in_flight_window_s
from harness.collector.replies import CollectorCounters
from harness.datacheck.feed import FeedRefused, check_run_feed
from harness.defaults import COMPOSE_KAFKA_PORTS
from harness.diagnosis import diagnose
from harness.exit_codes import ExitCode
from harness.feed_process import FeedSimProcess
from harness.hold_judgement import hold_evidence, stage_measurement, storage_figures, sut_exited
from harness.infra.errors import InfraError
from harness.infra.kafka_clients import client_logs_to
from harness.infra.kafka_local import LocalKafka
from harness.infra.ports import LOOPBACK
from harness.infra.topics import (
    wait_until_producible,
)
from harness.live_status import LiveStatus
from harness.plan import (
    Evaluate,
    Finish,
    RunHook,
    SetSymbols,
    StagePlan,
    StartMeasuring,
    StopMeasuring,
)
from harness.processes import start_process
from harness.results.report import write_report
from harness.results.summary import (
    RESOURCES_JSONL,
    SummaryWriter,
    run_metadata,
)
from harness.rollback_hook import run_rollback_hook
from harness.run_context import RunContext
from harness.run_sinks import RunSinks
from harness.run_topics import provision_topics
from harness.sampler import ResourceSampler
from harness.scenario import Scenario
from harness.stage_results import JudgedHold, StageResults
from harness.storage_writer import storage_json
from harness.sut.base import KafkaEndpoints, SutError
from harness.sut.command import command_values, expand_text
from harness.sut.factory import make_sut
from harness.sut_metrics import (
    MetricsScraper,
    dropping_counters,
    gauge_max,
    producer_figures,
)
from harness.symbols import load_universe
from harness.testbed import HostLoad, Part, PartsCpu, TestBedLoad
from harness.thresholds import (
    early_abort_reason,
    evaluate,
)
from harness.verdict import run_verdict

log = logging.getLogger(__name__)


DRAIN_MARGIN_NS = 100_000_000
"""At the end of a hold, the collector's stage stays open until it has read every record
appended up to this long after the hold ended (what the SUT had in hand then is in the stage):
the end offsets of its partitions at that moment."""
DRAIN_MAX_S = 5.0
"""...but no longer than this (a SUT that produces nothing more): then the event
`collector_not_drained` is recorded and the loss tolerance covers what is still in flight."""


class RunInterrupted(Exception):
    """Ctrl-C: stop cleanly and keep the results written so far."""


class HarnessRun:
    """One run of a scenario; `execute()` returns the exit code (contract 7)."""

    def __init__(
        self,
        scenario: Scenario,
        scenario_path: Path,
        console: Console,
        results_root: Path | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        ui_port: int | None = None,
        require_real_data: bool = False,
    ) -> None:
        self.scenario = scenario
        self.ui_port = ui_port
        self.require_real_data = require_real_data
        self.scenario_path = scenario_path
        self.console = console
        self.clock_ns = clock_ns
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        root = results_root or scenario.resolve(scenario.outputs.dir)
        self.run_dir = root / f"{stamp}-{scenario.name}"
        self.universe = load_universe(scenario.resolve(scenario.symbols_file))
        self.ctx = RunContext()
        self.live = LiveStatus(self.run_dir / "live.json", console)
        self.measuring: str | None = None
        self.started = False
        self.sut_dead = False
        """The SUT exited after it started: it is not restarted (a crash is a failure that a
        rollback cannot undo), so the verify hold fails and the run ends with exit 2."""
        self._last_abort_check = 0.0
        self._collector_at_start: dict[str, CollectorCounters] = {}
        self.collector_costs: dict[str, dict[str, Any]] = {}
        """label -> the collector's CPU over that hold (`collector_cost`), between counter
        reads right after the stage commands (so within a poll batch of the hold's edges)."""
        self.parts: PartsCpu | None = None
        """The test bed's parts the sampler reads (harness.testbed)."""
        self.lag_basis: dict[str, Any] = {}
        """Where the SUT's lag ends (harness.infra.topics.lag_basis), once topics are known."""

    # -- lifecycle ------------------------------------------------------------------------------

    def execute(self) -> ExitCode:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.summary = SummaryWriter(
            self.run_dir,
            run_metadata(
                self.scenario.name,
                self.scenario_path.read_text(),
                started_ns=self.clock_ns(),
                scenario_path=str(self.scenario_path),
                command=shlex.join(sys.argv),
            ),
        )
        self.run_start_ns = self.clock_ns()
        self.sinks = RunSinks(self.scenario, self.ctx, self.summary, self.console)
        self.results = StageResults(
            self.scenario,
            self.run_dir,
            self.summary,
            self.console,
            run_start_ns=self.run_start_ns,
            clock_ns=self.clock_ns,
            lag_note=lambda: self.lag_basis.get("note"),
            storage_enabled=self.scenario.storage.enabled,
        )
        self.console.print(f"results: {self.run_dir}")
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            with client_logs_to(self.run_dir / "logs" / "kafka-clients.log"):
                self._start_infrastructure()
                plan = StagePlan(self.scenario, self.universe)
                code = self._drive(plan)
        except InfraError as exc:
            self.console.print(f"[red]infrastructure unavailable:[/] {exc}")
            self.summary.add_event("infrastructure_unavailable", error=str(exc))
            code = ExitCode.INFRA_UNAVAILABLE
        except FeedRefused as exc:
            self.console.print(f"[red]refused:[/] {exc}")
            self.summary.add_event("feed_refused", reason=str(exc))
            code = ExitCode.INVALID_INPUT
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
        self.live.write(label="done", phase="done", symbols=0, done=True, exit_code=int(code))
        self.results.write_junit()
        self._keep_resource_samples()
        self._write_report()
        return code

    def _write_report(self) -> None:
        """report.md and report.html from what the run wrote; a failure is an event, never
        the run's exit code (the results themselves are already on disk)."""
        try:
            markdown, html = write_report(self.run_dir, plots=self.scenario.outputs.plots)
        except Exception as exc:  # the report must not cost the run its results
            log.warning("report not written: %r", exc)
            self.summary.add_event("report_failed", error=repr(exc))
            return
        self.console.print(f"report: {html} ({markdown.name} beside it)")

    def _keep_resource_samples(self) -> None:
        """Every sampler row of the run, one JSON line each, in resources.jsonl (the SUT's
        metrics scrapes are in sut-metrics.jsonl); the report's resource plots read it."""
        sampler = self.ctx.sampler
        if sampler is None or not sampler.samples:
            return
        keep = [
            {k: v for k, v in dataclasses.asdict(sample).items() if k != "sut_metrics"}
            for sample in sampler.samples
        ]
        text = "".join(json.dumps(row) + "\n" for row in keep)
        (self.run_dir / RESOURCES_JSONL).write_text(text, encoding="utf-8")

    _verdict_text = "not judged"

    def _start_infrastructure(self) -> None:
        infra = self.scenario.infra
        if infra.mode == "local":
            kafka = LocalKafka(state_dir=self.run_dir / "kafka-state", profile=infra.broker_profile)
            self.ctx.kafka = kafka
            with self.console.status(f"starting {infra.brokers} Kafka broker(s)..."):
                state = kafka.up(brokers=infra.brokers)
            self.summary.set_run_field("broker_profile", kafka.profile.name)
            self.ctx.bootstrap = state.bootstrap
            brokers = state.broker_count
        elif infra.mode == "compose":  # the stack of compose/ (its advertised listeners)
            self.ctx.bootstrap = ",".join(f"localhost:{port}" for port in COMPOSE_KAFKA_PORTS)
            brokers = len(COMPOSE_KAFKA_PORTS)
        else:
            self.ctx.bootstrap = infra.bootstrap or ""
            brokers = len(self.ctx.bootstrap.split(","))
        self.lag_basis = provision_topics(
            self.scenario,
            len(self.universe.symbols),
            self.ctx.bootstrap,
            brokers,
            self.summary,
            self.console,
        )
        with self.console.status("waiting until Kafka accepts idempotent producers..."):
            waited = wait_until_producible(self.ctx.bootstrap, brokers)
        self.summary.add_event("kafka_ready", bootstrap=self.ctx.bootstrap, waited_s=waited)
        with self.console.status("starting feed_sim...") as spinner:
            self.ctx.feed = FeedSimProcess(self.scenario, self.run_dir)
            self.ctx.feed.start(
                on_progress=lambda line: spinner.update(f"starting feed_sim: {escape(line)}")
            )
        status = self.ctx.feed.control.status()
        self.summary.add_event(
            "feed_sim_started",
            **self.ctx.feed.describe(),
            amplified=status.get("amplified"),
            symbols_loaded=status.get("symbols_loaded"),
        )
        check_run_feed(
            self.scenario,
            self.universe.tickers(),
            self.summary,
            self.console,
            require_real_data=self.require_real_data,
        )
        sut = make_sut(self.scenario, self.run_dir)
        self.ctx.sut = sut
        if infra.redis:
            sut.redis_url = self.sinks.start_redis(self.run_dir / "redis-state")
        if self.scenario.storage.enabled:
            self.sinks.start_storage(self.run_dir, sut.topics())
        workers = self.scenario.collector.workers
        what = f"the distributed collector ({workers} Locust workers)" if workers else "collector"
        with self.console.status(f"starting {what}..."):
            try:
                deployment = start_collector(
                    self.scenario.collector,
                    self.ctx.bootstrap,
                    sut.topics(),
                    sut.record_mapping(),
                    all_partitions=sut.partitions_for([]) is None,
                    logs_dir=self.run_dir / "logs",
                )
            except CollectorError as exc:
                raise InfraError(f"the collector did not start: {exc}") from exc
        self.ctx.collector_deployment = deployment
        self.ctx.collector = deployment.collector
        self.summary.add_event("collector_started", **deployment.describe())
        if self.ui_port is not None or self.scenario.outputs.locust:
            self._start_locust(self.ui_port)
        self.parts = PartsCpu(self._test_bed_parts(), self.clock_ns)
        self.ctx.sampler = ResourceSampler(
            sut_pids=sut.pids,
            usage=sut.usage_source(),
            feed=self.ctx.feed.control,
            kafka_bytes=self.ctx.collector.consumed_bytes,
            parts=self.parts,
            host=HostLoad(),
            sut_metrics=MetricsScraper(sut.metrics_url),
        )

    def _test_bed_parts(self) -> dict[str, Part]:
        """Every part of the test bed the harness knows by PID (harness.testbed)."""
        feed, sut, deployment = self.ctx.feed, self.ctx.sut, self.ctx.collector_deployment
        parts: dict[str, Part] = {}
        if feed is not None and feed.pid is not None:
            parts["feed_sim"] = Part([feed.pid])
        if sut is not None:
            parts["sut"] = Part(sut.pids, harness=False)
        storage = self.ctx.storage
        if storage is not None and storage.pid is not None:  # the sink is in the pipeline
            parts["clickhouse_writer"] = Part([storage.pid], harness=False)
        if self.ctx.kafka is not None:
            state = self.ctx.kafka.load_state()
            for node in state.nodes if state is not None else []:
                parts[f"broker-{node.node_id}"] = Part([node.pid])
        if deployment is not None:
            parts["collector"] = Part(deployment.pids())
        if self.ctx.locust is not None:
            parts["locust"] = Part([self.ctx.locust.pid])
        parts["runner"] = Part([os.getpid()], tree=False)
        return parts | testbed.declared_parts(self.scenario.test_bed)

    def _start_locust(self, web_port: int | None) -> None:
        """Locust in its own process (harness.locust_process) following live.json: headless
        with CSV stats in locust/, plus the web UI when `web_port` is given."""
        argv = [sys.executable, "-m", "harness.locust_process", "--status", str(self.live.path)]
        if self.scenario.outputs.locust:
            argv += ["--csv", str(self.run_dir / "locust" / "locust")]
        if web_port is not None:
            argv += ["--host", LOOPBACK, "--web-port", str(web_port)]
        self.ctx.locust = start_process(argv, self.run_dir / "logs" / "locust.log")
        if web_port is not None:
            self.console.print(f"Locust web UI: http://{LOOPBACK}:{web_port}")

    # -- the loop -------------------------------------------------------------------------------

    def _drive(self, plan: StagePlan) -> ExitCode:
        plan_epoch_ns = self.clock_ns()  # the plan counts its events' t_ns from its start
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
                            event.kind,
                            at_ns=plan_epoch_ns + event.t_ns,
                            label=event.label,
                            t_ns=event.t_ns,
                            **event.detail,
                        )
                    return verdict.code
                pending.extend(self._perform(plan, action))
            time.sleep(1.0)
            counters = self.ctx.collector.counters() if self.ctx.collector else None
            self.live.progress(plan.status(), counters, self.clock_ns())
            if self.started and self.ctx.sut is not None and not self.ctx.sut.alive():
                if not self.sut_dead:
                    self.sut_dead = True
                    self.summary.add_event("sut_died", label=plan.label())
                    self.console.print("[red]the system under test exited mid-stage[/]")
                # Ends a running hold; outside one (settling after a rollback) a no-op, and
                # the plan goes on to the verify hold, which then ends the same way.
                pending.extend(plan.abort_hold("the system under test exited"))
            else:
                pending.extend(self._early_abort(plan))
            if not pending:
                pending.extend(plan.tick())

    def _early_abort(self, plan: StagePlan) -> list[object]:
        """Every `early_abort.check_every_s` of a measured hold: end it when harness.thresholds says
        its P95/P99 is lost beyond doubt (more samples over the limit than the whole hold may
        have), so a broken stage does not run its full length."""
        status = plan.status()
        rule = self.scenario.early_abort
        now = time.monotonic()
        if not (rule.enabled and status.measuring and self.ctx.collector is not None):
            return []
        if now - self._last_abort_check < rule.check_every_s or status.stage_index is None:
            return []
        self._last_abort_check = now
        verify = status.label.startswith("verify")
        hold_s = self.scenario.rollback.verify_s if verify else None
        t = self.scenario.thresholds
        limits_ms = {"p95": t.total_lag_p95_ms, "p99": t.total_lag_p99_ms}
        wanted = {name: int(ms * 1000) for name, ms in limits_ms.items() if ms is not None}
        _stage, counts = self.ctx.collector.above(list(wanted.values()))
        over = dict(zip(wanted, counts, strict=True))
        reason = early_abort_reason(
            t,
            rule,
            expected_total=plan.expected_messages(status.stage_index, hold_s),
            over_p95_limit=over.get("p95", 0),
            over_p99_limit=over.get("p99", 0),
        )
        if reason is None:
            return []
        self.console.print(f"[red]{status.label}: lost beyond doubt, ending the hold:[/] {reason}")
        return list(plan.abort_hold(reason))

    def _perform(self, plan: StagePlan, action: object) -> list[object]:
        """Carry out one plan action; returns the plan's follow-up actions."""
        feed, sut, collector = self.ctx.feed, self.ctx.sut, self.ctx.collector
        assert feed is not None and sut is not None and collector is not None
        if isinstance(action, SetSymbols):
            symbols = list(action.symbols)
            partitions = sut.partitions_for(symbols)
            if partitions:  # before the SUT subscribes: none of their records is missed
                collector.assign(partitions)
            if not self.started:
                what = f"starting the system under test ({sut.kind}, {len(symbols)} symbols)..."
                with self.console.status(what):
                    sut.start(symbols, feed.endpoints, KafkaEndpoints(self.ctx.bootstrap))
                if self.ctx.sampler is not None:
                    self.ctx.sampler.start()
                self.started = True
            elif sut.alive():
                sut.set_symbols(symbols)
            else:
                self.summary.add_event("sut_not_reloaded", label=action.label, reason="SUT dead")
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
                        l2_weights=self._l2_weights(symbols),
                        render=getattr(self.scenario.feed.rate, "render", "live"),
                    )
                feed.control.start()
            else:
                feed.control.pause()
            self.console.print(f"{action.label}: {len(symbols)} symbols")
        elif isinstance(action, StartMeasuring):
            feed.control.stage(action.label)
            collector.stage(action.label)
            self.sinks.storage_window(action.label, self.clock_ns(), start=True)
            self._collector_at_start[action.label] = collector.counters()
            self.measuring = action.label
            since = (self.clock_ns() - self.run_start_ns) / 1e9
            self.console.print(f"{action.label}: measuring, {since:.0f} s after the run started")
        elif isinstance(action, StopMeasuring):
            feed.control.stage(f"{action.label}-after")
            self.sinks.storage_window(action.label, self.clock_ns(), start=False)
            # The collector reads with throughput settings: records appended before now reach
            # it up to its delivery hop later. Close its stage once it has read every record
            # appended up to DRAIN_MARGIN_NS after now (what the SUT had in hand, appended).
            drained = collector.drain(self.clock_ns() + DRAIN_MARGIN_NS, DRAIN_MAX_S)
            if not drained.drained:
                self.summary.add_event(
                    "collector_not_drained", label=action.label, **drained.to_json()
                )
            collector.stage(None)
            started = self._collector_at_start.pop(action.label, None)
            if started is not None:
                self.collector_costs[action.label] = collector_cost(started, collector.counters())
            self.measuring = None
        elif isinstance(action, Evaluate):
            return self._evaluate(plan, action)
        elif isinstance(action, RunHook):
            self._run_hook(action)
        return []

    def _l2_weights(self, symbols: list[str]) -> dict[str, float]:
        tiers = self.scenario.feed.level2_tier_weights
        if not tiers:
            return {}
        return {s: tiers.get(self.universe.by_symbol(s).tier, 1.0) for s in symbols}

    def _weights(self, symbols: list[str]) -> dict[str, float]:
        if getattr(self.scenario.feed.rate, "model", "") != "tier_weighted":
            return {}
        return {s: self.universe.by_symbol(s).weight for s in symbols}

    def _evaluate(self, plan: StagePlan, action: Evaluate) -> list[object]:
        feed, collector = self.ctx.feed, self.ctx.collector
        assert feed is not None and collector is not None
        snapshot = collector.snapshot()
        sent = feed.control.counters(action.label)
        ended_ns = sent.ended_ns or self.clock_ns()
        sampler = self.ctx.sampler
        resources = sampler.window(sent.started_ns, ended_ns) if sampler is not None else {}
        resources |= self.collector_costs.get(action.label, {})
        samples = sampler.samples_since(sent.started_ns, ended_ns) if sampler is not None else []
        test_bed = TestBedLoad.from_samples(
            samples, os.cpu_count() or 1, self.parts.harness_parts if self.parts else ()
        )
        judgement = testbed.judge(test_bed, self.scenario.test_bed)
        scrapes = [(r.t_ns, r.sut_metrics) for r in samples if r.sut_metrics]
        resources["test_bed"] = {**test_bed.to_json(), "judgement": judgement.message}
        resources["producer"] = producer_figures(scrapes)
        resources["book_memory_bytes_max"] = gauge_max(scrapes, "ingest_book_memory_bytes")
        resources["redis"] = self.sinks.redis_figures(action.label, scrapes)
        histograms = snapshot.measure.histograms
        # A record of the hold may still be on its way when the hold is judged: the SUT's lag
        # plus the harness consumer's (delivery) bounds how long.
        in_flight_s = in_flight_window_s(
            sum(int(histograms[m].get_max_value()) for m in ("total", "delivery"))
            if histograms["total"].get_total_count()
            else None
        )
        loss = compare(snapshot.completeness, sent, in_flight_s=in_flight_s)
        storage = self.sinks.storage_hold(action.label)
        measurement = stage_measurement(
            self.scenario, action, snapshot, sent, resources, loss,
            storage_figures(self.ctx.storage is not None, storage), self.clock_ns(),
        )  # fmt: skip
        evaluation = evaluate(measurement, self.scenario.thresholds)
        evaluation = testbed.apply(evaluation, judgement, self.scenario.test_bed)
        if self.sut_dead:
            evaluation = sut_exited(evaluation)
        storage_block = (
            None if storage is None else storage_json(storage, self.scenario.storage.batch_ms)
        )
        diagnosis = diagnose(
            hold_evidence(
                measurement, snapshot, resources,
                test_bed=test_bed, judgement=judgement, loss=loss,
                sut_dropping=dropping_counters(scrapes), storage=storage_block,
                broken=evaluation.broken,
            )
        )  # fmt: skip
        self.results.record(
            JudgedHold(
                stage_index=action.stage_index,
                label=action.label,
                symbols=len(plan.stage_symbols[action.stage_index]),
                snapshot=snapshot,
                sent=sent,
                resources=resources,
                evaluation=evaluation,
                loss=loss,
                diagnosis=diagnosis,
                test_bed=test_bed,
                expected_messages=measurement.expected_messages,
                storage=storage,
                collector_cost=self.collector_costs.get(action.label, {}),
            )
        )
        self.results.keep_sut_metrics(action.label, samples)
        return list(plan.submit(evaluation.verdict, evaluation.broken, evaluation.inconclusive))

    def _hook_values(self, plan_values: dict[str, str]) -> dict[str, str]:
        """Every placeholder of HOOK_PLACEHOLDERS: the run's endpoints and files, the plan's
        stage labels and outcome."""
        feed, sut = self.ctx.feed, self.ctx.sut
        assert feed is not None and sut is not None
        symbols_file = getattr(sut, "symbols_file", self.run_dir / "sut" / "symbols.json")
        values = command_values(
            feed=feed.endpoints,
            kafka=KafkaEndpoints(self.ctx.bootstrap),
            symbols_file=symbols_file,
            universe_file=self.scenario.resolve(self.scenario.symbols_file),
            symbol_count=len(sut.symbols),
            admin_url=getattr(self.scenario.sut, "admin_url", None),
            topics=sut.topics(),
            run_dir=self.run_dir,
            redis_url=sut.redis_url,
        )
        return {**values, **plan_values}

    def _run_hook(self, action: RunHook) -> None:
        command = expand_text(action.command, self._hook_values(action.values), "rollback.hook")
        run_rollback_hook(
            command, self.scenario.rollback.hook_timeout_s, self.summary, self.console
        )
