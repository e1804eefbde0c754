"""One asyncio protocol per client connection and port: its own protocol version, fieldset,
watches and output buffer (iqfeed-protocol.md §1-4).

Client input becomes commands in `CommandInput` (any of CR, LF, CRLF, LFCR at the end, or
none: the next command's start or an idle connection completes it; feed_sim.protocol.lines),
parsed into typed commands that never raise, and answered; unknown commands get the documented
error and never close the connection. Output is queued and written once per pacing batch; a
client whose unsent output exceeds the engine's bound is cut off and counted, so it cannot
stall the others.
"""

from __future__ import annotations

import asyncio
import logging
import typing
from typing import TYPE_CHECKING

from feed_sim.protocol import commands as cmd
from feed_sim.protocol.codes import market_participants
from feed_sim.protocol.fields import DEFAULT_FIELDSET, Fieldset, update_field_names
from feed_sim.protocol.fields import fundamental_field_names as fundamental_names
from feed_sim.protocol.fundamentals import render_fundamental
from feed_sim.protocol.level1_render import render_not_found, render_regional, render_summary
from feed_sim.protocol.level2 import (
    MM_SUMMARY,
    MM_UPDATE,
    ORDER_SUMMARY,
    PRICE_LEVEL_SUMMARY,
    PRICE_LEVEL_UPDATE,
    DepthChange,
    PriceLevel,
    render_market_maker,
    render_market_maker_name,
    render_no_depth,
    render_order,
    render_price_level,
    render_price_level_delete,
)
from feed_sim.protocol.level2 import render_not_found as render_depth_not_found
from feed_sim.protocol.system import (
    DEFAULT_PROTOCOL,
    CustomerInfo,
    Protocol,
    render_autoconnect,
    render_current_log_levels,
    render_current_loginid,
    render_current_password,
    render_current_protocol,
    render_current_update_fieldnames,
    render_cust,
    render_fundamental_fieldnames,
    render_ip,
    render_key,
    render_login_info_saved,
    render_register_client_app_completed,
    render_remove_client_app_completed,
    render_server_connected,
    render_server_disconnected,
    render_symbol_limit_reached,
    render_timestamp,
    render_update_fieldnames,
    render_watches,
)
from feed_sim.server.command_input import CommandInput

if TYPE_CHECKING:
    from feed_sim.server.engine import FeedEngine
    from feed_sim.server.market import SymbolMarket
    from feed_sim.server.symbol_events import DepthEventRow

log = logging.getLogger(__name__)


class ServerIdentity(typing.Protocol):
    """What a Level 1 client is told about the server it reached (S,IP)."""

    dtn_server_ip: str
    dtn_server_port: int


class SessionHost(typing.Protocol):
    """The server as its sessions see it (`feed_sim.server.app.FeedSimServer`)."""

    engine: FeedEngine
    handler_errors: int
    login_id: str

    @property
    def config(self) -> ServerIdentity: ...

    def next_client_id(self, port_name: str) -> int: ...

    def render_stats(self) -> bytes: ...


class Session(asyncio.Protocol):
    """Shared plumbing of every port: lines in, queued bytes out, per-client state."""

    port_name = "session"
    client_type = 0

    def __init__(self, server: SessionHost) -> None:
        self.server = server
        self.engine = server.engine
        self.transport: asyncio.Transport | None = None
        self.input = CommandInput(self.port_name, self._deliver)
        self.protocol: Protocol = DEFAULT_PROTOCOL
        self.client_name = ""
        self.timestamps_on = True
        self.fieldset: Fieldset = DEFAULT_FIELDSET
        self.connected_ns = self.engine.clock_ns()
        self.bytes_in = 0
        self.bytes_out = 0
        self.client_id = server.next_client_id(self.port_name)
        self._pending: list[bytes] = []
        self._closed = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.engine.register(self)
        self.greet()
        self.flush()

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self.input.feed(data)

    def eof_received(self) -> bool | None:
        self.input.end()  # a last command without a terminator
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.input.close()
        self.engine.unregister(self)

    def _deliver(self, lines: list[str]) -> None:
        """Handle complete client commands, then write what they queued."""
        for line in lines:
            try:
                self.handle(line)
            except Exception:  # a client line must never take the server down
                log.exception(
                    "%s client %s: error handling %r", self.port_name, self.client_id, line[:200]
                )
                self.server.handler_errors += 1
        self.flush()

    # -- output -------------------------------------------------------------------------------

    def queue(self, data: bytes) -> None:
        if not self._closed:
            self._pending.append(data)

    def flush(self) -> int:
        """Write what was queued; cut the client off when its unsent output is over the bound."""
        if not self._pending or self.transport is None or self._closed:
            self._pending.clear()
            return 0
        data = b"".join(self._pending)
        self._pending.clear()
        self.transport.write(data)
        self.bytes_out += len(data)
        if self.transport.get_write_buffer_size() > self.engine.max_client_buffer:
            log.warning(
                "%s client %s stopped reading: %d bytes unsent, cut off",
                self.port_name,
                self.client_id,
                self.transport.get_write_buffer_size(),
            )
            self.engine.slow_client_cutoffs += 1
            self.abort()
        return len(data)

    def abort(self) -> None:
        self._closed = True
        self._pending.clear()
        if self.transport is not None:
            self.transport.abort()
        self.engine.unregister(self)

    # -- per port -----------------------------------------------------------------------------

    def greet(self) -> None:
        """Unsolicited lines at connect (none by default)."""

    def handle(self, line: str) -> None:
        raise NotImplementedError

    def set_protocol(self, command: cmd.SetProtocol) -> None:
        self.queue(command.reply())
        if command.protocol is not None:
            self.protocol = command.protocol

    def timestamp(self) -> None:
        self.queue(render_timestamp(self.engine.clock_ns()))

    def watch_count(self) -> int:
        return 0


