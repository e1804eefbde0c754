"""`junit.xml` of a run: one test case per stage x threshold, for CI dashboards.

Common JUnit schema (what Jenkins, GitLab and GitHub reporters read): one `<testsuites>`
holding one `<testsuite>` per run with tests / failures / errors / skipped / time counts;
each `<testcase classname="<scenario>" name="<label> (S symbols) <threshold>" time="...">`
has a `<failure message=... type="threshold">` when the threshold broke (measured vs limit),
a `<skipped message=...>` when it was inconclusive (generator saturated, nothing measured),
and nothing when it passed.

Stages are plain dicts: `index`, `symbols`, optional `duration_s`, `diagnosis` (the hold's
diagnosis line, added to the message of every case that did not pass), `lag_basis` (where
the lag ends, added to the total-lag cases) and `thresholds`, a list of plain dicts with
`name`, `verdict` ("pass" / "fail" / "inconclusive"), `measured`, `limit`, `unit`, `message`
(`dataclasses.asdict(ThresholdResult)` fits). The file is
replaced atomically, so it can be rewritten after every stage.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.results.summary import write_atomic

JUNIT = "junit.xml"


def _figure(value: Any, unit: str) -> str:
    if value is None:
        return "not measured"
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip()


def case_name(stage: Mapping[str, Any], threshold: Mapping[str, Any]) -> str:
    """`<label> (S symbols) <threshold>`; the label is stage-N, or verify-N for the verify hold
    after a rollback (`stage-<index>` when a stage has no label)."""
    label = stage.get("label") or f"stage-{stage['index']}"
    return f"{label} ({stage['symbols']} symbols) {threshold['name']}"


def junit_root(scenario: str, stages: Sequence[Mapping[str, Any]]) -> ET.Element:
    """The junit document (`<testsuites>`) of the stages so far."""
    suite = ET.Element("testsuite", name=scenario)
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    total_time = 0.0
    for stage in stages:
        thresholds = list(stage.get("thresholds") or [])
        seconds = float(stage.get("duration_s") or 0.0)
        total_time += seconds
        share = seconds / len(thresholds) if thresholds else 0.0
        for threshold in thresholds:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=scenario,
                name=case_name(stage, threshold),
                time=f"{share:.3f}",
            )
            counts["tests"] += 1
            verdict = str(threshold.get("verdict", threshold.get("status", ""))).lower()
            unit = str(threshold.get("unit", ""))
            measured = _figure(threshold.get("measured"), unit)
            limit = _figure(threshold.get("limit"), unit)
            message = str(threshold.get("message") or f"measured {measured}, limit {limit}")
            if stage.get("diagnosis") and verdict not in ("pass", "passed"):
                message += f" | diagnosis: {stage['diagnosis']}"
            if stage.get("lag_basis") and threshold.get("name", "").startswith("total_lag"):
                message += f" | {stage['lag_basis']}"
            if verdict in ("fail", "failed"):
                counts["failures"] += 1
                failure = ET.SubElement(case, "failure", message=message, type="threshold")
                failure.text = f"measured {measured}; limit {limit}"
            elif verdict in ("inconclusive", "skipped"):
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=message)
    suite.set("tests", str(counts["tests"]))
    suite.set("failures", str(counts["failures"]))
    suite.set("errors", "0")
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", f"{total_time:.3f}")
    root = ET.Element("testsuites", name=scenario)
    for key in ("tests", "failures", "skipped"):
        root.set(key, str(counts[key]))
    root.set("errors", "0")
    root.set("time", f"{total_time:.3f}")
    root.append(suite)
    ET.indent(root)
    return root


def write_junit(path: Path, scenario: str, stages: Sequence[Mapping[str, Any]]) -> Path:
    """Write (replace) the junit file of the stages so far; returns its path."""
    root = junit_root(scenario, stages)
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    write_atomic(path, '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")
    return path
