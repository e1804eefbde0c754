"""System (`S,...`), timestamp (`T,...`) and protocol-version messages of every port.

Owns the supported protocol versions and the exact text of the system lines, including which
ones end with a trailing comma (iqfeed-protocol.md §1.2, gotcha 8). Trailing-comma choices:

* no comma [SEEN]: `S,CURRENT PROTOCOL,6.2`, `T,YYYYMMDD HH:MM:SS`, `S,SERVER CONNECTED`.
* no comma [INFERRED, same family as SERVER CONNECTED / CURRENT PROTOCOL]: `S,KEY,...`,
  `S,SERVER DISCONNECTED`, `S,SERVER RECONNECT FAILED`, `S,IP,...`, `S,SYMBOL LIMIT
  REACHED,<sym>`, the admin replies (`S,REGISTER CLIENT APP COMPLETED`, `S,CURRENT LOGINID,..`,
  `S,AUTOCONNECT ON`, ...), `S,CURRENT LOG LEVELS,...`.
* comma [SEEN]: `S,CUST,...,`, `S,STATS,...,`, `E,<v> is not a valid protocol.,`.
* comma [INFERRED, list-style replies like STATS]: `S,CLIENTSTATS,...,`, `S,WATCHES,...,`.
* no comma [INFERRED; pyiqfeed compares the field lists of these replies for exact equality,
  which a trailing empty field would break]: `S,UPDATE FIELDNAMES,...`,
  `S,CURRENT UPDATE FIELDNAMES,...`, `S,FUNDAMENTAL FIELDNAMES,...`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from feed_sim.protocol.timefmt import clientstats_time, stats_time, t_message

IQCONNECT_VERSION = "6.2.0.25"
"""The IQConnect build the simulator claims to be (docker-iqfeed ran against this build)."""

CRLF = b"\r\n"


class Protocol(StrEnum):
    """Protocol versions this simulator accepts in `S,SET PROTOCOL,<v>`."""

    V5_0 = "5.0"
    V5_1 = "5.1"
    V5_2 = "5.2"
    V6_0 = "6.0"
    V6_1 = "6.1"
    V6_2 = "6.2"

    def at_least(self, other: Protocol) -> bool:
        """True when this version is `other` or newer."""
        return _RANK[self] >= _RANK[other]


_RANK = {p: i for i, p in enumerate(Protocol)}

DEFAULT_PROTOCOL = Protocol.V6_2
"""Protocol of a connection that never sent SET PROTOCOL. INFERRED: a 6.2.0.25 IQConnect
speaks its newest protocol; every modern client sets the protocol explicitly anyway."""


def parse_protocol(text: str) -> Protocol | None:
    """The protocol named by `text` ('6.2'), or None when unsupported."""
    try:
        return Protocol(text.strip())
    except ValueError:
        return None


def _line(text: str) -> bytes:
    return text.encode("latin-1", "replace") + CRLF


def render_current_protocol(protocol: Protocol) -> bytes:
    """`S,CURRENT PROTOCOL,6.2` (no trailing comma, SEEN)."""
    return _line(f"S,CURRENT PROTOCOL,{protocol.value}")


def render_invalid_protocol(requested: str) -> bytes:
    """`E,<v> is not a valid protocol.,` (SEEN)."""
    return _line(f"E,{requested} is not a valid protocol.,")


def render_timestamp(ns: int) -> bytes:
    """`T,YYYYMMDD HH:MM:SS` (Eastern, no trailing comma)."""
    return _line(f"T,{t_message(ns)}")


def render_key(key: str = "99999") -> bytes:
    """`S,KEY,99999`, the first line on port 5009."""
    return _line(f"S,KEY,{key}")


def render_server_connected() -> bytes:
    """`S,SERVER CONNECTED`."""
    return b"S,SERVER CONNECTED\r\n"


def render_server_disconnected() -> bytes:
    """`S,SERVER DISCONNECTED`."""
    return b"S,SERVER DISCONNECTED\r\n"


def render_server_reconnect_failed() -> bytes:
    """`S,SERVER RECONNECT FAILED`."""
    return b"S,SERVER RECONNECT FAILED\r\n"


def render_ip(ip: str, port: int) -> bytes:
    """`S,IP,<ip> <port>` (field 2 is 'a.b.c.d 60004' in the pyiqfeed #33 log)."""
    return _line(f"S,IP,{ip} {port}")


DEFAULT_EXCHANGES = "INDEX DTNNEWS RT_TRADER COMTEX PRIMEZONE INTERNET_WIRE AMEX NASDAQ NYSE APCMB"


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    """The fields of `S,CUST` (indexes after the `S,CUST` prefix in the comments)."""

    server_ip: str = "66.112.156.224"  # 1
    server_port: int = 60002  # 2
    token: str = "73QEupj"  # 3
    version: str = IQCONNECT_VERSION  # 4
    unknown5: str = "0"  # 5
    exchanges: str = DEFAULT_EXCHANGES  # 6
    max_symbols: int = 500  # 8
    flags: str = "QT_API"  # 9
    expiry: str = ""  # 10, trial accounts only (yyyyMMdd)
    service: str = "real_time"  # 0


def render_cust(info: CustomerInfo) -> bytes:
    """`S,CUST,real_time,...,` laid out exactly like the moscona capture."""
    return _line(
        f"S,CUST,{info.service},{info.server_ip},{info.server_port},{info.token},"
        f"{info.version},{info.unknown5},{info.exchanges},,{info.max_symbols},{info.flags},"
        f"{info.expiry},"
    )


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """The 19 fields of `S,STATS` (admin 9300, or on request on 5009)."""

    server_ip: str = ""
    server_port: int | None = None
    max_symbols: int = 500
    symbols: int = 0
    clients: int = 1
    seconds_since_update: int = 0
    reconnections: int = 0
    failed_reconnections: int = 0
    start_ns: int | None = None
    market_ns: int | None = None
    connected: bool = True
    version: str = IQCONNECT_VERSION
    login_id: str = "490914"
    kb_received: float = 0.0
    kbps_received: float = 0.0
    avg_kbps_received: float = 0.0
    kb_sent: float = 0.0
    kbps_sent: float = 0.0
    avg_kbps_sent: float = 0.0


def _total_kb(kb: float) -> str:
    """Total KB received: '0' when nothing arrived (SEEN), else two decimals (INFERRED)."""
    return "0" if kb == 0 else f"{kb:.2f}"


def render_stats(stats: ConnectionStats) -> bytes:
    """`S,STATS,...,` (login id double-quoted as in 6.2.0.25, trailing comma)."""
    s = stats
    port = "" if s.server_port is None else str(s.server_port)
    start = "" if s.start_ns is None else stats_time(s.start_ns)
    market = "" if s.market_ns is None else stats_time(s.market_ns)
    status = "Connected" if s.connected else "Not Connected"
    return _line(
        f"S,STATS,{s.server_ip},{port},{s.max_symbols},{s.symbols},{s.clients},"
        f"{s.seconds_since_update},{s.reconnections},{s.failed_reconnections},{start},{market},"
        f'{status},{s.version},"{s.login_id}",{_total_kb(s.kb_received)},{s.kbps_received:.1f},'
        f"{s.avg_kbps_received:.1f},{s.kb_sent:.2f},{s.kbps_sent:.2f},{s.avg_kbps_sent:.2f},"
    )


class ClientType(StrEnum):
    """`S,CLIENTSTATS` Type column."""

    ADMIN = "0"
    LEVEL1 = "1"
    LEVEL2 = "2"
    LOOKUP = "3"


@dataclass(frozen=True, slots=True)
class ClientStats:
    """One `S,CLIENTSTATS` row (DTN order: KB received, then sent, then queued)."""

    client_type: ClientType
    client_id: int
    name: str
    start_ns: int
    symbols: int | None = None
    regional_symbols: int | None = None
    kb_received: float = 0.0
    kb_sent: float = 0.0
    kb_queued: float = 0.0


def render_client_stats(c: ClientStats) -> bytes:
    """`S,CLIENTSTATS,<type>,<id>,<name>,<YYYYMMDD HHMMSS>,<syms>,<regional>,<rx>,<tx>,<q>,`."""
    symbols = "" if c.symbols is None else str(c.symbols)
    regional = "" if c.regional_symbols is None else str(c.regional_symbols)
    return _line(
        f"S,CLIENTSTATS,{c.client_type.value},{c.client_id},{c.name},"
        f"{clientstats_time(c.start_ns)},{symbols},{regional},{c.kb_received:.2f},"
        f"{c.kb_sent:.2f},{c.kb_queued:.2f},"
    )


def render_update_fieldnames(names: Iterable[str]) -> bytes:
    """`S,UPDATE FIELDNAMES,<all selectable names>`."""
    return _line("S,UPDATE FIELDNAMES," + ",".join(names))


def render_current_update_fieldnames(names: Iterable[str]) -> bytes:
    """`S,CURRENT UPDATE FIELDNAMES,<names of this connection's fieldset>`."""
    return _line("S,CURRENT UPDATE FIELDNAMES," + ",".join(names))


def render_fundamental_fieldnames(names: Iterable[str]) -> bytes:
    """`S,FUNDAMENTAL FIELDNAMES,<names>`."""
    return _line("S,FUNDAMENTAL FIELDNAMES," + ",".join(names))


def render_watches(symbols: Iterable[str]) -> bytes:
    """`S,WATCHES,<sym>,<sym>,...,` (plain symbols; decoration unverified, INFERRED)."""
    listed = "".join(f"{sym}," for sym in symbols)
    return _line(f"S,WATCHES,{listed}")


def render_symbol_limit_reached(symbol: str) -> bytes:
    """`S,SYMBOL LIMIT REACHED,<sym>` (symbol at field index 2)."""
    return _line(f"S,SYMBOL LIMIT REACHED,{symbol}")


def render_current_log_levels(levels: Iterable[str]) -> bytes:
    """`S,CURRENT LOG LEVELS,<lvl>,<lvl>...`."""
    return _line("S,CURRENT LOG LEVELS," + ",".join(levels))


def render_clear_depth(symbol: str, side: str) -> bytes:
    """`S,CLEAR DEPTH,<sym>,<A|B>,` (SEEN, trailing comma)."""
    return _line(f"S,CLEAR DEPTH,{symbol},{side},")


def render_register_client_app_completed() -> bytes:
    """Admin reply to `S,REGISTER CLIENT APP,...`."""
    return b"S,REGISTER CLIENT APP COMPLETED\r\n"


def render_remove_client_app_completed() -> bytes:
    """Admin reply to `S,REMOVE CLIENT APP,...`."""
    return b"S,REMOVE CLIENT APP COMPLETED\r\n"


def render_current_loginid(login_id: str) -> bytes:
    """Admin reply to `S,SET LOGINID,<id>`."""
    return _line(f"S,CURRENT LOGINID,{login_id}")


def render_current_password(password: str) -> bytes:
    """Admin reply to `S,SET PASSWORD,<pw>`."""
    return _line(f"S,CURRENT PASSWORD,{password}")


def render_login_info_saved(saved: bool) -> bytes:
    """`S,LOGIN INFO SAVED` / `S,LOGIN INFO NOT SAVED`."""
    return b"S,LOGIN INFO SAVED\r\n" if saved else b"S,LOGIN INFO NOT SAVED\r\n"


def render_autoconnect(on: bool) -> bytes:
    """`S,AUTOCONNECT ON` / `S,AUTOCONNECT OFF` (replies are upper case)."""
    return b"S,AUTOCONNECT ON\r\n" if on else b"S,AUTOCONNECT OFF\r\n"
