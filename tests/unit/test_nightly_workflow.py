"""The nightly load job: a valid workflow whose steps are the README's commands plus the
nightly scenario, its report and the comparison; `make nightly` runs the same script."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly-load.yml"


def test_the_workflow_is_valid_and_runs_the_readme_commands_then_the_nightly() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    steps = workflow["jobs"]["load"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    assert runs == ["sudo make test", "sudo make nightly"]
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make nightly" in readme
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and "results/nightly" in uploads[0]["with"]["path"]
    assert all(s.get("if") == "always()" for s in steps[-2:])  # kept even when the run fails


def test_make_nightly_runs_the_nightly_scenario_its_report_and_the_comparison() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^nightly: install\n\t@bash scripts/nightly.sh$", makefile, re.M)
    script = (ROOT / "scripts" / "nightly.sh").read_text()
    assert "scenarios/ci_nightly.yaml" in script
    assert '"$bin/harness" run "$scenario"' in script
    assert '"$bin/harness" compare "$run" "$baseline"' in script
    assert (ROOT / "scenarios" / "ci_nightly.yaml").exists()
