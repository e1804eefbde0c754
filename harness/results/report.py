"""The sign-off report of a finished (or interrupted) run: report.md and report.html.

`write_report(run_dir)` reads only what the run wrote (summary.json, histograms/, lag.hlog,
resources.jsonl), draws every plot into plots/ (harness.results.run_plots) and writes:

- `report.md`: for pull requests and terminals (plots linked, relative paths);
- `report.html`: one self-contained page (plots embedded as data URIs, no external assets, so
  it opens offline and survives being mailed or archived as a CI artifact).

Both put the verdict first (overall, then per hold with its diagnosis line), then the rollback
story (what broke, where it stepped back, the verify outcome, the recovery time), the plots
(pictures before tables), the targets table (every threshold of every hold: measured, limit,
margin), completeness per hold, and the sign-off block (scenario and its SHA-256, git SHA,
package versions, host, date, command line). `harness report RUN_DIR` runs it; `harness run`
runs it at the end.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from harness.results.run_plots import PLOTS_DIR, draw_plots, plot_order
from harness.results.summary import SUMMARY

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
NO_MARGIN = frozenset({"test_bed"})
"""Checks whose limit is not a plain bound on the measured figure (the test-bed rule applies
its share only when the host is saturated), so a margin would mislead."""


class ReportError(ValueError):
    """The folder is not a run's results (no readable summary.json)."""


@dataclass(frozen=True)
class TargetRow:
    """One threshold of one hold: what was measured against which limit."""

    hold: str
    name: str
    verdict: str
    measured: float | None
    limit: float | None
    unit: str
    margin: str
    message: str


@dataclass(frozen=True)
class HoldRow:
    """One judged hold (stage-N or verify-N) in the verdict table."""

    label: str
    symbols: int
    verdict: str
    p95_ms: float | None
    p99_ms: float | None
    diagnosis: str
    sent: int | None
    received: int | None
    lost: int | None
    duplicates: int | None
    worst: str
    rss_mb: float | None = None
    book_mb: float | None = None
    feed_mbps: float | None = None
    redis_mb: float | None = None
    snapshot_write_ms: float | None = None


@dataclass(frozen=True)
class StorageRow:
    """One hold's ClickHouse sink (scenario `storage`): the storage hop and reconciliation."""

    label: str
    p99_ms: float | None
    wait_p99_ms: float | None
    insert_p99_ms: float | None
    batches: int | None
    kafka_records: int | None
    rows_final: int | None
    collapsed: int | None
    state: str
    """"reconciled", "N rows missing", "N rows too many", "writer behind" or "no figures"."""


def _storage_row(stage: Mapping[str, Any]) -> StorageRow | None:
    if "storage" not in stage:
        return None
    label = str(stage.get("label") or f"stage-{stage.get('index')}")
    block = stage.get("storage") or {}
    rec = block.get("reconciliation") or {}
    mismatch = int(rec.get("mismatch") or 0)
    if not block:
        state = "no figures (the writer failed)"
    elif not rec.get("caught_up"):
        state = "writer behind Kafka"
    elif mismatch == 0:
        state = "reconciled"
    else:
        state = f"{-mismatch:,} rows missing" if mismatch < 0 else f"{mismatch:,} rows too many"
    return StorageRow(
        label=label,
        p99_ms=_ms((block.get("lag_us") or {}).get("p99")),
        wait_p99_ms=_ms((block.get("wait_us") or {}).get("p99")),
        insert_p99_ms=_ms((block.get("insert_us") or {}).get("p99")),
        batches=block.get("batches"),
        kafka_records=rec.get("kafka_records"),
        rows_final=rec.get("rows_final"),
        collapsed=rec.get("duplicates_collapsed"),
        state=state,
    )


def _mb(value: Any) -> float | None:
    return None if value is None else float(value) / 2**20


@dataclass
class Report:
    """Everything both renderings show, taken from summary.json."""

    title: str
    verdict: str
    exit_code: int | None
    status: str
    holds: list[HoldRow]
    rollback: list[str]
    targets: list[TargetRow]
    signoff: list[tuple[str, str]]
    plots: list[Path] = field(default_factory=list)
    plot_notes: list[str] = field(default_factory=list)
    """Plots not drawn, and why (their input was not written)."""
    feed_data: dict[str, Any] | None = None
    """`harness validate-data`'s result on the run's feed (summary.json run.feed_data)."""
    storage: list[StorageRow] = field(default_factory=list)