class Level1Session(Session):
    """Port 5009: watches, fieldsets, F/P/Q/R/n/E/S/T."""

    port_name = "level1"
    client_type = 1

    def __init__(self, server: SessionHost) -> None:
        super().__init__(server)
        self.watches: dict[str, bool] = {}
        self.regional: set[str] = set()

    def greet(self) -> None:
        cfg = self.server.config
        self.queue(render_key())
        self.queue(render_server_connected())
        self.queue(render_ip(cfg.dtn_server_ip, cfg.dtn_server_port))
        self.queue(render_cust(CustomerInfo(max_symbols=self.engine.symbol_limit)))

    def watch_count(self) -> int:
        return len(self.watches)

    def handle(self, line: str) -> None:
        command = cmd.parse_level1(line)
        match command:
            case cmd.Watch(symbol, trades_only):
                self._watch(symbol, trades_only)
            case cmd.Unwatch(symbol):
                self._unwatch(symbol)
            case cmd.Refresh(symbol):
                market = self.engine.markets.get(symbol)
                if market is not None and symbol in self.watches:
                    self._send_summary(market)
            case cmd.RequestTimestamp():
                self.timestamp()
            case cmd.SetTimestamps(on):
                self.timestamps_on = on
            case cmd.SelectUpdateFields():
                built = command.build(self.protocol)
                if isinstance(built, Fieldset):
                    self.fieldset = built
                    self.queue(render_current_update_fieldnames(built.names))
                else:
                    self.queue(f"E,{built.error_text},\r\n".encode("latin-1", "replace"))
            case cmd.RequestAllUpdateFieldnames():
                self.queue(render_update_fieldnames(update_field_names(self.protocol.value)))
            case cmd.RequestCurrentUpdateFieldnames():
                self.queue(render_current_update_fieldnames(self.fieldset.names))
            case cmd.RequestFundamentalFieldnames():
                self.queue(render_fundamental_fieldnames(fundamental_names(self.protocol.value)))
            case cmd.RequestWatches():
                self.queue(render_watches(self.watches))
            case cmd.UnwatchAll():
                for symbol in list(self.watches):
                    self._unwatch(symbol)
            case cmd.Regional(symbol, on):
                self._regional(symbol, on)
            case cmd.RequestStats():
                self.queue(self.server.render_stats())
            case cmd.SetProtocol():
                self.set_protocol(command)
                if command.protocol is not None:
                    self._relayout_for_protocol()
                    # Unsolicited current fieldset after the protocol answer (gotcha 28).
                    self.queue(render_current_update_fieldnames(self.fieldset.names))
            case cmd.SetClientName(name):
                self.client_name = name
            case cmd.Connect():
                self.queue(render_server_connected())
            case cmd.Disconnect():
                self.queue(render_server_disconnected())
            case cmd.SetLogLevels(levels):
                self.queue(render_current_log_levels(levels))
            case cmd.News() | cmd.Key():
                pass  # accepted; feed_sim streams no news (KEY echoes are harmless, gotcha 11)
            case cmd.Unknown(_, reply):
                self.queue(reply)

    def _relayout_for_protocol(self) -> None:
        """Drop fields the newly set protocol does not know (6.0 and older lack two)."""
        allowed = set(update_field_names(self.protocol.value))
        if not set(self.fieldset.names) <= allowed:
            self.fieldset = Fieldset(
                [n for n in self.fieldset.names if n in allowed], self.protocol.value
            )

    def _watch(self, symbol: str, trades_only: bool) -> None:
        market = self.engine.markets.get(symbol)
        if market is None:
            self.queue(render_not_found(symbol))
            return
        if symbol in self.watches:
            self.watches[symbol] = trades_only
            market.level1_watchers[self] = trades_only
            return
        if not market.level1_watchers and (
            self.engine.watched_level1_symbols() >= self.engine.symbol_limit
        ):
            self.queue(render_symbol_limit_reached(symbol))
            return
        self.watches[symbol] = trades_only
        market.level1_watchers[self] = trades_only
        self._send_summary(market)

    def _send_summary(self, market: SymbolMarket) -> None:
        self.queue(render_fundamental(market.fundamentals, self.protocol.value))
        self.queue(render_summary(market.state, self.fieldset))

    def _unwatch(self, symbol: str) -> None:
        self.watches.pop(symbol, None)
        self.regional.discard(symbol)
        market = self.engine.markets.get(symbol)
        if market is not None:
            market.level1_watchers.pop(self, None)

    def _regional(self, symbol: str, on: bool) -> None:
        market = self.engine.markets.get(symbol)
        if market is None:
            self.queue(render_not_found(symbol))
            return
        if not on:
            self.regional.discard(symbol)
            return
        self.regional.add(symbol)
        state = market.state
        now = self.engine.clock_ns()
        self.queue(
            render_regional(
                symbol,
                state.bid,
                state.bid_size,
                now,
                state.ask,
                state.ask_size,
                now,
                state.bid_mc or 5,
                precision=state.precision,
            )
        )


