"""Writing what a judged hold gave, as soon as it is judged (an interrupted run keeps it):
its summary.json entry and histograms, its intervals in lag.hlog, its junit.xml case, its
console lines, and the SUT's metrics scrapes of the hold (sut-metrics.jsonl)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.collector.client import describe_cost
from harness.collector.loss import LossReport
from harness.collector.replies import CollectorSnapshot
from harness.diagnosis import Diagnosis
from harness.hold_judgement import lag_percentiles
from harness.results.hlog import append_intervals
from harness.results.junit import write_junit
from harness.results.summary import SummaryWriter, histogram_figures, stage_entry
from harness.sampler import ResourceSample
from harness.scenario import Scenario
from harness.storage_writer import StorageHold, storage_json
from harness.testbed import TestBedLoad
from harness.thresholds import StageEvaluation, Verdict


@dataclass(frozen=True)
class JudgedHold:
    """One judged hold and what it was judged on."""

    stage_index: int
    label: str
    symbols: int
    snapshot: CollectorSnapshot
    sent: Any
    """feed_sim's counters of the hold (`contracts.sent.StageCounters`)."""
    resources: dict[str, Any]
    evaluation: StageEvaluation
    loss: LossReport
    diagnosis: Diagnosis
    test_bed: TestBedLoad
    expected_messages: int | None
    storage: StorageHold | None = None
    collector_cost: Mapping[str, Any] = field(default_factory=dict)


class StageResults:
    """The run folder's per-hold outputs; `rows` are the junit cases so far."""

    def __init__(
        self,
        scenario: Scenario,
        run_dir: Path,
        summary: SummaryWriter,
        console: Console,
        *,
        run_start_ns: int,
        clock_ns: Callable[[], int],
        lag_note: Callable[[], str | None],
        storage_enabled: bool,
    ) -> None:
        self.scenario = scenario
        self.run_dir = run_dir
        self.summary = summary
        self.console = console
        self.run_start_ns = run_start_ns
        self.clock_ns = clock_ns
        self.lag_note = lag_note
        self.storage_enabled = storage_enabled
        self.rows: list[dict[str, Any]] = []

    def record(self, hold: JudgedHold) -> None:
        """summary.json (with the hold's histograms), lag.hlog, junit.xml, the console."""
        entry, histograms = self._entry(hold)
        self.summary.add_stage(entry, histograms)
        self._append_hlog(hold)
        verdicts = entry["thresholds"]
        sent = hold.sent
        self.rows.append(
            {
                "index": hold.stage_index + 1,
                "label": hold.label,
                "symbols": hold.symbols,
                "verdict": str(hold.evaluation.verdict),
                "thresholds": verdicts,
                "duration_s": (sent.ended_ns - sent.started_ns) / 1e9 if sent.ended_ns else 0.0,
                "diagnosis": hold.diagnosis.line,
                "lag_basis": self.lag_note(),
            }
        )
        self.write_junit()
        self._print(hold)

    def write_junit(self) -> None:
        if self.scenario.outputs.junit:
            write_junit(self.run_dir / "junit.xml", self.scenario.name, self.rows)

    def keep_sut_metrics(self, label: str, samples: Sequence[ResourceSample]) -> None:
        """The hold's scrapes of the SUT's metrics, one JSON line each, in sut-metrics.jsonl."""
        lines = [
            json.dumps({"label": label, "t_ns": r.t_ns, "samples": r.sut_metrics})
            for r in samples
            if r.sut_metrics
        ]
        if lines:
            with (self.run_dir / "sut-metrics.jsonl").open("a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")

    def _entry(self, hold: JudgedHold) -> tuple[dict[str, Any], dict[str, Any]]:
        sent, snapshot = hold.sent, hold.snapshot
        duration_s = ((sent.ended_ns or self.clock_ns()) - sent.started_ns) / 1e9
        per_symbol_hz = self.scenario.stage_rate_hz(hold.stage_index)
        rate = {
            "scheduled_messages": hold.expected_messages,
            "sent_messages": sent.messages,
            "received_messages": snapshot.measure.messages,
            "scheduled_msg_s": None  # tape timing: only feed_sim knows the schedule
            if per_symbol_hz is None
            else (per_symbol_hz + self.scenario.feed.level2_rate_per_symbol_hz) * hold.symbols,
            "sent_msg_s": sent.messages / duration_s if duration_s > 0 else None,
        }
        entry = stage_entry(
            hold.stage_index,
            hold.label,
            hold.symbols,
            measure=snapshot.measure,
            verdict=str(hold.evaluation.verdict),
            verdicts=[dataclasses.asdict(r) for r in hold.evaluation.results],
            resources=hold.resources,
            completeness=hold.loss.to_json(),
            extra_histograms={"generator_lateness": sent.lateness_us},
            started_ns=sent.started_ns,
            ended_ns=sent.ended_ns,
            rate=rate,
        )
        entry["diagnosis"] = hold.diagnosis.to_json()
        entry["lag_basis"] = {**snapshot.measure.basis, "note": self.lag_note()}
        histograms = dict(snapshot.measure.histograms)
        storage = hold.storage
        if self.storage_enabled:
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
        return entry, histograms

    def _append_hlog(self, hold: JudgedHold) -> None:
        if not self.scenario.outputs.hlog:
            return
        for tag_suffix, name in (("", "total"), ("-uncorrected", "total_uncorrected")):
            # The measure accumulates every sealed interval of the stage, whatever snapshots
            # (early-abort checks) were taken before this one.
            seconds = hold.snapshot.measure.intervals.get(name, {})
            rows = sorted(seconds.items())
            if rows:
                tag = hold.label + tag_suffix
                append_intervals(self.run_dir / "lag.hlog", self.run_start_ns, tag, rows)

    def _print(self, hold: JudgedHold) -> None:
        evaluation, label = hold.evaluation, hold.label
        colour = {Verdict.PASS: "green", Verdict.FAIL: "red"}.get(evaluation.verdict, "yellow")
        self.console.print(
            f"{label} ({hold.symbols} symbols): "
            f"[{colour}]{evaluation.verdict}[/] {evaluation.summary}"
        )
        self.console.print(f"{label}: diagnosis: {hold.diagnosis.line}", highlight=False)
        self.console.print(f"{label}: {hold.test_bed.describe()}", highlight=False)
        delivery = lag_percentiles(hold.snapshot.measure, "delivery")
        cost_line = describe_cost(hold.collector_cost, None if delivery is None else delivery.p99)
        if cost_line is not None:
            self.console.print(f"{label}: {cost_line}", highlight=False)
