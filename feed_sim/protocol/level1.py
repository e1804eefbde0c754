"""Level 1 (port 5009) per-symbol state. Its messages are rendered by
`feed_sim.protocol.level1_render` (`Q`/`P`/`R`/`C`/`N`/`n`/`E`) and
`feed_sim.protocol.fundamentals` (`F`).

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

from typing import Any

from feed_sim.protocol.fields import (
    FIELD_INDEX,
    UPDATE_FIELD_NAMES,
)
from feed_sim.protocol.stale_fields import (
    STALE_ALL,
    STALE_ASK_CHANGE,
    STALE_BID_CHANGE,
    STALE_EXTENDED,
    STALE_LAST,
    STALE_SPREAD,
    STALE_TRADES,
    STALE_VOLUME,
)
from feed_sim.protocol.timefmt import (
    wire_time,
    wire_time_texts,
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