class Level2Session(Session):
    """Port 9200: WOR/WPL (6.2) and w (<=6.1) depth watches."""

    port_name = "level2"
    client_type = 2

    def __init__(self, server: SessionHost) -> None:
        super().__init__(server)
        self.watches: dict[str, tuple[str, int | None]] = {}

    def greet(self) -> None:
        self.queue(render_server_connected())

    def watch_count(self) -> int:
        return len(self.watches)

    def handle(self, line: str) -> None:
        command = cmd.parse_level2(line)
        match command:
            case cmd.WatchDepth(symbol, kind, max_levels):
                self._watch(symbol, kind, max_levels)
            case cmd.UnwatchDepth(symbol, _):
                self._unwatch(symbol)
            case cmd.MarketMakerName(mmid):
                participant = market_participants().get(mmid)
                name = participant.name if participant is not None else mmid
                self.queue(render_market_maker_name(mmid, name))
            case cmd.RequestTimestamp():
                self.timestamp()
            case cmd.SetTimestamps(on):
                self.timestamps_on = on
            case cmd.RequestWatches():
                self.queue(render_watches(self.watches))
            case cmd.UnwatchAll():
                for symbol in list(self.watches):
                    self._unwatch(symbol)
            case cmd.SetProtocol():
                self.set_protocol(command)
            case cmd.SetClientName(name):
                self.client_name = name
            case cmd.Connect():
                self.queue(render_server_connected())
            case cmd.Disconnect():
                self.queue(render_server_disconnected())
            case cmd.Unknown(_, reply):
                self.queue(reply)

    def _watch(self, symbol: str, kind: str, max_levels: int | None) -> None:
        new_style = self.protocol.at_least(Protocol.V6_2)
        if (kind == "market_maker") == new_style:
            # WOR/WPL only from 6.2, `w` only up to 6.1 (C# client, §3); INFERRED reply.
            self.queue(cmd.SYNTAX_ERROR_REPLY)
            return
        market = self.engine.markets.get(symbol)
        if market is None:
            self.queue(render_depth_not_found(symbol))
            return
        if not len(market.depth_events):
            self.queue(render_no_depth(symbol))
            return
        self.watches[symbol] = (kind, max_levels)
        market.level2_watchers.add(self)
        self._send_snapshot(market, kind, max_levels)

    def _send_snapshot(self, market: SymbolMarket, kind: str, max_levels: int | None) -> None:
        book = market.book
        symbol = market.symbol
        if kind == "order":
            self.queue(book.render_snapshot())
        elif kind == "price":
            for side in ("B", "A"):
                for level in book.price_levels(side, max_levels):
                    self.queue(
                        render_price_level(
                            PRICE_LEVEL_SUMMARY,
                            symbol,
                            side,
                            level.price,
                            level.size,
                            level.order_count,
                            book.precision,
                            self.engine.clock_ns(),
                        )
                    )
        else:
            for mmid in book.market_makers():
                self.queue(self._two_sided(MM_SUMMARY, market, mmid))

    def _two_sided(
        self, msg_type: str, market: SymbolMarket, mmid: str, now_ns: int | None = None
    ) -> bytes:
        bid, ask = market.book.market_maker_quote(mmid)
        # An invalid side carries the message's time, not the epoch (1969-12-31 in ET).
        if now_ns is None:
            now_ns = max((r.ts_ns for r in (bid, ask) if r), default=0) or self.engine.clock_ns()
        return render_market_maker(
            msg_type,
            market.symbol,
            mmid,
            bid.price if bid else 0.0,
            ask.price if ask else 0.0,
            bid.size if bid else 0,
            ask.size if ask else 0,
            bid.ts_ns if bid else now_ns,
            ask.ts_ns if ask else now_ns,
            precision=market.book.precision,
            bid_valid=bid is not None,
            ask_valid=ask is not None,
        )

    def queue_depth(
        self,
        line: bytes,
        row: DepthEventRow,
        market: SymbolMarket,
        intended_ns: int | None = None,
        change: DepthChange | None = None,
    ) -> None:
        """Queue one book change in the form this client's watch asked for. Times are the
        change's intended send time (contract 2); a by-price watch gets one `8`/`9` per price
        level the change touched; a by-order watch gets `line` as the emitter rendered it."""
        kind, _ = self.watches.get(market.symbol, ("order", None))
        now = self.engine.clock_ns() if intended_ns is None else intended_ns
        if kind == "order":
            self.queue(line)
        elif kind == "market_maker":
            if row.mmid:
                self.queue(self._two_sided(MM_UPDATE, market, row.mmid, now))
        else:
            book = market.book
            if change is not None:
                levels = list(change.levels)
            else:
                key = round(row.price, book.precision + 2)
                found = [lv for lv in book.price_levels(row.side) if lv.price == key] or [
                    PriceLevel(row.side, key, 0, 0)
                ]
                levels = found[:1]
            for level in levels:
                if level.order_count > 0:
                    self.queue(
                        render_price_level(
                            PRICE_LEVEL_UPDATE,
                            market.symbol,
                            level.side,
                            level.price,
                            level.size,
                            level.order_count,
                            book.precision,
                            now,
                        )
                    )
                else:
                    self.queue(
                        render_price_level_delete(
                            market.symbol, level.side, level.price, book.precision, now
                        )
                    )

    def resend_snapshot(self, market: SymbolMarket) -> None:
        """The summary of one watched book again, in the watch's own form (after a
        server reconnect)."""
        kind, max_levels = self.watches.get(market.symbol, ("order", None))
        self._send_snapshot(market, kind, max_levels)

    def _unwatch(self, symbol: str) -> None:
        self.watches.pop(symbol, None)
        market = self.engine.markets.get(symbol)
        if market is not None:
            market.level2_watchers.discard(self)


