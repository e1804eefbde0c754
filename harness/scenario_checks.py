"""The scenario checks that need more than one key, or the disk (reading the symbols file,
checking tapes exist): stages strictly increasing and within the universe, tapes present for
tape sources, bootstrap only for external Kafka, reload settings that fit the SUT kind, hop
thresholds only for stamps the SUT has. Each is a `Problem` (key path, message, and its line
once harness.scenario_loading has located it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.scenario import ExternalSut, ReferenceSut, Scenario


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a scenario: key path ("" = the whole document), message, line."""

    path: str
    message: str
    line: int | None = None

    def render(self, file: Path) -> str:
        where = f"{file}:{self.line}" if self.line else str(file)
        key = self.path or "(document)"
        return f"{where}: {key}: {self.message}"


def semantic_problems(scenario: Scenario, universe_size: int | None) -> list[Problem]:
    """Cross-key problems the schema alone cannot see (lines are filled in by the caller)."""
    problems: list[Problem] = []
    previous = 0
    for i, stage in enumerate(scenario.stages):
        if stage.symbols <= previous:
            problems.append(
                Problem(
                    f"stages[{i}].symbols",
                    f"{stage.symbols} is not more than the previous stage's {previous}: "
                    "stages must be strictly increasing in symbols",
                )
            )
        if universe_size is not None and stage.symbols > universe_size:
            problems.append(
                Problem(
                    f"stages[{i}].symbols",
                    f"{stage.symbols} exceeds the {universe_size} symbols of "
                    f"{scenario.symbols_file}",
                )
            )
        previous = max(previous, stage.symbols)
    feed = scenario.feed
    if feed.source in ("tape", "amplified") and not feed.tapes:
        problems.append(Problem("feed.tapes", f"source {feed.source!r} needs at least one tape"))
    if feed.source == "generated" and feed.tapes:
        problems.append(Problem("feed.tapes", "tapes are only read with source tape or amplified"))
    for i, tape in enumerate(feed.tapes):
        if not scenario.resolve(tape).is_file():
            problems.append(Problem(f"feed.tapes[{i}]", f"no such tape file: {tape}"))
    infra = scenario.infra
    if infra.mode == "external" and not infra.bootstrap:
        problems.append(Problem("infra.bootstrap", "mode external needs the bootstrap servers"))
    if infra.mode != "external" and infra.bootstrap:
        problems.append(
            Problem("infra.bootstrap", f"only used with mode external, not {infra.mode}")
        )
    sut = scenario.sut
    if not isinstance(sut, ReferenceSut):  # the reference core reloads live (POST /admin/symbols)
        if sut.reload.method == "http" and not sut.reload.url:
            problems.append(Problem("sut.reload.url", "reload method http needs a url"))
        if isinstance(sut, ExternalSut) and sut.reload.method in ("restart", "signal"):
            problems.append(
                Problem("sut.reload.method", "an external SUT cannot be restarted or signalled")
            )
    mapping = sut.record_mapping.field_mapping()
    hop_stamps = {
        "network_lag_p99_ms": ("recv_ns",),
        "processing_lag_p99_ms": ("recv_ns", "produced_ns"),
        "kafka_lag_p99_ms": ("produced_ns",),
    }
    for key, stamps in hop_stamps.items():
        missing = [s for s in stamps if getattr(mapping, s) is None]
        if getattr(scenario.thresholds, key) is not None and missing:
            problems.append(
                Problem(
                    f"thresholds.{key}",
                    f"needs sut.record_mapping.{missing[0]}, which is null",
                )
            )
    return problems


def universe_size(scenario: Scenario) -> tuple[int | None, Problem | None]:
    from harness.symbols import SymbolFileError, load_universe

    try:
        universe = load_universe(scenario.resolve(scenario.symbols_file))
    except SymbolFileError as exc:
        return None, Problem("symbols_file", str(exc))
    return len(universe.symbols), None
