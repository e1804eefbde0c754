"""Client input: per-port parsers of client lines into typed commands.

Owns how client lines become commands (iqfeed-protocol.md §1.2, gotchas 10, 11, 23, 25; the
lines come from `feed_sim.protocol.lines.LineSplitter`). The `parse_*` functions never raise:
anything unrecognised becomes `Unknown`, carrying the error reply to send.

Choices (INFERRED): `S,` sub-command names and On/Off values are matched case-insensitively;
watched symbols are upper-cased and stripped; an unknown command on a streaming or admin port
is answered `E,!SYNTAX_ERROR!,` (the lookup/derivative reply; no capture exists for 5009/9200).
"""

from __future__ import annotations

from dataclasses import dataclass

from feed_sim.protocol.fields import Fieldset, UnknownFieldError
from feed_sim.protocol.lookup import (
    HISTORY_COMMANDS,
    SEARCH_COMMANDS,
    SYNTAX_ERROR,
    TABLE_COMMANDS,
    HistoryRequest,
    LookupFailure,
    SymbolSearchRequest,
    TableRequest,
    parse_history_request,
    parse_symbol_request,
)
from feed_sim.protocol.system import (
    Protocol,
    parse_protocol,
    render_current_protocol,
    render_invalid_protocol,
)

SYNTAX_ERROR_REPLY = b"E,!SYNTAX_ERROR!,\r\n"


# ---- commands shared by several ports ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unknown:
    """An unrecognised or malformed line and the reply it gets."""

    line: str
    reply: bytes = SYNTAX_ERROR_REPLY


@dataclass(frozen=True, slots=True)
class SetProtocol:
    """`S,SET PROTOCOL,<v>`; `protocol` is None when unsupported."""

    requested: str
    protocol: Protocol | None

    def reply(self) -> bytes:
        """`S,CURRENT PROTOCOL,<v>` or `E,<v> is not a valid protocol.,`."""
        if self.protocol is None:
            return render_invalid_protocol(self.requested)
        return render_current_protocol(self.protocol)


@dataclass(frozen=True, slots=True)
class SetClientName:
    """`S,SET CLIENT NAME,<name>` (no reply)."""

    name: str


