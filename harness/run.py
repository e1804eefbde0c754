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
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from contracts import hdr
from harness import paths, testbed
from harness.collector.client import (
    CollectorCounters,
    CollectorError,
    CollectorProcess,
    CollectorSnapshot,
    collector_cost,
    describe_cost,
)
from harness.collector.completeness import LossReport, compare, in_flight_window_s
from harness.collector.launch import CollectorDeployment, start_collector
from harness.defaults import COMPOSE_KAFKA_PORTS
from harness.diagnosis import Diagnosis, HoldEvidence, diagnose
from harness.exit_codes import ExitCode
from harness.feed_process import FeedSimProcess
from harness.infra.errors import InfraError
from harness.infra.kafka_clients import client_logs_to
from harness.infra.kafka_local import LocalKafka
from harness.infra.ports import LOOPBACK
from harness.infra.redis_local import LocalRedis
from harness.infra.topics import (
    LOG_APPEND_TIME,
    ensure_topics,
    feed_topic_specs,
    lag_basis,
    set_log_append_time,
    timestamp_types,
    topic_partition_counts,
    wait_until_producible,
)
from harness.plan import (
    Evaluate,
    Finish,
    Phase,
    RunHook,
    SetSymbols,
    StagePlan,
    StartMeasuring,
    StopMeasuring,
)
from harness.processes import ProcessError, start_process, stop_process
from harness.results.hlog import append_intervals
from harness.results.junit import write_junit
from harness.results.report import write_report
from harness.results.summary import (
    RESOURCES_JSONL,
    SummaryWriter,
    histogram_figures,
    run_metadata,
    stage_entry,
    write_atomic,
)
from harness.sampler import ResourceSample, ResourceSampler
from harness.scenario import ReferenceSut, Scenario
from harness.storage_writer import StorageHold, StorageWriter, storage_json
from harness.sut.base import KafkaEndpoints, SutError
from harness.sut.command import command_values, expand_text
from harness.sut.factory import make_sut
from harness.sut_metrics import (
    MetricsScraper,
    Scrape,
    dropping_counters,
    gauge_max,
    producer_figures,
    snapshot_figures,
)
from harness.symbols import load_universe
from harness.testbed import HostLoad, Part, PartsCpu, TestBedLoad
from harness.thresholds import (
    LagPercentiles,
    StageEvaluation,
    StageMeasurement,
    StorageFigures,
    ThresholdResult,
    Verdict,
    early_abort_reason,
    evaluate,
)
from harness.verdict import run_verdict

log = logging.getLogger(__name__)


def _lag(
    measure: Any, name: str, pct: dict[str, dict[str, int]] | None = None
) -> LagPercentiles | None:
    """One measure's percentiles, None when it has no samples."""
    values = (pct if pct is not None else measure.percentiles()).get(name)
    return LagPercentiles.from_dict(values) if values and values["count"] else None


def _cores(percent: float | None) -> float | None:
    """CPU percent (100 = one core) as cores."""
    return None if percent is None else percent / 100


DRAIN_MARGIN_NS = 100_000_000
"""At the end of a hold, the collector's stage stays open until it has read every record
appended up to this long after the hold ended (what the SUT had in hand then is in the stage):
the end offsets of its partitions at that moment."""
DRAIN_MAX_S = 5.0
"""...but no longer than this (a SUT that produces nothing more): then the event
`collector_not_drained` is recorded and the loss tolerance covers what is still in flight."""


class RunInterrupted(Exception):
    """Ctrl-C: stop cleanly and keep the results written so far."""


class FeedRefused(Exception):
    """--require-real-data and the feed is not real market data (exit 3)."""


