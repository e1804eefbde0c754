"""report.md / report.html from a run folder: verdict first, rollback story, targets with
margins, completeness, embedded plots, sign-off block; bad folders are named."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.results.report import ReportError, margin_text, write_report
from harness.results.summary import SummaryWriter, run_metadata
from tests.unit.harness.results.test_summary import T0, _stage

# A 1x1 PNG: the report embeds whatever plots/ holds, byte for byte.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _run(tmp_path: Path) -> Path:
    meta = run_metadata(
        "ramp", "stages: []\n", started_ns=T0, scenario_path="ramp.yaml", command="harness run x"
    )
    writer = SummaryWriter(tmp_path, meta, clock=lambda: T0)
    for index, lag in ((1, 5_000), (2, 150_000)):
        entry, histograms = _stage(index, lag)
        entry["verdict"] = "pass" if index == 1 else "fail"
        entry["diagnosis"] = {"line": f"kafka hop <b>{index}</b>"}
        entry["completeness"] = {
            "sent": 1000,
            "received": 990,
            "lost": 10,
            "duplicates": 0,
            "worst": [{"symbol": "AAPL", "lost": 7, "sent": 500}],
        }
        writer.add_stage(entry, histograms)
    writer.add_event("threshold_broken", label="stage-2", thresholds=["total_lag_p99_ms"])
    writer.add_event("rollback_started", label="verify-1", failed="stage-2", to="stage-1")
    writer.add_event("rollback_ended", label="verify-1", outcome="held", recovery_s=42.0)
    writer.finish(1, "stage-2 broke a threshold; the rollback held in 42.0 s")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "extra.png").write_bytes(PNG)
    return tmp_path


def test_markdown_puts_the_verdict_first_then_the_story_targets_and_sign_off(
    tmp_path: Path,
) -> None:
    markdown, _ = write_report(_run(tmp_path))
    text = markdown.read_text()
    lines = text.splitlines()
    assert lines[2] == ("**FAIL**: stage-2 broke a threshold; the rollback held in 42.0 s (exit 1)")
    assert "| stage-2 | 100 | FAIL | " in text and "kafka hop <b>2</b>" in text
    story = text[text.index("## Rollback") : text.index("## Targets")]
    assert "broke total_lag_p99_ms" in story
    assert "stepped back from stage-2 to stage-1 (verify hold verify-1)" in story
    assert "rollback held in 42.0 s" in story
    assert "| stage-1 | total_p99 | pass | 12.000 ms | 100.000 | +88 ms (+88%) |" in text
    assert "| stage-2 | 1,000 | 990 | 10 | 0 | AAPL 7 lost of 500 |" in text
    assert "![extra](plots/extra.png)" in text
    signoff = text[text.index("## Sign-off") :]
    for key in ("scenario SHA-256", "git", "command | harness run x", "host", "packages"):
        assert key in signoff


def test_html_is_self_contained_and_escapes_what_it_shows(tmp_path: Path) -> None:
    _, html_path = write_report(_run(tmp_path))
    html = html_path.read_text()
    assert html.index('id="verdict"') < html.index("<h2>Targets")
    assert '<span class="v FAIL">FAIL</span>' in html
    assert "data:image/png;base64," + base64.b64encode(PNG).decode() in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from anywhere
    assert "kafka hop &lt;b&gt;2&lt;/b&gt;" in html and "<b>2</b>" not in html


def test_an_interrupted_run_still_gets_a_report(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path, run_metadata("r", "x", started_ns=T0), clock=lambda: T0)
    writer.add_stage(*_stage(1, 5_000))  # no finish(): interrupted
    markdown, _ = write_report(tmp_path)
    assert "**INTERRUPTED**" in markdown.read_text()


@pytest.mark.parametrize(
    ("measured", "limit", "name", "unit", "text"),
    [
        (40.0, 50.0, "total_lag_p95_ms", "ms", "+10 ms (+20%)"),
        (120.0, 100.0, "total_lag_p99_ms", "ms", "-20 ms (-20%)"),
        (0.995, 0.99, "achieved_rate_ratio_min", "ratio", "+0.005 (+1%)"),
        (0.4, 0.5, "test_bed", "share", ""),
        (None, 1.0, "x", "ms", ""),
    ],
)
def test_margins_point_the_right_way(
    measured: float | None, limit: float, name: str, unit: str, text: str
) -> None:
    assert margin_text(measured, limit, name, unit) == text


def test_a_folder_without_a_summary_is_named_and_exits_3(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=str(tmp_path / "summary.json")):
        write_report(tmp_path)
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 3 and "not found" in " ".join(result.output.split())
    (tmp_path / "summary.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 3 and "unreadable" in " ".join(result.output.split())


def test_the_report_draws_its_plots_embeds_them_and_says_what_it_could_not_draw(
    tmp_path: Path,
) -> None:
    from matplotlib.image import imread

    run = _run(tmp_path)
    _, html = write_report(run)
    chart = run / "plots" / "hops-by-hold.png"
    pixels = imread(chart)
    assert pixels.shape[0] > 300 and len({tuple(p) for p in pixels.reshape(-1, 4)[::97]}) > 5
    drawn = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert drawn == [
        "extra.png",
        "hops-by-hold.png",
        "percentiles-by-hold.png",
        "stage-1-percentiles.png",
        "stage-2-percentiles.png",
    ]
    text = html.read_text()
    assert text.count("data:image/png;base64,") == len(drawn)
    # This summary has no lag.hlog and no sampler rows beside it: those plots are named.
    assert "not drawn: lag-over-time.png: lag.hlog was not written" in text
    assert "not drawn: resources.png: resources.jsonl was not written" in text
    other = tmp_path / "no-plots"
    other.mkdir()
    (other / "summary.json").write_text((run / "summary.json").read_text())
    write_report(other, plots=False)
    assert not (other / "plots").exists()


def test_the_feed_check_is_in_the_report_or_why_it_was_not_run(tmp_path: Path) -> None:
    run = _run(tmp_path)
    document = json.loads((run / "summary.json").read_text())
    document["run"]["feed_data"] = {"verdict": "unchecked", "error": "x.tape: no such file"}
    (run / "summary.json").write_text(json.dumps(document))
    markdown, html = write_report(run, plots=False)
    assert "not checked: x.tape: no such file" in markdown.read_text()
    assert "not checked: x.tape: no such file" in html.read_text()
    document["run"]["feed_data"] = {
        "verdict": "synthetic", "source": "tape t", "trades": 10, "quotes": 0, "symbols": 1,
        "notes": [], "findings": [{"check": "session_hours", "severity": "synthetic",
                                   "summary": "all at night", "source": "market-facts.md 4.1",
                                   "evidence": {}}],
    }  # fmt: skip
    (run / "summary.json").write_text(json.dumps(document))
    markdown, html = write_report(run, plots=False)
    assert "**SYNTHETIC**: tape t" in markdown.read_text()
    assert "all at night" in html.read_text()
