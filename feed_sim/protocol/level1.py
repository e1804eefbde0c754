"""Level 1 (port 5009) per-symbol state and the `Q`/`P`/`F`/`R`/`C`/`N`/`n`/`E` renderers.

`Level1State` keeps, besides the raw numbers, the wire text of all 70 update fields in
`values` (slot = position in `fields.UPDATE_FIELD_NAMES`). Each trade or quote reformats only
the slots it changes, once, however many connections watch the symbol; rendering a `Q` line is
then one `itemgetter` over that list and a join (`Fieldset.render`).

Semantics chosen where the reference is silent (all INFERRED): Last/High/Low/Open/Tick/Change
follow last-qualified trades (basis C) only; Extended Trade follows C and E trades; Most Recent
Trade follows every trade; Total Volume, Number of Trades Today and VWAP count every trade; Tick
compares with the previous last-qualified price (the Close before the first one); Bid/Ask
Change are the change from the previous bid/ask; Extended Trading Change = Extended Trade -
Close, Extended Trading Difference = Extended Trade - Last; Percent Change and Percent Off
Average Volume use two decimals.

IQConnect sends a Level 1 update when something changed; its Message Contents names what (a
trade C/E/O, a bid b, an ask a, ... iqfeed-protocol.md §2.4; DTN leaves it empty only when the
fields that changed are neither trade- nor quote-related). So a quote that changes nothing on
the top of book (bid, ask, their sizes and market centers all as they are) is no update:
`apply_quote` / `apply_quote_wire` return '' and take no TickID and touch no field, and the
caller sends nothing. A trade always is one (it carries its C/E/O code and time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import Any

from feed_sim.protocol.fields import (
    FIELD_INDEX,
    UPDATE_FIELD_NAMES,
    Fieldset,
    fundamental_field_names,
)
from feed_sim.protocol.timefmt import (
    clientstats_time,
    hhmmss,
    hhmmss_micro,
    level1_trade_texts,
    mmddyyyy,
)

_I = FIELD_INDEX
I_SYMBOL = _I["Symbol"]
I_EXCHANGE_ID = _I["Exchange ID"]
I_LAST = _I["Last"]
I_CHANGE = _I["Change"]
I_PERCENT_CHANGE = _I["Percent Change"]
I_TOTAL_VOLUME = _I["Total Volume"]
I_HIGH = _I["High"]
I_LOW = _I["Low"]
I_BID = _I["Bid"]
I_ASK = _I["Ask"]
I_BID_SIZE = _I["Bid Size"]
I_ASK_SIZE = _I["Ask Size"]
I_TICK = _I["Tick"]
I_RANGE = _I["Range"]
I_OPEN = _I["Open"]
I_CLOSE = _I["Close"]
I_SPREAD = _I["Spread"]
I_DELAY = _I["Delay"]
I_RESTRICTED = _I["Restricted Code"]
I_EXT_CHANGE = _I["Extended Trading Change"]
I_EXT_DIFFERENCE = _I["Extended Trading Difference"]
I_PE = _I["Price-Earnings Ratio"]
I_PCT_OFF_AVG_VOLUME = _I["Percent Off Average Volume"]
I_BID_CHANGE = _I["Bid Change"]
I_ASK_CHANGE = _I["Ask Change"]
I_CHANGE_FROM_OPEN = _I["Change From Open"]
I_FRACTION_CODE = _I["Fraction Display Code"]
I_PRECISION = _I["Decimal Precision"]
I_PREV_DAY_VOLUME = _I["Previous Day Volume"]
I_TRADES_TODAY = _I["Number of Trades Today"]
I_VWAP = _I["VWAP"]
I_TICK_ID = _I["TickID"]
I_BID_MC = _I["Bid Market Center"]
I_ASK_MC = _I["Ask Market Center"]
I_LAST_SIZE = _I["Last Size"]
I_LAST_TIME = _I["Last Time"]
I_LAST_MC = _I["Last Market Center"]
I_MRT = _I["Most Recent Trade"]
I_MRT_SIZE = _I["Most Recent Trade Size"]
I_MRT_TIME = _I["Most Recent Trade Time"]
I_MRT_CONDITIONS = _I["Most Recent Trade Conditions"]
I_MRT_MC = _I["Most Recent Trade Market Center"]
I_EXT = _I["Extended Trade"]
I_EXT_SIZE = _I["Extended Trade Size"]
I_EXT_TIME = _I["Extended Trade Time"]
I_EXT_MC = _I["Extended Trade Market Center"]
I_CONTENTS = _I["Message Contents"]
I_ASK_TIME = _I["Ask Time"]
I_BID_TIME = _I["Bid Time"]
I_LAST_DATE = _I["Last Date"]
I_EXT_DATE = _I["Extended Trade Date"]
I_MRT_DATE = _I["Most Recent Trade Date"]
I_AGGRESSOR = _I["Most Recent Trade Aggressor"]
I_DAY_CODE = _I["Most Recent Trade Day Code"]

TICK_UP = "173"
TICK_DOWN = "175"
TICK_UNCHANGED = "183"


# Derived-field groups of `Level1State`: a bit per group, set by apply_* (the group is stale)
# and cleared by `sync` (its wire texts recomputed from the numeric state).
STALE_LAST = 1  # Range, Change From Open, Change, Percent Change (last-qualified trades)
STALE_EXTENDED = 2  # Extended Trading Change / Difference (C and E trades)
STALE_VOLUME = 4  # Total Volume, VWAP, Percent Off Average Volume (trades with size)
STALE_TRADES = 8  # Number of Trades Today
STALE_SPREAD = 16  # Spread
STALE_BID_CHANGE = 32
STALE_ASK_CHANGE = 64
STALE_ALL = 127
_STALE_SLOTS = {
    STALE_LAST: (I_RANGE, I_CHANGE_FROM_OPEN, I_CHANGE, I_PERCENT_CHANGE),
    STALE_EXTENDED: (I_EXT_CHANGE, I_EXT_DIFFERENCE),
    STALE_VOLUME: (I_TOTAL_VOLUME, I_VWAP, I_PCT_OFF_AVG_VOLUME),
    STALE_TRADES: (I_TRADES_TODAY,),
    STALE_SPREAD: (I_SPREAD,),
    STALE_BID_CHANGE: (I_BID_CHANGE,),
    STALE_ASK_CHANGE: (I_ASK_CHANGE,),
}
_masks: dict[int, tuple[Fieldset, int]] = {}


def stale_mask(fieldset: Fieldset) -> int:
    """The derived-field groups `fieldset` shows (cached per Fieldset object)."""
    found = _masks.get(id(fieldset))
    if found is not None and found[0] is fieldset:
        return found[1]
    indexes = set(fieldset.indexes)
    mask = 0
    for bit, slots in _STALE_SLOTS.items():
        if indexes.intersection(slots):
            mask |= bit
    if len(_masks) > 4096:
        _masks.clear()
    _masks[id(fieldset)] = (fieldset, mask)  # holds the Fieldset: its id is not reused
    return mask


class _SecondTexts:
    """Cache of `wire_time_texts`: the texts of one second since the epoch."""

    second = -1
    prefix = ""  # 'HH:MM:SS.'
    date = ""
    day_code = ""


def wire_time_texts(ts_ns: int) -> tuple[str, str, str]:
    """`level1_trade_texts(ts_ns)` with the second's texts cached: only the microseconds are
    formatted per call (the US/Eastern offset is a whole number of seconds)."""
    cache = _SecondTexts
    if ts_ns // 1_000_000_000 != cache.second:
        time_text, cache.date, cache.day_code = level1_trade_texts(ts_ns)
        cache.prefix = time_text[:9]
        cache.second = ts_ns // 1_000_000_000
    return f"{cache.prefix}{(ts_ns // 1_000) % 1_000_000:06d}", cache.date, cache.day_code


def wire_time(ts_ns: int) -> str:
    """`hhmmss_micro(ts_ns)`, cached per second like `wire_time_texts`."""
    cache = _SecondTexts
    if ts_ns // 1_000_000_000 != cache.second:
        wire_time_texts(ts_ns)
    return f"{cache.prefix}{(ts_ns // 1_000) % 1_000_000:06d}"


Level1Wire = tuple[Any, ...]
"""One trade or quote with its wire texts already formatted in the state's precision, as
`Level1State.apply_trade_wire` / `apply_quote_wire` take it (22 items, the same layout for
both kinds so a chunk of them is built by one `zip` over columns):

    (is_trade, price, bid, ask, price text, bid text, ask text,
     size, bid size, ask size, size text, bid size text, ask size text,
     market center, bid market center, ask market center, and their three texts,
     conditions, trade code C/E/O, aggressor text)

