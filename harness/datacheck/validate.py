"""Run every legitimacy check over a source and say what it is: plausible, suspicious or
synthetic; as a terminal table, JSON and a Markdown section for the sign-off report.

The verdict is the worst finding's severity: any synthetic finding makes the data synthetic,
any suspicious one suspicious; only infos leave it plausible.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from harness.datacheck import microstructure
from harness.datacheck.checks import CHECKS, Check, Context, Finding, Severity, run_checks
from harness.datacheck.dataset import MarketData

ALL_CHECKS: tuple[Check, ...] = (
    *CHECKS,
    microstructure.intraday_moves,
    microstructure.lot_sizes,
    microstructure.burstiness,
    microstructure.intraday_shape,
    microstructure.sign_autocorrelation,
)
VERDICTS = {Severity.INFO: "plausible", Severity.SUSPICIOUS: "suspicious",
            Severity.SYNTHETIC: "synthetic"}  # fmt: skip


@dataclass(frozen=True)
class Validation:
    source: str
    trades: int
    quotes: int
    symbols: int
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()

    @property
    def severity(self) -> Severity:
        return max((f.severity for f in self.findings), default=Severity.INFO)

    @property
    def verdict(self) -> str:
        return VERDICTS[self.severity]

    @property
    def plausible(self) -> bool:
        return self.severity is Severity.INFO

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "verdict": self.verdict,
            "trades": self.trades,
            "quotes": self.quotes,
            "symbols": self.symbols,
            "notes": list(self.notes),
            "findings": [f.to_json() for f in self.findings],
        }


def default_context(universe: Collection[str] | None = None) -> Context:
    """The Nasdaq participant directory, the S&P 500 names of the configured universe (LULD
    tier 1) and, when given, the universe to check symbols against."""
    from feed_sim.generate.depth import mpid_directory
    from feed_sim.generate.universe import load_symbols

    sp500 = frozenset(s.symbol for s in load_symbols())
    return Context(
        mpids=mpid_directory(),
        universe=None if universe is None else frozenset(universe),
        sp500=sp500,
    )


def validate(data: MarketData, ctx: Context, checks: Sequence[Check] = ALL_CHECKS) -> Validation:
    return Validation(
        source=data.source,
        trades=len(data.trades),
        quotes=len(data.quote_columns()),
        symbols=len(data.symbols),
        findings=tuple(run_checks(data, ctx, checks)),
        notes=data.notes,
    )


SEVERITIES = {str(s): s for s in Severity}
STYLE = {Severity.INFO: "green", Severity.SUSPICIOUS: "yellow", Severity.SYNTHETIC: "bold red"}


def table(result: Validation) -> Table:
    """The findings as a rich table, worst first."""
    out = Table(title=f"{result.source}: {result.verdict.upper()}", title_justify="left")
    for column in ("check", "severity", "finding", "threshold source"):
        out.add_column(column, overflow="fold")
    for f in sorted(result.findings, key=lambda f: -f.severity):
        out.add_row(f.check, f"[{STYLE[f.severity]}]{f.severity}[/]", f.summary, f.source)
    return out


def markdown(result: Mapping[str, Any]) -> str:
    """A section for the sign-off report, from `Validation.to_json()` (as summary.json keeps
    it under `run.feed_data`)."""
    lines = [
        "## Feed data legitimacy",
        "",
        f"**{str(result['verdict']).upper()}**: {result['source']} ({result['trades']:,} trades, "
        f"{result['quotes']:,} quotes, {result['symbols']} symbols)",
        "",
        "| check | severity | finding | threshold source |",
        "|---|---|---|---|",
    ]
    for f in sorted(result["findings"], key=lambda f: -SEVERITIES[f["severity"]]):
        lines.append(f"| {f['check']} | {f['severity']} | {f['summary']} | {f['source']} |")
    lines += [f"- {note}" for note in result.get("notes") or []]
    return "\n".join(lines) + "\n"


def universe_tickers(path: Path | None) -> list[str]:
    """The tickers of a universe file (harness.symbols' schema)."""
    from harness.symbols import load_universe

    return load_universe(path, check=False).tickers()
