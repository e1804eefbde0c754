"""The tape file format (``iqfeed-tape`` v1): writing, reading and validating tape files.

A tape file is a zstd stream of newline-terminated lines: line 1 is a JSON header, every further
line is one event as a compact JSON array ``[ts_ns, symbol, kind, {fields}]``. The header is
written in its own zstd frame in front of the event frame, so it can be read without
decompressing the events. The full specification is in ``FORMAT.md`` next to this module.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
import zstandard

from feed_sim.tape.model import Kind, TapeEvent, TapeHeader

FORMAT_NAME = "iqfeed-tape"
FORMAT_VERSION = 1
"""The version this module writes; it reads every version up to this one."""

_READ_CHUNK = 1 << 17
_KINDS = {k.value: k for k in Kind}
_HEADER_KEYS: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "created_ns": int,
    "source": str,
    "symbols": list,
    "start_ns": int,
    "end_ns": int,
    "event_count": int,
    "amplified": bool,
    "meta": dict,
}


class TapeFormatError(ValueError):
    """A tape file (or an event written to one) breaks the format; names the file and line."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line


def header_to_json(header: TapeHeader) -> dict[str, Any]:
    """The header as the JSON object stored on line 1."""
    return {
        "format": FORMAT_NAME,
        "format_version": header.format_version,
        "created_ns": header.created_ns,
        "source": header.source,
        "symbols": list(header.symbols),
        "start_ns": header.start_ns,
        "end_ns": header.end_ns,
        "event_count": header.event_count,
        "amplified": header.amplified,
        "meta": dict(header.meta),
    }


def _header_from_json(path: Path, raw: bytes) -> TapeHeader:
    """Parse and validate line 1; raises TapeFormatError naming the file."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TapeFormatError(path, f"header is not valid JSON ({exc})", 1) from None
    if not isinstance(obj, dict):
        raise TapeFormatError(path, "header is not a JSON object", 1)
    if obj.get("format") != FORMAT_NAME:
        raise TapeFormatError(
            path, f"not an {FORMAT_NAME} file (format is {obj.get('format')!r})", 1
        )
    version = obj.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise TapeFormatError(
            path,
            f"format_version {version} is newer than this reader supports "
            f"({FORMAT_VERSION}); upgrade feed_sim",
            1,
        )
    for key, typ in _HEADER_KEYS.items():
        value = obj.get(key)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise TapeFormatError(path, f"header field {key!r} missing or invalid: {value!r}", 1)
    if obj["format_version"] < 1:
        raise TapeFormatError(path, f"invalid format_version {version}", 1)
    if not all(isinstance(s, str) for s in obj["symbols"]):
        raise TapeFormatError(path, "header field 'symbols' must be a list of strings", 1)
    return TapeHeader(
        format_version=obj["format_version"],
        created_ns=obj["created_ns"],
        source=obj["source"],
        symbols=tuple(obj["symbols"]),
        start_ns=obj["start_ns"],
        end_ns=obj["end_ns"],
        event_count=obj["event_count"],
        amplified=obj["amplified"],
        meta=obj["meta"],
    )


def _event_from_json(path: Path, raw: bytes, line: int) -> TapeEvent:
    """Parse one event line; raises TapeFormatError naming the file and line."""
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TapeFormatError(path, f"event is not valid JSON ({exc})", line) from None
    if not isinstance(row, list) or len(row) != 4:
        raise TapeFormatError(path, "event must be a JSON array of 4 items", line)
    ts_ns, symbol, kind, fields = row
    if not isinstance(ts_ns, int) or isinstance(ts_ns, bool):
        raise TapeFormatError(path, f"event ts_ns must be an integer, got {ts_ns!r}", line)
    if not isinstance(symbol, str):
        raise TapeFormatError(path, f"event symbol must be a string, got {symbol!r}", line)
    kind_enum = _KINDS.get(kind) if isinstance(kind, str) else None
    if kind_enum is None:
        raise TapeFormatError(path, f"unknown event kind {kind!r}", line)
    if not isinstance(fields, dict):
        raise TapeFormatError(path, "event fields must be a JSON object", line)
    return TapeEvent(ts_ns, symbol, kind_enum, fields)


def _iter_lines(path: Path, fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line without '\\n') from a zstd stream of one or more frames."""
    dctx = zstandard.ZstdDecompressor()
    dobj = dctx.decompressobj()
    in_frame = False
    pending = b""
    lineno = 0
    try:
        while raw := fh.read(_READ_CHUNK):
            while raw:
                out = dobj.decompress(raw)
                in_frame = True
                if dobj.eof:
                    raw = dobj.unused_data
                    dobj = dctx.decompressobj()
                    in_frame = False
                else:
                    raw = b""
                if not out:
                    continue
                lines = (pending + out).split(b"\n")
                pending = lines.pop()
                for text in lines:
                    lineno += 1
                    yield lineno, text
    except zstandard.ZstdError as exc:
        what = "not a zstd-compressed tape" if lineno == 0 else "corrupt zstd data"
        raise TapeFormatError(path, f"{what} ({exc})", lineno + 1) from None
    if in_frame or pending:
        raise TapeFormatError(path, "file is truncated (incomplete last line or frame)", lineno + 1)


def read_header(path: Path | str) -> TapeHeader:
    """Read only the header (line 1) of a tape."""
    path = Path(path)
    with path.open("rb") as fh:
        for _lineno, raw in _iter_lines(path, fh):
            return _header_from_json(path, raw)
    raise TapeFormatError(path, "empty file: no header", 1)