@dataclass(frozen=True, slots=True)
class Connect:
    """`S,CONNECT` (or `c` on the <=6.1 L2 port)."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """`S,DISCONNECT` (or `x` on the <=6.1 L2 port)."""


@dataclass(frozen=True, slots=True)
class SetTimestamps:
    """`S,TIMESTAMPSON` / `S,TIMESTAMPSOFF`."""

    on: bool


@dataclass(frozen=True, slots=True)
class RequestTimestamp:
    """Bare `T`: send one timestamp now."""


@dataclass(frozen=True, slots=True)
class RequestWatches:
    """`S,REQUEST WATCHES`."""


@dataclass(frozen=True, slots=True)
class UnwatchAll:
    """`S,UNWATCH ALL` (no ack)."""


@dataclass(frozen=True, slots=True)
class RequestStats:
    """`S,REQUEST STATS`."""


# ---- Level 1 --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Watch:
    """`w<SYM>` (trades and quotes) or `t<SYM>` (trades only)."""

    symbol: str
    trades_only: bool = False


@dataclass(frozen=True, slots=True)
class Unwatch:
    """`r<SYM>`."""

    symbol: str


@dataclass(frozen=True, slots=True)
class Refresh:
    """`f<SYM>`: resend F and P."""

    symbol: str


@dataclass(frozen=True, slots=True)
class SelectUpdateFields:
    """`S,SELECT UPDATE FIELDS,<name>,...`."""

    names: tuple[str, ...]

    def build(self, protocol: Protocol) -> Fieldset | UnknownFieldError:
        """The new fieldset, or the error for the first unknown name."""
        try:
            return Fieldset(self.names, protocol.value)
        except UnknownFieldError as exc:
            return exc


@dataclass(frozen=True, slots=True)
class RequestAllUpdateFieldnames:
    """`S,REQUEST ALL UPDATE FIELDNAMES`."""


@dataclass(frozen=True, slots=True)
class RequestCurrentUpdateFieldnames:
    """`S,REQUEST CURRENT UPDATE FIELDNAMES`."""


@dataclass(frozen=True, slots=True)
class RequestFundamentalFieldnames:
    """`S,REQUEST FUNDAMENTAL FIELDNAMES`."""


@dataclass(frozen=True, slots=True)
class Regional:
    """`S,REGON,<SYM>` / `S,REGOFF,<SYM>`."""

    symbol: str
    on: bool


@dataclass(frozen=True, slots=True)
class News:
    """`S,NEWSON` / `S,NEWSOFF`."""

    on: bool


@dataclass(frozen=True, slots=True)
class SetLogLevels:
    """`S,SET LOG LEVELS,<lvl>,...`."""

    levels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Key:
    """`S,KEY,<key>` echoed back by a legacy client: harmless (gotcha 11)."""

    key: str


# ---- Level 2 --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchDepth:
    """`WOR,<SYM>` (by order), `WPL,<SYM>[,<max levels>]` (by price), `w<SYM>` (<=6.1 MMID)."""

    symbol: str
    kind: str  # "order" | "price" | "market_maker"
    max_levels: int | None = None


@dataclass(frozen=True, slots=True)
class UnwatchDepth:
    """`ROR,<SYM>`, `RPL,<SYM>` or `r<SYM>` (kind "any")."""

    symbol: str
    kind: str  # "order" | "price" | "any"


@dataclass(frozen=True, slots=True)
class MarketMakerName:
    """<=6.1 `m<MMID>`."""

    mmid: str


# ---- Admin ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterClientApp:
    """`S,REGISTER CLIENT APP,<product id>[,<version>]`."""

    product_id: str
    version: str = ""


@dataclass(frozen=True, slots=True)
class RemoveClientApp:
    """`S,REMOVE CLIENT APP,<product id>[,<version>]`."""

    product_id: str
    version: str = ""


@dataclass(frozen=True, slots=True)
class SetLoginId:
    """`S,SET LOGINID,<id>`."""

    login_id: str


@dataclass(frozen=True, slots=True)
class SetPassword:
    """`S,SET PASSWORD,<pw>`."""

    password: str


@dataclass(frozen=True, slots=True)
class SetSaveLoginInfo:
    """`S,SET SAVE LOGIN INFO,On|Off`."""

    on: bool


@dataclass(frozen=True, slots=True)
class SetAutoconnect:
    """`S,SET AUTOCONNECT,On|Off`."""

    on: bool


@dataclass(frozen=True, slots=True)
class ClientStats:
    """`S,CLIENTSTATS ON` / `S,CLIENTSTATS OFF` (a space, not a comma)."""

    on: bool


Level1Command = (
    Watch
    | Unwatch
    | Refresh
    | RequestTimestamp
    | SetTimestamps
    | SelectUpdateFields
    | RequestAllUpdateFieldnames
    | RequestCurrentUpdateFieldnames
    | RequestFundamentalFieldnames
    | RequestWatches
    | UnwatchAll
    | Regional
    | News
    | RequestStats
    | SetProtocol
    | SetClientName
    | Connect
    | Disconnect
    | SetLogLevels
    | Key
    | Unknown
)
Level2Command = (
    WatchDepth
    | UnwatchDepth
    | MarketMakerName
    | RequestTimestamp
    | SetTimestamps
    | RequestWatches
    | UnwatchAll
    | SetProtocol
    | SetClientName
    | Connect
    | Disconnect
    | Unknown
)
AdminCommand = (
    RegisterClientApp
    | RemoveClientApp
    | SetLoginId
    | SetPassword
    | SetSaveLoginInfo
    | SetAutoconnect
    | ClientStats
    | RequestStats
    | SetProtocol
    | SetClientName
    | Connect
    | Disconnect
    | Unknown
)
LookupCommand = (
    HistoryRequest
    | TableRequest
    | SymbolSearchRequest
    | SetProtocol
    | SetClientName
    | LookupFailure
)

_CommonSimple = SetTimestamps | RequestWatches | UnwatchAll | Connect | Disconnect

_SIMPLE_COMMON: dict[str, _CommonSimple] = {
    "TIMESTAMPSON": SetTimestamps(True),
    "TIMESTAMPSOFF": SetTimestamps(False),
    "REQUEST WATCHES": RequestWatches(),
    "UNWATCH ALL": UnwatchAll(),
    "CONNECT": Connect(),
    "DISCONNECT": Disconnect(),
}

_SIMPLE_LEVEL1: dict[str, Level1Command] = {
    **_SIMPLE_COMMON,
    "REQUEST ALL UPDATE FIELDNAMES": RequestAllUpdateFieldnames(),
    "REQUEST CURRENT UPDATE FIELDNAMES": RequestCurrentUpdateFieldnames(),
    "REQUEST FUNDAMENTAL FIELDNAMES": RequestFundamentalFieldnames(),
    "NEWSON": News(True),
    "NEWSOFF": News(False),
    "REQUEST STATS": RequestStats(),
}

_SIMPLE_ADMIN: dict[str, AdminCommand] = {
    "CONNECT": Connect(),
    "DISCONNECT": Disconnect(),
    "CLIENTSTATS ON": ClientStats(True),
    "CLIENTSTATS OFF": ClientStats(False),
    "REQUEST STATS": RequestStats(),
}


NO_ARGUMENT_SYSTEM_COMMANDS: dict[str, frozenset[str]] = {
    "level1": frozenset(_SIMPLE_LEVEL1),
    "level2": frozenset(_SIMPLE_COMMON),
    "admin": frozenset(_SIMPLE_ADMIN),
    "lookup": frozenset(),
}
"""Per port, the `S,<NAME>` commands that take no argument (upper case; matched without case)."""


def _symbol(text: str) -> str:
    return text.strip().upper()


def _on_off(text: str) -> bool | None:
    value = text.strip().upper()
    return True if value == "ON" else False if value == "OFF" else None


def _system_fields(line: str) -> tuple[str, list[str]] | None:
    """('SET PROTOCOL', ['6.2']) for 'S,SET PROTOCOL,6.2'; None when not an `S,` line."""
    if len(line) < 2 or line[0] not in "Ss" or line[1] != ",":
        return None
    parts = line[2:].split(",")
    return parts[0].strip().upper(), parts[1:]


def _parse_shared_system(name: str, args: list[str]) -> SetProtocol | SetClientName | None:
    """Sub-commands valid on every port: SET PROTOCOL, SET CLIENT NAME."""
    if name == "SET PROTOCOL" and args:
        requested = args[0].strip()
        return SetProtocol(requested, parse_protocol(requested))
    if name == "SET CLIENT NAME":
        return SetClientName(",".join(args).strip())
    return None


def _parse_level1_system(line: str, name: str, args: list[str]) -> Level1Command:
    if not args and name in _SIMPLE_LEVEL1:
        return _SIMPLE_LEVEL1[name]
    shared = _parse_shared_system(name, args)
    if shared is not None:
        return shared
    if name == "SELECT UPDATE FIELDS":
        names = tuple(n.strip() for n in args if n.strip())
        return SelectUpdateFields(names)
    if name in ("REGON", "REGOFF") and args and _symbol(args[0]):
        return Regional(_symbol(args[0]), name == "REGON")
    if name == "SET LOG LEVELS":
        return SetLogLevels(tuple(a.strip() for a in args if a.strip()))
    if name == "KEY":
        return Key(args[0].strip() if args else "")
    return Unknown(line)


def _parse_level1(line: str) -> Level1Command:
    system = _system_fields(line)
    if system is not None:
        return _parse_level1_system(line, *system)
    head, rest = line[0], line[1:]
    if head == "T" and not rest.strip():
        return RequestTimestamp()
    symbol = _symbol(rest)
    if not symbol or "," in symbol:
        return Unknown(line)
    if head == "w":
        return Watch(symbol)
    if head == "t":
        return Watch(symbol, trades_only=True)
    if head == "r":
        return Unwatch(symbol)
    if head == "f":
        return Refresh(symbol)
    return Unknown(line)


def _parse_level2(line: str) -> Level2Command:
    system = _system_fields(line)
    if system is not None:
        name, args = system
        if not args and name in _SIMPLE_COMMON:
            return _SIMPLE_COMMON[name]
        shared = _parse_shared_system(name, args)
        return Unknown(line) if shared is None else shared
    stripped = line.strip()
    if stripped == "c":
        return Connect()
    if stripped == "x":
        return Disconnect()
    if stripped == "T":
        return RequestTimestamp()
    parts = stripped.split(",")
    verb = parts[0].upper()
    if verb in ("WOR", "ROR", "WPL", "RPL"):
        symbol = _symbol(parts[1]) if len(parts) > 1 else ""
        if not symbol:
            return Unknown(line)
        if verb == "WOR" and len(parts) == 2:
            return WatchDepth(symbol, "order")
        if verb == "ROR" and len(parts) == 2:
            return UnwatchDepth(symbol, "order")
        if verb == "RPL" and len(parts) == 2:
            return UnwatchDepth(symbol, "price")
        if verb == "WPL" and len(parts) <= 3:
            levels = parts[2].strip() if len(parts) == 3 else ""
            if levels == "":
                return WatchDepth(symbol, "price")
            if levels.isascii() and levels.isdigit() and 0 < int(levels) < 10_000:
                return WatchDepth(symbol, "price", int(levels))
        return Unknown(line)
    head, rest = stripped[0], _symbol(stripped[1:])
    if rest and "," not in rest:
        if head == "w":
            return WatchDepth(rest, "market_maker")
        if head == "r":
            return UnwatchDepth(rest, "any")
        if head == "m":
            return MarketMakerName(rest)
    return Unknown(line)


def _parse_admin(line: str) -> AdminCommand:
    system = _system_fields(line)
    if system is None:
        return Unknown(line)
    name, args = system
    if not args and name in _SIMPLE_ADMIN:
        return _SIMPLE_ADMIN[name]
    shared = _parse_shared_system(name, args)
    if shared is not None:
        return shared
    first = args[0].strip() if args else ""
    if name in ("REGISTER CLIENT APP", "REMOVE CLIENT APP") and first:
        version = args[1].strip() if len(args) > 1 else ""
        if name == "REGISTER CLIENT APP":
            return RegisterClientApp(first, version)
        return RemoveClientApp(first, version)
    if name == "SET LOGINID" and len(args) == 1:
        return SetLoginId(first)
    if name == "SET PASSWORD" and len(args) >= 1:
        return SetPassword(",".join(args))
    if name in ("SET SAVE LOGIN INFO", "SET AUTOCONNECT") and len(args) == 1:
        on = _on_off(first)
        if on is not None:
            return SetSaveLoginInfo(on) if name == "SET SAVE LOGIN INFO" else SetAutoconnect(on)
    return Unknown(line)


def _parse_lookup(line: str) -> LookupCommand:
    system = _system_fields(line)
    if system is not None:
        shared = _parse_shared_system(*system)
        return LookupFailure(SYNTAX_ERROR) if shared is None else shared
    fields = line.strip().split(",")
    command = fields[0]
    if command in HISTORY_COMMANDS:
        return parse_history_request(fields)
    if command in TABLE_COMMANDS or command in SEARCH_COMMANDS:
        return parse_symbol_request(fields)
    return LookupFailure(SYNTAX_ERROR)


def parse_level1(line: str) -> Level1Command:
    """Parse one Level 1 (5009) client line. Never raises."""
    if not line.strip():
        return Unknown(line)
    try:
        command = _parse_level1(line)
    except Exception:  # defensive: a client line must never take the server down
        return Unknown(line)
    return command


def parse_level2(line: str) -> Level2Command:
    """Parse one Level 2 (9200) client line. Never raises."""
    if not line.strip():
        return Unknown(line)
    try:
        command = _parse_level2(line)
    except Exception:  # defensive, as above
        return Unknown(line)
    return command


def parse_admin(line: str) -> AdminCommand:
    """Parse one admin (9300) client line. Never raises."""
    try:
        command = _parse_admin(line)
    except Exception:  # defensive, as above
        return Unknown(line)
    return command


def parse_lookup(line: str) -> LookupCommand:
    """Parse one lookup (9100) client line. Never raises; errors are `LookupFailure`s."""
    try:
        command = _parse_lookup(line)
    except Exception:  # defensive, as above
        return LookupFailure(SYNTAX_ERROR)
    return command