A trade uses price, size, market center, conditions, code and aggressor, plus bid/ask (None:
no NBBO carried); a quote uses the bid/ask items (market centers None: unchanged)."""


class Level1State:
    """Mutable top-of-book and trade state of one symbol, with its wire texts in `values`.

    Derived fields (Change, Range, VWAP, Spread, Bid/Ask Change, ...) are kept as stale-group
    bits and formatted by `sync`. By default (`lazy=False`) every apply syncs at once, so
    `values` is always complete. A lazy state (the simulator's markets) formats them only when
    a fieldset that shows them is rendered: `render_update` syncs the groups its fieldset
    needs, `render_summary` and `copy.copy` sync everything; direct readers of `values` on a
    lazy state call `sync()` first. The texts are the same either way: a group is computed
    from the numeric state, which only trades and quotes change between two syncs (the Close
    is changed only after a full sync).
    """

    __slots__ = (
        "_ask_delta",
        "_bid_delta",
        "_pfmt",
        "_stale",
        "ask",
        "ask_mc",
        "ask_size",
        "average_volume",
        "bid",
        "bid_mc",
        "bid_size",
        "close",
        "extended",
        "high",
        "last",
        "lazy",
        "low",
        "most_recent",
        "next_tick_id",
        "open",
        "precision",
        "symbol",
        "total_volume",
        "trades_today",
        "values",
        "vwap_notional",
    )

    def __init__(
        self,
        symbol: str,
        *,
        precision: int = 4,
        exchange_id: int = 5,
        close: float | None = None,
        prev_day_volume: int | None = None,
        average_volume: int | None = None,
        pe: float | None = None,
        fraction_display_code: int = 14,
        restricted: str = "N",
        lazy: bool = False,
    ) -> None:
        self.symbol = symbol
        self.precision = precision
        self.lazy = lazy
        self._stale = 0
        self._bid_delta = 0.0
        self._ask_delta = 0.0
        self._pfmt = f"%.{precision}f"
        self.values: list[str] = [""] * len(UPDATE_FIELD_NAMES)
        v = self.values
        v[I_SYMBOL] = symbol
        v[I_EXCHANGE_ID] = format(exchange_id, "X")
        v[I_DELAY] = "0"
        v[I_RESTRICTED] = restricted
        v[I_FRACTION_CODE] = str(fraction_display_code)
        v[I_PRECISION] = str(precision)
        v[I_PE] = "" if pe is None else f"{pe:.2f}"
        v[I_PREV_DAY_VOLUME] = "" if prev_day_volume is None else str(prev_day_volume)
        self.average_volume = average_volume
        self.close = close
        v[I_CLOSE] = self._price(close)
        self.bid: float | None = None
        self.ask: float | None = None
        self.bid_size = 0
        self.ask_size = 0
        self.bid_mc = 0
        self.ask_mc = 0
        self.last: float | None = None
        self.most_recent: float | None = None
        self.extended: float | None = None
        self.next_tick_id = 1
        self._reset_day_values()

    def __copy__(self) -> Level1State:
        """A synced, eager snapshot (flat out renders its rings straight from `values`)."""
        self.sync()
        clone = Level1State.__new__(Level1State)
        for name in Level1State.__slots__:
            setattr(clone, name, getattr(self, name))
        clone.lazy = False
        return clone

    def _reset_day_values(self) -> None:
        """Clear the session fields (open/high/low, volume, trade counts, VWAP)."""
        self.open: float | None = None
        self.high: float | None = None
        self.low: float | None = None
        self.total_volume = 0
        self.trades_today = 0
        self.vwap_notional = 0.0
        v = self.values
        for slot in (I_OPEN, I_HIGH, I_LOW, I_RANGE, I_CHANGE_FROM_OPEN, I_VWAP):
            v[slot] = ""
        v[I_TOTAL_VOLUME] = "0"
        v[I_TRADES_TODAY] = "0"
        v[I_PCT_OFF_AVG_VOLUME] = ""

    def _price(self, price: float | None) -> str:
        return "" if price is None else self._pfmt % price

    def _take_tick_id(self, tick_id: int | None) -> str:
        if tick_id is None:
            tick_id = self.next_tick_id
        self.next_tick_id = tick_id + 1
        return str(tick_id)

    @property
    def message_contents(self) -> str:
        """The `Message Contents` code string of the latest update (§2.4)."""
        return self.values[I_CONTENTS]

    @message_contents.setter
    def message_contents(self, codes: str) -> None:
        self.values[I_CONTENTS] = codes

    def sync(self, mask: int = STALE_ALL) -> None:
        """Format the stale derived fields of the groups in `mask` (all by default)."""
        stale = self._stale & mask
        if not stale:
            return
        self._stale ^= stale
        v = self.values
        pf = self._pfmt
        if stale & STALE_LAST and self.last is not None:
            last = self.last
            if self.high is not None and self.low is not None:
                v[I_RANGE] = pf % (self.high - self.low)
            if self.open is not None:
                v[I_CHANGE_FROM_OPEN] = pf % (last - self.open)
            if self.close:
                change = last - self.close
                v[I_CHANGE] = pf % change
                v[I_PERCENT_CHANGE] = f"{100.0 * change / self.close:.2f}"
        if stale & STALE_EXTENDED and self.extended is not None:
            if self.close is not None:
                v[I_EXT_CHANGE] = pf % (self.extended - self.close)
            if self.last is not None:
                v[I_EXT_DIFFERENCE] = pf % (self.extended - self.last)
        if stale & STALE_VOLUME:
            v[I_TOTAL_VOLUME] = str(self.total_volume)
            if self.total_volume:
                v[I_VWAP] = pf % (self.vwap_notional / self.total_volume)
                if self.average_volume:
                    pct = 100.0 * self.total_volume / self.average_volume
                    v[I_PCT_OFF_AVG_VOLUME] = f"{pct:.2f}"
        if stale & STALE_TRADES:
            v[I_TRADES_TODAY] = str(self.trades_today)
        if stale & STALE_SPREAD and self.bid is not None and self.ask is not None:
            v[I_SPREAD] = pf % (self.ask - self.bid)
        if stale & STALE_BID_CHANGE:
            v[I_BID_CHANGE] = pf % self._bid_delta
        if stale & STALE_ASK_CHANGE:
            v[I_ASK_CHANGE] = pf % self._ask_delta

    def reset_session(self, *, close: float | None, prev_day_volume: int | None = None) -> None:
        """Start a new trading day: new Close (the prior day's), cleared session fields."""
        self.sync()
        if prev_day_volume is not None:
            self.values[I_PREV_DAY_VOLUME] = str(prev_day_volume)
        self.close = close
        self.values[I_CLOSE] = self._price(close)
        self._reset_day_values()

    def set_close(self, price: float) -> str:
        """Record an official close; returns the message contents ('c')."""
        self.sync()
        self.close = price
        self.values[I_CLOSE] = self._pfmt % price
        self.values[I_CONTENTS] = "c"
        return "c"

    def apply_trade(
        self,
        ts_ns: int,
        price: float,
        size: int,
        market_center: int,
        conditions: str,
        basis: str = "C",
        aggressor: int = 0,
        tick_id: int | None = None,
        *,
        bid: float | None = None,
        ask: float | None = None,
    ) -> str:
        """Apply one trade (basis C last-qualified, E Form T, O other); returns the contents.

        `bid`/`ask` (the NBBO carried with the trade) add `b`/`a` when they changed.
        """
        pf = self._pfmt
        trade = (
            True,
            price,
            bid,
            ask,
            pf % price,
            "" if bid is None else pf % bid,
            "" if ask is None else pf % ask,
            size,
            0,
            0,
            str(size),
            "",
            "",
            market_center,
            None,
            None,
            str(market_center),
            "",
            "",
            conditions,
            basis if basis in ("C", "E") else "O",
            str(aggressor),
        )
        return self.apply_trade_wire(ts_ns, trade, tick_id)

    def apply_trade_wire(self, ts_ns: int, trade: Level1Wire, tick_id: int | None = None) -> str:
        """`apply_trade` with the event's texts already formatted (the replay hot path)."""
        (
            _,
            price,
            bid,
            ask,
            price_text,
            bid_text,
            ask_text,
            size,
            _,
            _,
            size_text,
            _,
            _,
            _,
            _,
            _,
            mc_text,
            _,
            _,
            conditions,
            code,
            aggr,
        ) = trade
        v = self.values
        time_text, date_text, day_code = wire_time_texts(ts_ns)
        codes: str = code
        stale = self._stale | STALE_TRADES
        if bid is not None:
            stale |= STALE_SPREAD
            if bid != self.bid:
                self.bid = bid
                v[I_BID] = bid_text
                v[I_BID_TIME] = time_text
                codes += "b"
        if ask is not None:
            stale |= STALE_SPREAD
            if ask != self.ask:
                self.ask = ask
                v[I_ASK] = ask_text
                v[I_ASK_TIME] = time_text
                codes += "a"

        self.most_recent = price
        v[I_MRT] = price_text
        v[I_MRT_SIZE] = size_text
        v[I_MRT_TIME] = time_text
        v[I_MRT_CONDITIONS] = conditions
        v[I_MRT_MC] = mc_text
        v[I_MRT_DATE] = date_text
        v[I_AGGRESSOR] = aggr
        v[I_DAY_CODE] = day_code
        if tick_id is None:
            tick_id = self.next_tick_id
        self.next_tick_id = tick_id + 1
        v[I_TICK_ID] = str(tick_id)

        if code != "O":
            self.extended = price
            v[I_EXT] = price_text
            v[I_EXT_SIZE] = size_text
            v[I_EXT_TIME] = time_text
            v[I_EXT_MC] = mc_text
            v[I_EXT_DATE] = date_text
            stale |= STALE_EXTENDED
            if code == "C":
                # Last-qualified: Last*, Tick, Open/High/Low (and the changes derived from them).
                reference = self.last if self.last is not None else self.close
                if reference is not None:
                    v[I_TICK] = (
                        TICK_UP
                        if price > reference
                        else TICK_DOWN
                        if price < reference
                        else TICK_UNCHANGED
                    )
                self.last = price
                v[I_LAST] = price_text
                v[I_LAST_SIZE] = size_text
                v[I_LAST_TIME] = time_text
                v[I_LAST_MC] = mc_text
                v[I_LAST_DATE] = date_text
                if self.open is None:
                    self.open = price
                    v[I_OPEN] = price_text
                    codes += "o"
                if self.high is None or price > self.high:
                    self.high = price
                    v[I_HIGH] = price_text
                    codes += "h"
                if self.low is None or price < self.low:
                    self.low = price
                    v[I_LOW] = price_text
                    codes += "l"
                stale |= STALE_LAST

        if size > 0:
            self.total_volume += size
            self.vwap_notional += price * size
            stale |= STALE_VOLUME
            codes += "v"
        self.trades_today += 1
        v[I_CONTENTS] = codes
        self._stale = stale
        if not self.lazy:
            self.sync()
        return codes

    def apply_quote(
        self,
        ts_ns: int,
        bid: float,
        bid_size: int,
        ask: float,
        ask_size: int,
        bid_mc: int | None = None,
        ask_mc: int | None = None,
        tick_id: int | None = None,
    ) -> str:
        """Apply a top-of-book quote; returns the contents ('b', 'a' or 'ba').

        '' if it changes nothing: no update to send, so no TickID is taken and no field is
        written (not even Message Contents or TickID: `values` still hold the last update)."""
        pf = self._pfmt
        quote = (
            False,
            None,
            bid,
            ask,
            "",
            pf % bid,
            pf % ask,
            0,
            bid_size,
            ask_size,
            "",
            str(bid_size),
            str(ask_size),
            None,
            bid_mc,
            ask_mc,
            "",
            "" if bid_mc is None else str(bid_mc),
            "" if ask_mc is None else str(ask_mc),
            "",
            "C",
            "",
        )
        return self.apply_quote_wire(ts_ns, quote, tick_id)

    def apply_quote_wire(self, ts_ns: int, quote: Level1Wire, tick_id: int | None = None) -> str:
        """`apply_quote` with the event's texts already formatted (the replay hot path)."""
        (
            _,
            _,
            bid,
            ask,
            _,
            bid_text,
            ask_text,
            _,
            bid_size,
            ask_size,
            _,
            bid_size_text,
            ask_size_text,
            _,
            bid_mc,
            ask_mc,
            _,
            bid_mc_text,
            ask_mc_text,
            _,
            _,
            _,
        ) = quote
        v = self.values
        codes = ""
        time_text = ""
        if bid_mc is None:
            bid_mc = self.bid_mc
            bid_mc_text = str(bid_mc)
        if ask_mc is None:
            ask_mc = self.ask_mc
            ask_mc_text = str(ask_mc)
        stale = self._stale
        if bid != self.bid or bid_size != self.bid_size or bid_mc != self.bid_mc:
            time_text = wire_time(ts_ns)
            if self.bid is not None:
                self._bid_delta = bid - self.bid
                stale |= STALE_BID_CHANGE
            self.bid, self.bid_size, self.bid_mc = bid, bid_size, bid_mc
            v[I_BID] = bid_text
            v[I_BID_SIZE] = bid_size_text
            v[I_BID_MC] = bid_mc_text
            v[I_BID_TIME] = time_text
            codes = "b"
        if ask != self.ask or ask_size != self.ask_size or ask_mc != self.ask_mc:
            if not time_text:
                time_text = wire_time(ts_ns)
            if self.ask is not None:
                self._ask_delta = ask - self.ask
                stale |= STALE_ASK_CHANGE
            self.ask, self.ask_size, self.ask_mc = ask, ask_size, ask_mc
            v[I_ASK] = ask_text
            v[I_ASK_SIZE] = ask_size_text
            v[I_ASK_MC] = ask_mc_text
            v[I_ASK_TIME] = time_text
            codes += "a"
        if not codes:
            return ""  # nothing changed: no update (IQConnect sends on change), no TickID
        if tick_id is None:
            tick_id = self.next_tick_id
        self.next_tick_id = tick_id + 1
        v[I_TICK_ID] = str(tick_id)
        v[I_CONTENTS] = codes
        self._stale = stale | STALE_SPREAD
        if not self.lazy:
            self.sync()
        return codes


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


@dataclass(frozen=True, slots=True)
class FundamentalInfo:
    """Data of a symbol's `F` message. None/"" render as empty fields.

    Formats follow the MSFT fixtures: prices use `precision` decimals, PE/ratios compact
    ('65.6'), EPS/yields/beta/volatility two decimals, institutions three, balance-sheet
    amounts one; dates MM/DD/YYYY; session times HH:MM:SS.
    """

    symbol: str
    company_name: str = ""
    exchange_id: int = 5
    listed_market: int = 5
    security_type: int = 1
    precision: int = 4
    format_code: str = "14"
    pe: float | None = None
    average_volume: int | None = None
    high_52w: float | None = None
    low_52w: float | None = None
    calendar_year_high: float | None = None
    calendar_year_low: float | None = None
    dividend_yield: float | None = None
    dividend_amount: float | None = None
    dividend_rate: float | None = None
    pay_date: date | None = None
    ex_dividend_date: date | None = None
    current_year_eps: float | None = None
    next_year_eps: float | None = None
    five_year_growth_pct: float | None = None
    fiscal_year_end: int | None = None
    root_option_symbols: str = ""
    percent_held_by_institutions: float | None = None
    beta: float | None = None
    leaps: str = ""
    current_assets: float | None = None
    current_liabilities: float | None = None
    balance_sheet_date: date | None = None
    long_term_debt: float | None = None
    common_shares_outstanding: int | None = None
    split_factor_1: str = ""
    split_factor_2: str = ""
    sic: int | None = None
    historical_volatility: float | None = None
    high_52w_date: date | None = None
    low_52w_date: date | None = None
    calendar_year_high_date: date | None = None
    calendar_year_low_date: date | None = None
    year_end_close: float | None = None
    maturity_date: date | None = None
    coupon_rate: float | None = None
    expiration_date: date | None = None
    strike_price: float | None = None
    naics: int | None = None
    exchange_root: str = ""
    option_premium_multiplier: float | None = None
    option_multiple_deliverable: int | None = None
    session_open_time: time | None = None
    session_close_time: time | None = None
    base_currency: str = ""
    contract_size: float | None = None
    contract_months: str = ""
    minimum_tick_size: float | None = None
    first_delivery_date: date | None = None
    figi: str = ""
    security_subtype: int | None = None
    short_interest: int | None = None  # 6.0 layout only
    market_center: int | None = None  # 6.0 layout only

    def wire_values(self) -> dict[str, str]:
        """Field name -> wire text, for every name of both layouts."""
        price = f"%.{self.precision}f"

        def p(x: float | None) -> str:
            return "" if x is None else price % x

        def fixed(x: float | None, digits: int) -> str:
            return "" if x is None else f"{x:.{digits}f}"

        def compact(x: float | None) -> str:
            return "" if x is None else f"{x:.6f}".rstrip("0").rstrip(".")

        def i(x: int | None) -> str:
            return "" if x is None else str(x)

        def d(x: date | None) -> str:
            return "" if x is None else f"{x.month:02d}/{x.day:02d}/{x.year:04d}"

        def t(x: time | None) -> str:
            return "" if x is None else x.strftime("%H:%M:%S")

        fiscal = "" if self.fiscal_year_end is None else f"{self.fiscal_year_end:02d}"
        return {
            "Symbol": self.symbol,
            "Exchange ID": format(self.exchange_id, "X"),
            "PE": compact(self.pe),
            "Average Volume": i(self.average_volume),
            "52 Week High": p(self.high_52w),
            "52 Week Low": p(self.low_52w),
            "Calendar Year High": p(self.calendar_year_high),
            "Calendar Year Low": p(self.calendar_year_low),
            "Dividend Yield": fixed(self.dividend_yield, 2),
            "Dividend Amount": fixed(self.dividend_amount, 2),
            "Dividend Rate": fixed(self.dividend_rate, 2),
            "Pay Date": d(self.pay_date),
            "Ex-dividend Date": d(self.ex_dividend_date),
            "Short Interest": i(self.short_interest),
            "Current Year EPS": fixed(self.current_year_eps, 2),
            "Next Year EPS": fixed(self.next_year_eps, 2),
            "Five-year Growth Percentage": fixed(self.five_year_growth_pct, 2),
            "Fiscal Year End": fiscal,
            "Company Name": self.company_name,
            "Root Option Symbol": self.root_option_symbols,
            "Percent Held By Institutions": fixed(self.percent_held_by_institutions, 3),
            "Beta": fixed(self.beta, 2),
            "Leaps": self.leaps,
            "Current Assets": fixed(self.current_assets, 1),
            "Current Liabilities": fixed(self.current_liabilities, 1),
            "Balance Sheet Date": d(self.balance_sheet_date),
            "Long-term Debt": fixed(self.long_term_debt, 1),
            "Common Shares Outstanding": i(self.common_shares_outstanding),
            "Split Factor 1": self.split_factor_1,
            "Split Factor 2": self.split_factor_2,
            "Market Center": i(self.market_center),
            "Format Code": self.format_code,
            "Precision": str(self.precision),
            "SIC": i(self.sic),
            "Historical Volatility": fixed(self.historical_volatility, 2),
            "Security Type": str(self.security_type),
            "Listed Market": str(self.listed_market),
            "52 Week High Date": d(self.high_52w_date),
            "52 Week Low Date": d(self.low_52w_date),
            "Calendar Year High Date": d(self.calendar_year_high_date),
            "Calendar Year Low Date": d(self.calendar_year_low_date),
            "Year End Close": p(self.year_end_close),
            "Maturity Date": d(self.maturity_date),
            "Coupon Rate": compact(self.coupon_rate),
            "Expiration Date": d(self.expiration_date),
            "Strike Price": p(self.strike_price),
            "NAICS": i(self.naics),
            "Exchange Root": self.exchange_root,
            "Option Premium Multiplier": compact(self.option_premium_multiplier),
            "Option Multiple Deliverable": i(self.option_multiple_deliverable),
            "Session Open Time": t(self.session_open_time),
            "Session Close Time": t(self.session_close_time),
            "Base Currency": self.base_currency,
            "Contract Size": compact(self.contract_size),
            "Contract Months": self.contract_months,
            "Minimum Tick Size": compact(self.minimum_tick_size),
            "First Delivery Date": d(self.first_delivery_date),
            "FIGI": self.figi,
            "Security SubType": i(self.security_subtype),
        }


def render_fundamental(info: FundamentalInfo, protocol: str) -> bytes:
    """`F,<57 fields>,` in the protocol's layout ('(Reserved)' columns empty before 6.1)."""
    values = info.wire_values()
    row = ",".join(values.get(name, "") for name in fundamental_field_names(protocol))
    return f"F,{row},\r\n".encode("latin-1", "replace")
