"""Level 1 messages rendered for the wire: `Q` updates and `P` summaries from a symbol's
`Level1State` in a connection's fieldset, and the `n`, `E`, `R`, `C` and `N` lines."""

from __future__ import annotations

from feed_sim.protocol.fields import (
    Fieldset,
)
from feed_sim.protocol.level1 import Level1State
from feed_sim.protocol.stale_fields import stale_mask
from feed_sim.protocol.timefmt import (
    clientstats_time,
    hhmmss,
    hhmmss_micro,
    mmddyyyy,
)


def render_update(state: Level1State, fieldset: Fieldset) -> bytes:
    """`Q,<fields in the connection's fieldset order>,\\r\\n`."""
    if state._stale:
        state.sync(stale_mask(fieldset))
    return fieldset.render("Q", state.values)


def render_summary(state: Level1State, fieldset: Fieldset) -> bytes:
    """`P,...` summary (after a watch or `f`), same layout as `Q`."""
    state.sync()
    return fieldset.render("P", state.values)


def render_not_found(symbol: str) -> bytes:
    """`n,<SYMBOL>` (no trailing comma)."""
    return f"n,{symbol}\r\n".encode("latin-1", "replace")


def render_error(text: str) -> bytes:
    """`E,<text>,`."""
    return f"E,{text},\r\n".encode("latin-1", "replace")


def render_regional(
    symbol: str,
    bid: float | None,
    bid_size: int | None,
    bid_ns: int | None,
    ask: float | None,
    ask_size: int | None,
    ask_ns: int | None,
    market_center: int,
    *,
    precision: int = 4,
    fraction_display_code: int = 14,
    exchange: str = "",
    price_decimals: int | None = None,
) -> bytes:
    """`R,<sym>,<exch (deprecated)>,<bid>,<bidsize>,<HH:MM:SS>,<ask>,<asksize>,<HH:MM:SS>,
    <fraction display code>,<decimal precision>,<market center>,`.

    Prices use `price_decimals` digits (default: `precision`)."""
    fmt = f"%.{precision if price_decimals is None else price_decimals}f"

    def opt(value: object) -> str:
        return "" if value is None else str(value)

    return (
        f"R,{symbol},{exchange},{'' if bid is None else fmt % bid},{opt(bid_size)},"
        f"{'' if bid_ns is None else hhmmss(bid_ns)},{'' if ask is None else fmt % ask},"
        f"{opt(ask_size)},{'' if ask_ns is None else hhmmss(ask_ns)},{fraction_display_code},"
        f"{precision},{market_center},\r\n"
    ).encode("latin-1", "replace")


def render_correction(
    symbol: str,
    kind: str,
    ts_ns: int,
    price: float,
    size: int,
    tick_id: int,
    conditions: str,
    market_center: int,
    precision: int = 4,
) -> bytes:
    """6.2 trade correction `C,<sym>,<I|X>,<MM/DD/YYYY>,<HH:MM:SS.ffffff>,<price>,<size>,
    <tickid>,<conditions>,<mc>` with NO trailing comma, exactly as the C# fixture and the
    documented layout (INFERRED: no real capture exists; the other C# Level 1 fixtures keep
    their trailing commas, so this one is taken at face value)."""
    return (
        f"C,{symbol},{kind},{mmddyyyy(ts_ns)},{hhmmss_micro(ts_ns)},{price:.{precision}f},"
        f"{size},{tick_id},{conditions},{market_center}\r\n"
    ).encode("latin-1", "replace")


def render_news(
    distributor: str, story_id: str, symbols: list[str], ts_ns: int, headline: str
) -> bytes:
    """`N,<distributor>,<story id>,<SYM:SYM>,<YYYYMMDD HHMMSS>,<headline>,`."""
    return (
        f"N,{distributor},{story_id},{':'.join(symbols)},{clientstats_time(ts_ns)},{headline},\r\n"
    ).encode("latin-1", "replace")