def load_summary(run_dir: Path) -> dict[str, Any]:
    """summary.json of `run_dir`; ReportError naming the file when absent or unreadable."""
    path = run_dir / SUMMARY
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: not found; is {run_dir} a run's results folder?") from None
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: unreadable: {exc}") from None
    if not isinstance(document, dict) or "stages" not in document:
        raise ReportError(f"{path}: not a harness summary (no stages)")
    return document


def _ms(value: Any) -> float | None:
    return None if value is None else float(value) / 1000.0


def margin_text(measured: float | None, limit: float | None, name: str, unit: str) -> str:
    """How far from its limit a figure is: "+45.2 ms (45%)" of headroom, "-3 ms" beyond."""
    if measured is None or limit is None or name in NO_MARGIN:
        return ""
    at_least = name.endswith("_min") or name == "min_samples"
    headroom = measured - limit if at_least else limit - measured
    share = f" ({100 * headroom / limit:+.0f}%)" if limit and name != "min_samples" else ""
    unit_text = "" if unit in ("ratio", "records") else f" {unit}"
    return f"{headroom:+.4g}{unit_text}{share}"


def _worst(completeness: Mapping[str, Any], top: int = 3) -> str:
    worst = completeness.get("worst") or []
    return ", ".join(f"{w['symbol']} {w['lost']} lost of {w['sent']}" for w in worst[:top])


def _hold_row(stage: Mapping[str, Any]) -> HoldRow:
    total = (stage.get("latency_us") or {}).get("total") or {}
    completeness = stage.get("completeness") or {}
    diagnosis = stage.get("diagnosis") or {}
    resources = stage.get("resources") or {}
    redis = resources.get("redis") or {}
    return HoldRow(
        label=str(stage.get("label") or f"stage-{stage.get('index')}"),
        symbols=int(stage.get("symbols") or 0),
        verdict=str(stage.get("verdict") or "not judged"),
        p95_ms=_ms(total.get("p95")),
        p99_ms=_ms(total.get("p99")),
        diagnosis=str(diagnosis.get("line") or ""),
        sent=completeness.get("sent"),
        received=completeness.get("received"),
        lost=completeness.get("lost"),
        duplicates=completeness.get("duplicates"),
        worst=_worst(completeness),
        rss_mb=_mb(resources.get("rss_bytes_max")),
        book_mb=_mb(resources.get("book_memory_bytes_max")),
        feed_mbps=resources.get("feed_mbps_mean"),
        redis_mb=_mb(redis.get("used_memory_bytes")),
        snapshot_write_ms=redis.get("snapshot_write_ms_max"),
    )


def _targets(stage: Mapping[str, Any]) -> list[TargetRow]:
    label = str(stage.get("label") or f"stage-{stage.get('index')}")
    rows = []
    for check in stage.get("thresholds") or []:
        measured, limit = check.get("measured"), check.get("limit")
        unit = str(check.get("unit") or "")
        name = str(check.get("name") or "")
        rows.append(
            TargetRow(
                hold=label,
                name=name,
                verdict=str(check.get("verdict") or ""),
                measured=measured,
                limit=limit,
                unit=unit,
                margin=margin_text(measured, limit, name, unit),
                message=str(check.get("message") or ""),
            )
        )
    return rows


