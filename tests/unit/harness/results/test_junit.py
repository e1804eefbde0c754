"""junit.xml: one case per stage x threshold, failures and skips counted, parseable."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.results.junit import write_junit

STAGES = [
    {
        "index": 1,
        "symbols": 50,
        "duration_s": 60.0,
        "thresholds": [
            {"name": "total_p95", "verdict": "pass", "measured": 3.2, "limit": 50.0, "unit": "ms"},
            {"name": "total_p99", "verdict": "pass", "measured": 7.9, "limit": 100.0, "unit": "ms"},
        ],
    },
    {
        "index": 2,
        "symbols": 495,
        "duration_s": 30.0,
        "thresholds": [
            {"name": "total_p99", "verdict": "fail", "measured": 180.5, "limit": 100.0,
             "unit": "ms", "message": "total P99 180.5 ms > 100 ms"},
            {"name": "generator_lateness", "verdict": "inconclusive", "measured": None,
             "limit": 1.0, "unit": "ms", "message": "generator saturated"},
            {"name": "loss", "verdict": "pass", "measured": 0.0, "limit": 0.0, "unit": "ratio"},
        ],
    },
]  # fmt: skip


def test_cases_failures_and_skips(tmp_path: Path) -> None:
    path = write_junit(tmp_path / "junit.xml", "ramp_495", STAGES)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 5 == int(suite.get("tests", "0")) == int(root.get("tests", "0"))
    assert suite.get("failures") == "1" and suite.get("skipped") == "1"
    assert suite.get("errors") == "0" and float(suite.get("time", "0")) == 90.0
    assert {c.get("classname") for c in cases} == {"ramp_495"}
    names = [c.get("name") for c in cases]
    assert names[0] == "stage-1 (50 symbols) total_p95"
    assert names[2] == "stage-2 (495 symbols) total_p99"
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("message") == "total P99 180.5 ms > 100 ms"
    assert "measured 180.5 ms; limit 100 ms" in (failure.text or "")
    skipped = cases[3].find("skipped")
    assert skipped is not None and skipped.get("message") == "generator saturated"
    assert cases[0].find("failure") is None and cases[0].find("skipped") is None


def test_rewritten_after_each_stage(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(path, "smoke", STAGES[:1])
    assert len(ET.parse(path).getroot().iter("testcase").__next__().attrib) >= 3
    write_junit(path, "smoke", STAGES)
    assert len(list(ET.parse(path).getroot().iter("testcase"))) == 5


def test_no_stages_is_an_empty_valid_suite(tmp_path: Path) -> None:
    root = ET.parse(write_junit(tmp_path / "j.xml", "s", [])).getroot()
    assert root.get("tests") == "0" and root.find("testsuite") is not None


def test_verify_hold_cases_are_named_by_label(tmp_path: Path) -> None:
    verify = {**STAGES[0], "label": "verify-1"}
    path = write_junit(tmp_path / "junit.xml", "ramp", [{**STAGES[0], "label": "stage-1"}, verify])
    names = [case.get("name") for case in ET.parse(path).getroot().iter("testcase")]
    assert names == [
        "stage-1 (50 symbols) total_p95",
        "stage-1 (50 symbols) total_p99",
        "verify-1 (50 symbols) total_p95",
        "verify-1 (50 symbols) total_p99",
    ]