def read_events(path: Path | str) -> Iterator[TapeEvent]:
    """Stream the events of a tape, validating order and the header's event count."""
    path = Path(path)
    with path.open("rb") as fh:
        lines = _iter_lines(path, fh)
        first = next(lines, None)
        if first is None:
            raise TapeFormatError(path, "empty file: no header", 1)
        header = _header_from_json(path, first[1])
        count = 0
        last_ts: int | None = None
        lineno = 1
        for lineno, raw in lines:
            event = _event_from_json(path, raw, lineno)
            if last_ts is not None and event.ts_ns < last_ts:
                raise TapeFormatError(
                    path,
                    f"event ts_ns {event.ts_ns} is earlier than the previous {last_ts}",
                    lineno,
                )
            last_ts = event.ts_ns
            count += 1
            yield event
        if count != header.event_count:
            raise TapeFormatError(
                path,
                f"header says {header.event_count} events but the file holds {count} (truncated?)",
                lineno + 1,
            )


def load_tape(path: Path | str) -> tuple[TapeHeader, list[TapeEvent]]:
    """Read a whole tape into memory."""
    return read_header(path), list(read_events(path))


def _temp_beside(path: Path) -> tuple[Path, IO[bytes]]:
    """A new hidden temp file in the target's directory (so the final rename is atomic)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    return tmp, tmp.open("xb")


class TapeWriter:
    """Write a tape: events go to a compressed temp file; close() prepends the header frame.

    The final file appears atomically (rename) only on a clean close; on an exception inside
    the ``with`` block (or abort()) nothing is left behind.
    """

    def __init__(
        self,
        path: Path | str,
        source: str,
        meta: Mapping[str, Any] | None = None,
        amplified: bool = False,
        symbols: Sequence[str] = (),
        created_ns: int | None = None,
        level: int = 3,
    ) -> None:
        self.path = Path(path)
        self.source = source
        self.meta = dict(meta or {})
        """Header meta; may be updated until close()."""
        self.amplified = amplified
        self.created_ns = created_ns
        self.header: TapeHeader | None = None
        """Set by close()."""
        self._symbols: set[str] = set(symbols)
        self._count = 0
        self._start = 0
        self._last: int | None = None
        self._level = level
        self._tmp, self._raw = _temp_beside(self.path)
        self._zobj = zstandard.ZstdCompressor(level=level).compressobj()
        self._closed = False

    def __enter__(self) -> TapeWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def event_count(self) -> int:
        """Events written so far."""
        return self._count

    def write(self, event: TapeEvent) -> None:
        """Append one event; its ts_ns must not be earlier than the previous event's."""
        if self._closed:
            raise ValueError(f"{self.path}: tape writer is closed")
        what = f"event #{self._count + 1} (ts_ns={event.ts_ns}, {event.symbol!r}, {event.kind!r})"
        if type(event.ts_ns) is not int:
            raise TapeFormatError(self.path, f"{what}: ts_ns must be an int")
        if not isinstance(event.kind, Kind):
            raise TapeFormatError(self.path, f"{what}: kind must be a Kind")
        if self._last is not None and event.ts_ns < self._last:
            raise TapeFormatError(
                self.path, f"{what} is earlier than the previous event (ts_ns={self._last})"
            )
        if any(type(v) is float and not math.isfinite(v) for v in event.fields.values()):
            raise TapeFormatError(self.path, f"{what}: NaN/infinite values cannot be stored")
        try:
            line = orjson.dumps([event.ts_ns, event.symbol, event.kind.value, dict(event.fields)])
        except TypeError as exc:
            msg = f"{what}: fields are not JSON-encodable ({exc})"
            raise TapeFormatError(self.path, msg) from None
        self._raw.write(self._zobj.compress(line + b"\n"))
        if self._last is None:
            self._start = event.ts_ns
        self._last = event.ts_ns
        self._count += 1
        if event.symbol:
            self._symbols.add(event.symbol)

    def write_all(self, events: Iterable[TapeEvent]) -> None:
        """Append many events in order."""
        for event in events:
            self.write(event)

    def close(self) -> TapeHeader:
        """Finish the file (header frame + event frame, renamed into place); idempotent."""
        if self.header is not None:
            return self.header
        if self._closed:
            raise ValueError(f"{self.path}: tape writer was aborted")
        self._raw.write(self._zobj.flush())
        self._raw.close()
        self._closed = True
        header = TapeHeader(
            format_version=FORMAT_VERSION,
            created_ns=time.time_ns() if self.created_ns is None else self.created_ns,
            source=self.source,
            symbols=tuple(sorted(self._symbols)),
            start_ns=self._start,
            end_ns=self._last if self._last is not None else 0,
            event_count=self._count,
            amplified=self.amplified,
            meta=self.meta,
        )
        try:
            head = orjson.dumps(header_to_json(header)) + b"\n"
        except TypeError as exc:
            self.abort()
            raise TapeFormatError(self.path, f"header meta is not JSON-encodable ({exc})") from None
        final, out = _temp_beside(self.path)
        try:
            with out, self._tmp.open("rb") as events:
                out.write(zstandard.ZstdCompressor(level=self._level).compress(head))
                shutil.copyfileobj(events, out)
            os.replace(final, self.path)
        finally:
            final.unlink(missing_ok=True)
            self._tmp.unlink(missing_ok=True)
        self.header = header
        return header

    def abort(self) -> None:
        """Drop everything written so far; no output file is created."""
        if not self._closed:
            self._raw.close()
            self._closed = True
        self._tmp.unlink(missing_ok=True)


def write_tape(
    path: Path | str,
    events: Iterable[TapeEvent],
    source: str,
    meta: Mapping[str, Any] | None = None,
    amplified: bool = False,
    symbols: Sequence[str] = (),
) -> TapeHeader:
    """Write a whole tape from an iterable of time-ordered events."""
    with TapeWriter(path, source, meta=meta, amplified=amplified, symbols=symbols) as writer:
        writer.write_all(events)
    return writer.close()
