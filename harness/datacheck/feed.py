"""The data a run's feed_sim replays, for `harness run` to validate before stage 1.

- `source: generated`: the session feed_sim loaded, read from the generation cache it wrote
  (feed_sim/generate/cache.py; generated here with the same inputs if it is not there), as
  columns; a stratified sample of `SAMPLE_SYMBOLS` symbols is checked (every check is per
  symbol or needs only a few symbols; the whole 495-symbol session is ~15 million events);
- `source: tape` / `amplified`: the scenario's tape files (for `amplified`, the real sources
  feed_sim derives the symbols from at start).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from harness.datacheck.dataset import MarketData, Quotes, Trades, merge
from harness.datacheck.sources import load_source
from harness.scenario import Scenario

SAMPLE_SYMBOLS = 20


def generated_session(n_symbols: int, minutes: float, seed: int) -> MarketData:
    """A stratified sample of the generated session feed_sim serves for these inputs."""
    from feed_sim.generate import venues
    from feed_sim.generate.cache import CacheError, GenerationInputs, cache_path, read_session
    from feed_sim.generate.session import previous_trading_day
    from feed_sim.generate.universe import load_symbols, select_symbols

    specs = select_symbols(load_symbols(), n_symbols)
    inputs = GenerationInputs(tuple(specs), previous_trading_day(), seed, duration_s=minutes * 60)
    path = cache_path(inputs)
    note = f"generated session {inputs.day}, {n_symbols} symbols x {minutes:g} min, seed {seed}"
    try:
        days = read_session(path, inputs) if path.is_file() else list(inputs.generate())
    except CacheError:
        days = list(inputs.generate())
    sample = {s.symbol for s in select_symbols(specs, min(SAMPLE_SYMBOLS, len(specs)))}
    chosen = [d for d in days if d.symbol in sample]
    trades, quotes, makers = [], [], Counter[str]()
    for day in chosen:
        t, q = day.trades, day.quotes
        conditions = np.asarray(venues.CONDITIONS, dtype=np.str_)[t.condition]
        basis = np.asarray(venues.BASIS, dtype=np.str_)[t.condition]
        symbol = np.full(t.ts.size, day.symbol)
        ints = [c.astype(np.int64) for c in (t.ts, t.size, t.center, t.aggressor)]
        trades.append(Trades(ints[0], symbol, t.price, ints[1], ints[2], conditions, basis,
                             ints[3], t.bid, t.ask))  # fmt: skip
        quotes.append(Quotes(q.ts.astype(np.int64), np.full(q.ts.size, day.symbol), q.bid, q.ask))
        if day.depth is not None:
            rows = np.bincount(day.depth.row, minlength=len(day.depth.mmids))
            makers.update({m: int(n) for m, n in zip(day.depth.mmids, rows, strict=True) if n})
    parts = [MarketData("", t, q) for t, q in zip(trades, quotes, strict=True)]
    merged = merge(parts, f"{note} ({len(chosen)} symbols sampled)")
    return MarketData(merged.source, merged.trades, merged.quotes, makers)


def feed_market_data(scenario: Scenario) -> MarketData:
    """What the scenario's feed replays (see the module's docstring)."""
    feed = scenario.feed
    if feed.source == "generated":
        n = min(495, max(s.symbols for s in scenario.stages))
        return generated_session(n, feed.generated.minutes, feed.generated.seed)
    parts = [load_source(str(scenario.resolve(t)), kind="tape") for t in feed.tapes]
    names = ", ".join(str(t) for t in feed.tapes)
    return merge(parts, f"{feed.source} feed from {names}")


class FeedRefused(Exception):
    """--require-real-data and the feed is not real market data (exit 3 of `harness run`)."""


def check_run_feed(
    scenario: Scenario,
    tickers: list[str],
    summary: Any,
    console: Any,
    *,
    require_real_data: bool,
) -> None:
    """Check the data feed_sim replays before stage 1: the result goes into summary.json
    (`run.feed_data`) and the report; anything above info is a warning, or, with
    `require_real_data`, a refusal (FeedRefused; as is a generated feed)."""
    from harness.datacheck.dataset import DataSourceError
    from harness.datacheck.validate import default_context, validate

    with console.status("checking the feed data (harness validate-data)..."):
        try:
            data = feed_market_data(scenario)
        except DataSourceError as exc:
            summary.set_run_field("feed_data", {"verdict": "unchecked", "error": str(exc)})
            if require_real_data:
                raise FeedRefused(f"the feed data cannot be checked: {exc}") from exc
            console.print(f"[yellow]feed data not checked:[/] {exc}")
            return
        result = validate(data, default_context(tickers))
    summary.set_run_field("feed_data", result.to_json())
    raised = [f for f in result.findings if f.severity]
    line = f"feed data: {result.verdict.upper()} ({data.source})"
    console.print(line if not raised else f"[yellow]{line}[/]")
    for finding in raised:
        console.print(f"  {finding.severity}: {finding.check}: {finding.summary}")
    if not require_real_data:
        return
    if raised:
        raise FeedRefused(f"--require-real-data: the feed data is {result.verdict}")
    if scenario.feed.source == "generated":
        raise FeedRefused(
            "--require-real-data: the feed is generated by feed_sim (plausible, but not "
            "real); replay a recorded or converted tape (feed.source: tape)"
        )
