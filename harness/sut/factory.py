"""`make_sut()`: the adapter of a scenario's `sut.kind` (the only place that knows them all)."""

from __future__ import annotations

from pathlib import Path

from harness.scenario import CommandSut, ContainerSut, ExternalSut, ReferenceSut, Scenario
from harness.sut.base import SystemUnderTest
from harness.sut.command import CommandCore
from harness.sut.container import ContainerCore
from harness.sut.external import ExternalCore
from harness.sut.reference import ReferenceCore


def make_sut(scenario: Scenario, run_dir: Path) -> SystemUnderTest:
    """The (not yet started) SUT adapter of `scenario`, keeping its files in `run_dir`."""
    sut = scenario.sut
    universe = scenario.resolve(scenario.symbols_file)
    if isinstance(sut, ReferenceSut):
        return ReferenceCore(sut, run_dir, universe)
    if isinstance(sut, CommandSut):
        cwd = scenario.resolve(sut.cwd) if sut.cwd is not None else None
        return CommandCore(sut, run_dir, universe, cwd=cwd)
    if isinstance(sut, ContainerSut):
        return ContainerCore(sut, run_dir, universe)
    if isinstance(sut, ExternalSut):
        return ExternalCore(sut)
    raise TypeError(f"unknown SUT config {type(sut).__name__}")