@dataclasses.dataclass
class RunContext:
    """What the run started; `close()` stops it all, in reverse order."""

    kafka: LocalKafka | None = None
    bootstrap: str = ""
    redis: LocalRedis | None = None
    storage: StorageWriter | None = None
    feed: FeedSimProcess | None = None
    sut: Any = None
    collector: CollectorProcess | None = None
    collector_deployment: CollectorDeployment | None = None
    sampler: ResourceSampler | None = None
    locust: subprocess.Popen[bytes] | None = None

    def close(self) -> None:
        steps: list[Callable[[], object]] = []
        if self.locust is not None:
            locust = self.locust
            steps.append(lambda: stop_process(locust, timeout_s=10))
        if self.sampler is not None:
            steps.append(self.sampler.stop)
        if self.collector_deployment is not None:
            steps.append(
                lambda: (
                    self.collector_deployment.stop(timeout_s=30)
                    if self.collector_deployment
                    else None
                )
            )
        elif self.collector is not None:
            steps.append(lambda: self.collector.stop(timeout_s=30) if self.collector else None)
        if self.sut is not None:
            steps.append(lambda: self.sut.stop(timeout_s=60))
        if self.storage is not None:  # after the SUT: it writes what the SUT sent last
            steps.append(self.storage.stop)
        if self.feed is not None:
            steps.append(self.feed.stop)
        if self.redis is not None:
            steps.append(self.redis.down)
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
        self.stage_rows: list[dict[str, Any]] = []
        self.measuring: str | None = None
        self.started = False
        self.sut_dead = False
        self.redis_dead = False
        """The SUT exited after it started: it is not restarted (a crash is a failure that a
        rollback cannot undo), so the verify hold fails and the run ends with exit 2."""
        self._last_abort_check = 0.0
        self._collector_at_start: dict[str, CollectorCounters] = {}
        self.collector_costs: dict[str, dict[str, Any]] = {}
        """label -> the collector's CPU over that hold (`collector_cost`), between counter
        reads right after the stage commands (so within a poll batch of the hold's edges)."""
        self._last_consumed: tuple[int, int] | None = None
        """(t_ns, consumed messages) of the previous progress line: the received rate."""
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
        self._write_live(label="done", phase="done", symbols=0, done=True, exit_code=int(code))
        if self.scenario.outputs.junit:
            write_junit(self.run_dir / "junit.xml", self.scenario.name, self.stage_rows)
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

    def _start_redis(self) -> str:
        """The run's redis-server (loopback, AOF everysec), stopped with the rest; its URL."""
        redis = LocalRedis(state_dir=self.run_dir / "redis-state")
        self.ctx.redis = redis
        with self.console.status("starting redis-server..."):
            state = redis.up()
        self.summary.add_event("redis_ready", url=state.url, pid=state.pid)
        self.summary.set_run_field(
            "redis", {"url": state.url, "appendonly": "yes", "appendfsync": "everysec"}
        )
        return state.url

    def _start_storage(self, topics: list[str]) -> None:
        """`ingest clickhouse-writer` on the SUT's topics (scenario `storage`), before the SUT
        starts, so the storage hop covers every record."""
        storage = StorageWriter(self.scenario.storage, self.run_dir)
        self.ctx.storage = storage
        with self.console.status(f"starting the ClickHouse writer ({storage.target})..."):
            storage.start(self.ctx.bootstrap, topics)
        self.summary.add_event("storage_ready", pid=storage.pid, clickhouse=storage.target)
        config = self.scenario.storage
        self.summary.set_run_field(
            "storage",
            {
                "clickhouse": storage.target,
                "database": config.database,
                "batch_size": config.batch_size,
                "batch_ms": config.batch_ms,
                "topics": topics,
            },
        )

    def _storage_hold(self, label: str) -> StorageHold | None:
        """The writer's figures of the hold after its reconcile (None without `storage`, or
        when the writer failed: said once as event `storage_failed`)."""
        storage = self.ctx.storage
        if storage is None:
            return None
        try:
            with self.console.status(f"{label}: reconciling ClickHouse with Kafka..."):
                return storage.reconcile(label)
        except InfraError as exc:  # ProcessError: the writer did not answer
            alive = storage.alive()
            self.summary.add_event("storage_failed", label=label, error=str(exc), alive=alive)
            self.console.print(f"[red]{label}: the ClickHouse writer failed:[/] {exc}")
            return None

    def _redis_figures(self, label: str, scrapes: list[Scrape]) -> dict[str, Any] | None:
        """The hold's Redis figures: used memory now, the core's snapshot figures over the
        hold; a redis-server that died is said once (event `redis_died`)."""
        if self.ctx.redis is None:
            return None
        used = self.ctx.redis.used_memory()
        if used is None and not self.redis_dead:
            self.redis_dead = True
            self.summary.add_event("redis_died", label=label)
            self.console.print(f"[red]{label}: redis-server does not answer[/]")
        return {"used_memory_bytes": used, "alive": used is not None, **snapshot_figures(scrapes)}

    def _validate_feed(self) -> None:
        """Check the data feed_sim replays before stage 1 (harness.datacheck): the result goes
        into summary.json (`run.feed_data`) and the report; anything above info is a warning,
        or, with --require-real-data, a refusal (as is a generated feed)."""
        from harness.datacheck.dataset import DataSourceError
        from harness.datacheck.feed import feed_market_data
        from harness.datacheck.validate import default_context, validate

        with self.console.status("checking the feed data (harness validate-data)..."):
            try:
                data = feed_market_data(self.scenario)
            except DataSourceError as exc:
                self.summary.set_run_field("feed_data", {"verdict": "unchecked", "error": str(exc)})
                if self.require_real_data:
                    raise FeedRefused(f"the feed data cannot be checked: {exc}") from exc
                self.console.print(f"[yellow]feed data not checked:[/] {exc}")
                return
            result = validate(data, default_context(self.universe.tickers()))
        self.summary.set_run_field("feed_data", result.to_json())
        raised = [f for f in result.findings if f.severity]
        line = f"feed data: {result.verdict.upper()} ({data.source})"
        self.console.print(line if not raised else f"[yellow]{line}[/]")
        for finding in raised:
            self.console.print(f"  {finding.severity}: {finding.check}: {finding.summary}")
        if not self.require_real_data:
            return
        if raised:
            raise FeedRefused(f"--require-real-data: the feed data is {result.verdict}")
        if self.scenario.feed.source == "generated":
            raise FeedRefused(
                "--require-real-data: the feed is generated by feed_sim (plausible, but not "
                "real); replay a recorded or converted tape (feed.source: tape)"
            )

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
        self._provision_topics(brokers)
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
        self._validate_feed()
        sut = make_sut(self.scenario, self.run_dir)
        self.ctx.sut = sut
        if infra.redis:
            sut.redis_url = self._start_redis()
        if self.scenario.storage.enabled:
            self._start_storage(sut.topics())
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
            feed=self.ctx.feed.control,
            kafka_bytes=self.ctx.collector.consumed_bytes,
            parts=self.parts,
            host=HostLoad(),
            sut_metrics=MetricsScraper(sut.metrics_url),
        )

    def _provision_topics(self, brokers: int) -> None:
        """The SUT's topics: created where the harness may (local and compose modes, or
        `infra.create_topics`) with LogAppendTime, so its lag ends at the broker's append
        (contract 3); then what each topic stamps is read and the run says where lag ends."""
        infra, mapping = self.scenario.infra, self.scenario.sut.record_mapping
        topics = list(mapping.topics)
        managed = infra.mode != "external"
        if managed or infra.create_topics:
            partitions = mapping.topic_partitions or len(self.universe.symbols)
            exact = isinstance(self.scenario.sut, ReferenceSut) or mapping.partitions == "universe"
            with self.console.status(f"creating topics {', '.join(topics)}..."):
                ensure_topics(
                    self.ctx.bootstrap,
                    feed_topic_specs(brokers, partitions, names=tuple(topics)),
                    exact_partitions=exact,
                )
        else:
            self._require_topics(topics)
        types = timestamp_types(self.ctx.bootstrap, topics)
        stale = [t for t, kind in types.items() if kind != LOG_APPEND_TIME]
        if managed and stale:  # the harness's own topics, made before this contract
            set_log_append_time(self.ctx.bootstrap, stale)
            self.summary.add_event("topics_set_to_log_append_time", topics=stale)
            types = timestamp_types(self.ctx.bootstrap, topics)
        self.lag_basis = lag_basis(types)
        self.summary.set_run_field("lag_basis", self.lag_basis)
        self.summary.set_run_field(
            "topic_partitions", topic_partition_counts(self.ctx.bootstrap, topics)
        )
        self.console.print(self.lag_basis["note"])

    def _require_topics(self, topics: list[str]) -> None:
        """InfraError naming the SUT's topics that do not exist (infra.create_topics false)."""
        from harness.infra.kafka_clients import admin_client

        try:
            existing = admin_client(self.ctx.bootstrap).list_topics(timeout=30).topics
        except Exception as exc:  # KafkaException: the cluster did not answer
            raise InfraError(f"cannot reach Kafka at {self.ctx.bootstrap}: {exc}") from exc
        missing = [t for t in topics if t not in existing]
        if missing:
            raise InfraError(
                f"topics not found on {self.ctx.bootstrap}: {', '.join(missing)} (the SUT's "
                "record_mapping.topics); create them, or set infra.create_topics: true"
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
        argv = [sys.executable, "-m", "harness.locust_process", "--status", str(self.live_path)]
        if self.scenario.outputs.locust:
            argv += ["--csv", str(self.run_dir / "locust" / "locust")]
        if web_port is not None:
            argv += ["--host", LOOPBACK, "--web-port", str(web_port)]
        self.ctx.locust = start_process(argv, self.run_dir / "logs" / "locust.log")
        if web_port is not None:
            self.console.print(f"Locust web UI: http://{LOOPBACK}:{web_port}")

    @property
    def live_path(self) -> Path:
        return self.run_dir / "live.json"

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
            self._progress(plan)
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
            self._storage_window(action.label, start=True)
            self._collector_at_start[action.label] = collector.counters()
            self.measuring = action.label
            since = (self.clock_ns() - self.run_start_ns) / 1e9
            self.console.print(f"{action.label}: measuring, {since:.0f} s after the run started")
        elif isinstance(action, StopMeasuring):
            feed.control.stage(f"{action.label}-after")
            self._storage_window(action.label, start=False)
            # The collector reads with throughput settings: records appended before now reach
            # it up to its delivery hop later. Close its stage once it has read every record
            # appended up to DRAIN_MARGIN_NS after now (what the SUT had in hand, appended).
            drained = collector.drain(self.clock_ns() + DRAIN_MARGIN_NS, DRAIN_MAX_S)
            if not drained.get("drained"):
                self.summary.add_event("collector_not_drained", label=action.label, **drained)
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

    def _storage_window(self, label: str, *, start: bool) -> None:
        """Open (close) the writer's window of records appended during the hold."""
        storage = self.ctx.storage
        if storage is None or not storage.alive():
            return
        try:
            if start:
                storage.open_window(label, self.clock_ns())
            else:
                storage.close_window(label, self.clock_ns())
        except ProcessError as exc:
            self.summary.add_event("storage_failed", label=label, error=str(exc))

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
        producer = producer_figures(scrapes)
        resources["test_bed"] = {**test_bed.to_json(), "judgement": judgement.message}
        resources["producer"] = producer
        resources["book_memory_bytes_max"] = gauge_max(scrapes, "ingest_book_memory_bytes")
        resources["redis"] = self._redis_figures(action.label, scrapes)
        histograms = snapshot.measure.histograms
        # A record of the hold may still be on its way when the hold is judged: the SUT's lag
        # plus the harness consumer's (delivery) bounds how long.
        in_flight_s = in_flight_window_s(
            sum(int(histograms[m].get_max_value()) for m in ("total", "delivery"))
            if histograms["total"].get_total_count()
            else None
        )
        loss = compare(snapshot.completeness, sent, in_flight_s=in_flight_s)
        storage = self._storage_hold(action.label)
        measurement = self._measurement(action, snapshot, sent, resources, loss, storage)
        evaluation = evaluate(measurement, self.scenario.thresholds)
        evaluation = testbed.apply(evaluation, judgement, self.scenario.test_bed)
        if self.sut_dead:
            evaluation = self._sut_exited(evaluation)
        diagnosis = diagnose(
            HoldEvidence(
                total=measurement.total,
                hops={
                    "network": measurement.network,
                    "processing": measurement.processing,
                    "kafka": measurement.kafka,
                },
                delivery=_lag(snapshot.measure, "delivery"),
                basis=snapshot.measure.basis,
                generator_lateness_p99_us=measurement.generator_lateness_p99_us,
                sut_cpu_cores_mean=_cores(resources.get("cpu_percent_mean")),
                sut_cpu_cores_max=_cores(resources.get("cpu_percent_max")),
                producer=producer,
                test_bed=test_bed,
                judgement=judgement,
                loss=loss.to_json() if loss.lost_beyond_tolerance else None,
                sut_dropping=dropping_counters(scrapes),
                storage=None
                if storage is None
                else storage_json(storage, self.scenario.storage.batch_ms),
                storage_broken=[n for n in evaluation.broken if n.startswith("storage")],
            )
        )
        self._record_stage(
            plan, action, snapshot, sent, resources, evaluation, loss, diagnosis, test_bed,
            measurement.expected_messages, storage,
        )  # fmt: skip
        self._keep_sut_metrics(action.label, samples)
        return list(plan.submit(evaluation.verdict, evaluation.broken, evaluation.inconclusive))

    def _keep_sut_metrics(self, label: str, samples: list[ResourceSample]) -> None:
        """The hold's scrapes of the SUT's metrics, one JSON line each, in sut-metrics.jsonl."""
        lines = [
            json.dumps({"label": label, "t_ns": r.t_ns, "samples": r.sut_metrics})
            for r in samples
            if r.sut_metrics
        ]
        if lines:
            with (self.run_dir / "sut-metrics.jsonl").open("a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")

    @staticmethod
    def _sut_exited(evaluation: StageEvaluation) -> StageEvaluation:
        """A hold during which the SUT died fails, whatever else was measured: the generator
        guard cannot make it inconclusive (feed_sim stops sending when its watcher is gone)."""
        died = ThresholdResult(
            "sut_alive", Verdict.FAIL, 0.0, 1.0, "", "the system under test exited mid-hold"
        )
        return dataclasses.replace(
            evaluation, verdict=Verdict.FAIL, results=(*evaluation.results, died)
        )

    def _measurement(
        self,
        action: Evaluate,
        snapshot: CollectorSnapshot,
        sent: Any,
        resources: dict[str, Any],
        loss: LossReport,
        storage: StorageHold | None,
    ) -> StageMeasurement:
        measure = snapshot.measure
        pct = measure.percentiles()

        def lag(name: str) -> LagPercentiles | None:
            return _lag(measure, name, pct)

        duration_s = max(1e-9, ((sent.ended_ns or self.clock_ns()) - sent.started_ns) / 1e9)
        expected = action.expected_messages
        if expected and action.early_abort is not None:
            # The hold was cut short: the schedule promised only its share of the messages.
            planned_s = (
                self.scenario.rollback.verify_s
                if action.verify
                else self.scenario.stages[action.stage_index].hold_s
            )
            expected = int(expected * min(1.0, duration_s / planned_s))
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
                storage=self._storage_figures(storage),
            )
            if duration_s
            else StageMeasurement(action.label, None)
        )

    def _storage_figures(self, storage: StorageHold | None) -> StorageFigures | None:
        """The hold's storage figures to judge (None without `storage`)."""
        if self.ctx.storage is None:
            return None
        if storage is None:  # the writer failed: judged as not measured
            return StorageFigures(lag=None, caught_up=None, mismatch=None)
        figures = hdr.percentiles(storage.storage)
        return StorageFigures(
            lag=LagPercentiles.from_dict(figures) if figures["count"] else None,
            caught_up=storage.reconciliation.caught_up,
            mismatch=storage.reconciliation.mismatch,
        )

    def _record_stage(
        self,
        plan: StagePlan,
        action: Evaluate,
        snapshot: CollectorSnapshot,
        sent: Any,
        resources: dict[str, Any],
        evaluation: StageEvaluation,
        loss: LossReport,
        diagnosis: Diagnosis,
        test_bed: TestBedLoad,
        expected_messages: int | None,
        storage: StorageHold | None = None,
    ) -> None:
        verdicts = [dataclasses.asdict(r) for r in evaluation.results]
        duration_s = ((sent.ended_ns or self.clock_ns()) - sent.started_ns) / 1e9
        symbols = len(plan.stage_symbols[action.stage_index])
        per_symbol_hz = self.scenario.stage_rate_hz(action.stage_index)
        rate = {
            "scheduled_messages": expected_messages,
            "sent_messages": sent.messages,
            "received_messages": snapshot.measure.messages,
            "scheduled_msg_s": None  # tape timing: only feed_sim knows the schedule
            if per_symbol_hz is None
            else (per_symbol_hz + self.scenario.feed.level2_rate_per_symbol_hz) * symbols,
            "sent_msg_s": sent.messages / duration_s if duration_s > 0 else None,
        }
        entry = stage_entry(
            action.stage_index,
            action.label,
            symbols,
            measure=snapshot.measure,
            verdict=str(evaluation.verdict),
            verdicts=verdicts,
            resources=resources,
            completeness=loss.to_json(),
            extra_histograms={"generator_lateness": sent.lateness_us},
            started_ns=sent.started_ns,
            ended_ns=sent.ended_ns,
            rate=rate,
        )
        entry["diagnosis"] = diagnosis.to_json()
        entry["lag_basis"] = {**snapshot.measure.basis, "note": self.lag_basis.get("note")}
        histograms = dict(snapshot.measure.histograms)
        if self.ctx.storage is not None:
            entry["storage"] = (
                None if storage is None else storage_json(storage, self.scenario.storage.batch_ms)
            )
        if storage is not None:
            written = {
                "storage": storage.storage,
                "storage_wait": storage.wait,
                "storage_insert": storage.insert,
            }
            histograms |= written
            entry["latency_us"] |= {name: histogram_figures(h) for name, h in written.items()}
        self.summary.add_stage(entry, histograms)
        for tag_suffix, name in (("", "total"), ("-uncorrected", "total_uncorrected")):
            # The measure accumulates every sealed interval of the stage, whatever snapshots
            # (early-abort checks) were taken before this one.
            seconds = snapshot.measure.intervals.get(name, {})
            rows = [(second, hdr.decode(code)) for second, code in sorted(seconds.items())]
            if rows and self.scenario.outputs.hlog:
                tag = action.label + tag_suffix
                append_intervals(self.run_dir / "lag.hlog", self.run_start_ns, tag, rows)
        self.stage_rows.append(
            {
                "index": action.stage_index + 1,
                "label": action.label,
                "symbols": symbols,
                "verdict": str(evaluation.verdict),
                "thresholds": verdicts,
                "duration_s": (sent.ended_ns - sent.started_ns) / 1e9 if sent.ended_ns else 0.0,
                "diagnosis": diagnosis.line,
                "lag_basis": self.lag_basis.get("note"),
            }
        )
        if self.scenario.outputs.junit:
            write_junit(self.run_dir / "junit.xml", self.scenario.name, self.stage_rows)
        colour = {Verdict.PASS: "green", Verdict.FAIL: "red"}.get(evaluation.verdict, "yellow")
        self.console.print(
            f"{action.label} ({symbols} symbols): "
            f"[{colour}]{evaluation.verdict}[/] {evaluation.summary}"
        )
        self.console.print(f"{action.label}: diagnosis: {diagnosis.line}", highlight=False)
        self.console.print(f"{action.label}: {test_bed.describe()}", highlight=False)
        delivery = _lag(snapshot.measure, "delivery")
        cost_line = describe_cost(
            self.collector_costs.get(action.label, {}),
            None if delivery is None else delivery.p99,
        )
        if cost_line is not None:
            self.console.print(f"{action.label}: {cost_line}", highlight=False)

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
        self.console.print(f"rollback hook: {command}")
        try:
            proc = subprocess.run(
                shlex.split(command),
                capture_output=True,
                text=True,
                timeout=self.scenario.rollback.hook_timeout_s,
                check=False,
                cwd=paths.repo_root(),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.console.print(f"[red]rollback hook failed:[/] {exc}")
            self.summary.add_event("hook_failed", command=command, error=str(exc))
            return
        self.summary.add_event(
            "hook_ran",
            command=command,
            exit_code=proc.returncode,
            output=(proc.stdout + proc.stderr)[-2000:],
        )

    def _progress(self, plan: StagePlan) -> None:
        """The progress line (stage, phase, time left, received rate, live P99) and
        live.json, the same figures for `--ui` and anything else that wants to watch."""
        status = plan.status()
        live = rate = None
        if self.ctx.collector is not None:
            counters = self.ctx.collector.counters()
            live = counters.live_p99_us
            now = (counters.t_ns, counters.consumed_messages)
            if self._last_consumed is not None and now[0] > self._last_consumed[0]:
                rate = (now[1] - self._last_consumed[1]) * 1e9 / (now[0] - self._last_consumed[0])
            self._last_consumed = now
        p99 = f"{live / 1000:.1f} ms" if live is not None else "-"
        received = f"{rate:,.0f} msg/s" if rate is not None else "-"
        self.console.print(
            f"[dim]{status.label} {status.phase} {status.symbol_count} symbols, "
            f"{status.time_left_s:.0f} s left, received {received}, live P99 {p99}[/]",
            highlight=False,
        )
        self._write_live(
            label=status.label,
            phase=str(status.phase),
            symbols=status.symbol_count,
            time_left_s=status.time_left_s,
            second=self.clock_ns() // 1_000_000_000,
            p99_us=live,
            rate_msg_s=rate,
            done=status.phase is Phase.DONE,
        )

    def _write_live(self, **status: Any) -> None:
        try:
            write_atomic(self.live_path, json.dumps(status) + "\n")
        except OSError:
            log.warning("could not write %s", self.live_path, exc_info=True)