class AdminSession(Session):
    """Port 9300: S,STATS once a second, client app registration, CLIENTSTATS."""

    port_name = "admin"
    client_type = 0

    def __init__(self, server: SessionHost) -> None:
        super().__init__(server)
        self.client_stats_on = False

    def handle(self, line: str) -> None:
        command = cmd.parse_admin(line)
        match command:
            case cmd.RegisterClientApp():
                self.queue(render_register_client_app_completed())
            case cmd.RemoveClientApp():
                self.queue(render_remove_client_app_completed())
            case cmd.SetLoginId(login_id):
                self.server.login_id = login_id
                self.queue(render_current_loginid(login_id))
            case cmd.SetPassword(password):
                self.queue(render_current_password(password))
            case cmd.SetSaveLoginInfo(on):
                self.queue(render_login_info_saved(on))
            case cmd.SetAutoconnect(on):
                self.queue(render_autoconnect(on))
            case cmd.ClientStats(on):
                self.client_stats_on = on
            case cmd.RequestStats():
                self.queue(self.server.render_stats())
            case cmd.SetProtocol():
                self.set_protocol(command)
            case cmd.SetClientName(name):
                self.client_name = name
            case cmd.Connect():
                self.queue(render_server_connected())
            case cmd.Disconnect():
                self.queue(render_server_disconnected())
            case cmd.Unknown(_, reply):
                self.queue(reply)


class LookupSession(Session):
    """Port 9100: history and symbol/table lookups; nothing arrives unsolicited."""

    port_name = "lookup"
    client_type = 3

    def handle(self, line: str) -> None:
        from feed_sim.server.history import answer_lookup

        command = cmd.parse_lookup(line)
        if isinstance(command, cmd.SetProtocol):
            self.set_protocol(command)
        elif isinstance(command, cmd.SetClientName):
            self.client_name = command.name
        else:
            for chunk in answer_lookup(command, self.protocol, self.engine.markets):
                self.queue(chunk)


__all__ = [
    "ORDER_SUMMARY",
    "AdminSession",
    "Level1Session",
    "Level2Session",
    "LookupSession",
    "Session",
    "render_current_protocol",
    "render_order",
]