def rollback_story(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """What broke, where the run stepped back, the verify outcome and the recovery time."""
    story = []
    for event in events:
        kind = event.get("kind")
        at = str(event.get("at_utc") or "")
        if kind == "early_abort":
            story.append(f"{at} {event.get('label')}: hold ended early: {event.get('reason')}")
        elif kind == "threshold_broken":
            broken = ", ".join(str(x) for x in event.get("thresholds") or []) or "a threshold"
            story.append(f"{at} {event.get('label', '')}: broke {broken}".replace("  ", " "))
        elif kind == "rollback_started":
            story.append(
                f"{at} stepped back from {event.get('failed')} to {event.get('to')}"
                f" (verify hold {event.get('label')})"
            )
        elif kind == "rollback_ended":
            recovery = event.get("recovery_s")
            took = f" in {recovery:.1f} s" if isinstance(recovery, int | float) else ""
            story.append(f"{at} rollback {event.get('outcome')}{took}")
        elif kind in ("sut_died", "sut_exited"):
            story.append(f"{at} the SUT stopped: {event.get('reason') or event.get('exit_code')}")
    return story


def _signoff(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    run = document.get("run") or {}
    scenario = run.get("scenario") or {}
    git = run.get("git") or {}
    host = run.get("host") or {}
    packages = run.get("packages") or {}
    memory = host.get("memory_bytes")
    steal = [
        ((s.get("resources") or {}).get("test_bed") or {}).get("steal_ratio")
        for s in document.get("stages") or []
    ]
    steal_seen = [100.0 * x for x in steal if isinstance(x, int | float)]
    rows = [
        ("scenario", f"{scenario.get('name')} ({scenario.get('path') or 'built in'})"),
        ("scenario SHA-256", str(scenario.get("sha256") or "")),
        ("git", f"{git.get('sha')}{' (uncommitted changes)' if git.get('dirty') else ''}"),
        ("started / ended (UTC)", f"{run.get('started_utc')} / {run.get('ended_utc')}"),
        ("command", str(run.get("command") or "")),
        (
            "host",
            f"{host.get('hostname')}: {host.get('cpu_model')}, {host.get('cpu_logical')} cores, "
            f"{(memory or 0) / 2**30:.1f} GiB, {host.get('os')}, Python {host.get('python')}",
        ),
        ("steal seen", f"max {max(steal_seen):.1f}%" if steal_seen else "not recorded"),
        ("lag ends at", str((run.get("lag_basis") or {}).get("ends_at") or "")),
        ("broker profile", str(run.get("broker_profile") or "")),
        ("topic partitions", json.dumps(run.get("topic_partitions") or {})),
        ("packages", ", ".join(f"{k} {v}" for k, v in packages.items() if v)),
    ]
    return [(k, v) for k, v in rows if v and v != "None"]


def build_report(run_dir: Path) -> Report:
    """The report's content from the run's files."""
    document = load_summary(run_dir)
    stages = list(document.get("stages") or [])
    result = document.get("result") or {}
    scenario = ((document.get("run") or {}).get("scenario") or {}).get("name") or run_dir.name
    status = str(document.get("status") or "")
    verdict = str(result.get("verdict") or ("interrupted: no final verdict" if status else ""))
    return Report(
        title=f"{scenario}: {run_dir.name}",
        verdict=verdict,
        exit_code=result.get("exit_code"),
        status=status,
        holds=[_hold_row(s) for s in stages],
        rollback=rollback_story(document.get("events") or []),
        targets=[row for s in stages for row in _targets(s)],
        signoff=_signoff(document),
        plots=sorted((run_dir / PLOTS_DIR).glob("*.png"), key=plot_order),
        feed_data=(document.get("run") or {}).get("feed_data"),
        storage=[row for s in stages if (row := _storage_row(s)) is not None],
    )


def overall(report: Report) -> str:
    """PASS / FAIL / INCONCLUSIVE / INTERRUPTED from the exit code (contract 7)."""
    if report.exit_code is None:
        return "INTERRUPTED"
    if report.exit_code == 0:
        return "PASS"
    if report.exit_code == 5:
        return "INCONCLUSIVE"
    return "FAIL"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def render_markdown(report: Report, run_dir: Path) -> str:
    """report.md: the same sections as the HTML, plots linked relative to the run folder."""
    lines = [
        f"# {report.title}",
        "",
        f"**{overall(report)}**: {report.verdict} (exit {report.exit_code})",
        "",
        "| hold | symbols | verdict | total P95 ms | total P99 ms | diagnosis |",
        "|---|---|---|---|---|---|",
    ]
    for h in report.holds:
        lines.append(
            f"| {h.label} | {h.symbols} | {h.verdict.upper()} | {_num(h.p95_ms)} | "
            f"{_num(h.p99_ms)} | {h.diagnosis} |"
        )
    if report.rollback:
        lines += ["", "## Rollback", "", *(f"- {line}" for line in report.rollback)]
    if report.plots or report.plot_notes:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.relative_to(run_dir).as_posix()})" for p in report.plots]
        lines += [f"- not drawn: {note}" for note in report.plot_notes]
    lines += [
        "",
        "## Targets",
        "",
        "| hold | target | verdict | measured | limit | margin |",
        "|---|---|---|---|---|---|",
    ]
    for t in report.targets:
        lines.append(
            f"| {t.hold} | {t.name} | {t.verdict} | {_num(t.measured, 3)} {t.unit} | "
            f"{_num(t.limit, 3)} | {t.margin} |"
        )
    lines += [
        "",
        "## Completeness",
        "",
        "| hold | sent | received | lost | duplicates | worst symbols |",
        "|---|---|---|---|---|---|",
    ]
    for h in report.holds:
        lines.append(
            f"| {h.label} | {_count(h.sent)} | {_count(h.received)} | {_count(h.lost)} | "
            f"{_count(h.duplicates)} | {h.worst} |"
        )
    lines += [
        "",
        "## Resources",
        "",
        "| hold | SUT RSS max MB | book memory max MB | feed Mbps | Redis used MB | "
        "snapshot write max ms |",
        "|---|---|---|---|---|---|",
    ]
    for h in report.holds:
        lines.append(
            f"| {h.label} | {_num(h.rss_mb)} | {_num(h.book_mb, 2)} | {_num(h.feed_mbps)} | "
            f"{_num(h.redis_mb, 2)} | {_num(h.snapshot_write_ms)} |"
        )
    if report.storage:
        lines += [
            "",
            "## Storage (Kafka append -> row visible in ClickHouse)",
            "",
            "| hold | storage P99 ms | wait P99 ms | insert P99 ms | batches | Kafka records | "
            "rows after FINAL | duplicates collapsed | reconciliation |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for st in report.storage:
            lines.append(
                f"| {st.label} | {_num(st.p99_ms)} | {_num(st.wait_p99_ms)} | "
                f"{_num(st.insert_p99_ms)} | {_count(st.batches)} | {_count(st.kafka_records)} | "
                f"{_count(st.rows_final)} | {_count(st.collapsed)} | {st.state} |"
            )
    if report.feed_data and "findings" in report.feed_data:
        from harness.datacheck.validate import markdown as feed_section

        lines += ["", feed_section(report.feed_data).rstrip("\n")]
    elif report.feed_data:
        error = report.feed_data.get("error")
        lines += ["", "## Feed data legitimacy", "", f"not checked: {error}"]
    lines += ["", "## Sign-off", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.signoff]
    return "\n".join(lines) + "\n"


_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ r.title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.v{font-weight:bold;padding:2px 8px;border-radius:4px;color:#fff}
.PASS,.pass{background:#2e7d32}.FAIL,.fail{background:#c62828}
.INCONCLUSIVE,.inconclusive,.INTERRUPTED,.suspicious{background:#ef6c00}
.plausible{background:#2e7d32}.synthetic{background:#c62828}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
</style></head><body>
<h1>{{ r.title }}</h1>
<p id="verdict"><span class="v {{ result }}">{{ result }}</span> {{ r.verdict }}
(exit {{ r.exit_code }})</p>
<table><tr><th>hold</th><th>symbols</th><th>verdict</th><th>total P95 ms</th>
<th>total P99 ms</th><th>diagnosis</th></tr>
{% for h in r.holds %}<tr><td>{{ h.label }}</td><td>{{ h.symbols }}</td>
<td><span class="v {{ h.verdict }}">{{ h.verdict | upper }}</span></td>
<td>{{ num(h.p95_ms) }}</td><td>{{ num(h.p99_ms) }}</td><td>{{ h.diagnosis }}</td></tr>
{% endfor %}</table>
{% if r.rollback %}<h2>Rollback</h2><ul>{% for line in r.rollback %}<li>{{ line }}</li>
{% endfor %}</ul>{% endif %}
{% if images or r.plot_notes %}<h2>Plots</h2>
{% for name, uri in images %}<figure><img alt="{{ name }}" src="{{ uri }}">
<figcaption>{{ name }}</figcaption></figure>
{% endfor %}{% for note in r.plot_notes %}<p>not drawn: {{ note }}</p>{% endfor %}{% endif %}
<h2>Targets</h2>
<table><tr><th>hold</th><th>target</th><th>verdict</th><th>measured</th><th>limit</th>
<th>margin</th></tr>
{% for t in r.targets %}<tr><td>{{ t.hold }}</td><td title="{{ t.message }}">{{ t.name }}</td>
<td><span class="v {{ t.verdict }}">{{ t.verdict }}</span></td>
<td>{{ num(t.measured, 3) }} {{ t.unit }}</td><td>{{ num(t.limit, 3) }}</td>
<td>{{ t.margin }}</td></tr>
{% endfor %}</table>
<h2>Completeness</h2>
<table><tr><th>hold</th><th>sent</th><th>received</th><th>lost</th><th>duplicates</th>
<th>worst symbols</th></tr>
{% for h in r.holds %}<tr><td>{{ h.label }}</td><td>{{ count(h.sent) }}</td>
<td>{{ count(h.received) }}</td><td>{{ count(h.lost) }}</td><td>{{ count(h.duplicates) }}</td>
<td>{{ h.worst }}</td></tr>
{% endfor %}</table>
<h2>Resources</h2>
<table><tr><th>hold</th><th>SUT RSS max MB</th><th>book memory max MB</th><th>feed Mbps</th>
<th>Redis used MB</th><th>snapshot write max ms</th></tr>
{% for h in r.holds %}<tr><td>{{ h.label }}</td><td>{{ num(h.rss_mb) }}</td>
<td>{{ num(h.book_mb, 2) }}</td><td>{{ num(h.feed_mbps) }}</td><td>{{ num(h.redis_mb, 2) }}</td>
<td>{{ num(h.snapshot_write_ms) }}</td></tr>
{% endfor %}</table>
{% if r.storage %}<h2>Storage (Kafka append -&gt; row visible in ClickHouse)</h2>
<table><tr><th>hold</th><th>storage P99 ms</th><th>wait P99 ms</th><th>insert P99 ms</th>
<th>batches</th><th>Kafka records</th><th>rows after FINAL</th><th>duplicates collapsed</th>
<th>reconciliation</th></tr>
{% for st in r.storage %}<tr><td>{{ st.label }}</td><td>{{ num(st.p99_ms) }}</td>
<td>{{ num(st.wait_p99_ms) }}</td><td>{{ num(st.insert_p99_ms) }}</td>
<td>{{ count(st.batches) }}</td><td>{{ count(st.kafka_records) }}</td>
<td>{{ count(st.rows_final) }}</td><td>{{ count(st.collapsed) }}</td><td>{{ st.state }}</td></tr>
{% endfor %}</table>{% endif %}
{% if r.feed_data and not r.feed_data.findings is defined %}<h2>Feed data legitimacy</h2>
<p>not checked: {{ r.feed_data.error }}</p>{% endif %}
{% if r.feed_data and r.feed_data.findings is defined %}<h2>Feed data legitimacy</h2>
<p><span class="v {{ r.feed_data.verdict }}">{{ r.feed_data.verdict | upper }}</span>
{{ r.feed_data.source }} ({{ count(r.feed_data.trades) }} trades,
{{ count(r.feed_data.quotes) }} quotes, {{ r.feed_data.symbols }} symbols)</p>
<table><tr><th>check</th><th>severity</th><th>finding</th><th>threshold source</th></tr>
{% for f in r.feed_data.findings %}<tr><td>{{ f.check }}</td><td>{{ f.severity }}</td>
<td>{{ f.summary }}</td><td>{{ f.source }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Sign-off</h2>
<table>{% for k, v in r.signoff %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
</table>
</body></html>
"""
)


def render_html(report: Report) -> str:
    """report.html: self-contained, the plots embedded as PNG data URIs."""
    images = [
        (path.stem, "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode())
        for path in report.plots
    ]
    return _HTML.render(r=report, result=overall(report), images=images, num=_num, count=_count)


def write_report(run_dir: Path, plots: bool = True) -> tuple[Path, Path]:
    """Write report.md and report.html into `run_dir` (with `plots`, first every plot into
    plots/ from the run's files); their paths."""
    notes: list[str] = []
    if plots:
        _, notes = draw_plots(run_dir, load_summary(run_dir))
    report = build_report(run_dir)
    report.plot_notes = notes
    markdown = run_dir / REPORT_MD
    html = run_dir / REPORT_HTML
    markdown.write_text(render_markdown(report, run_dir))
    html.write_text(render_html(report))
    return markdown, html
