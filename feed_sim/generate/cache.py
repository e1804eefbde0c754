"""The on-disk cache of generated sessions: generate once, reuse on every later start.

Owns where cached sessions live (`.cache/tapes/` of the checkout; `$FEED_SIM_CACHE_DIR`
overrides it), what identifies one (`GenerationInputs.key()`: every argument of `generate_days`
that changes its output, plus `generator_version()`, a hash of this package's code and data
and numpy's version), and the file holding one.

A cached session stores the generator's own columns (`SymbolDay`), not tape events: reading
it back gives bit-for-bit the arrays generating would have given, without building a Python
object per event (a 495-symbol, 30-minute session is 15 million events; as an `iqfeed-tape`
file it reads back an order of magnitude slower than generating it).

File layout (`<name>.days.zst`): one zstd frame with its content checksum, holding records of
an 8-byte little-endian length, that many bytes of JSON, then the raw bytes of the arrays the
JSON lists. Records: a header (format, key, inputs, symbols), one per symbol, an end record.
A 16-byte trailer (magic, frame length) follows the frame, so a file cut anywhere is
recognised. Files are written
to a temp file beside the target and renamed into place, so readers only ever see whole files;
a file that is unreadable in any way raises `CacheError` (the caller regenerates), never a
partial session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import secrets
import struct
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt
import zstandard

from feed_sim.generate.depth import DepthColumns
from feed_sim.generate.session import Session
from feed_sim.generate.tape_gen import QuoteColumns, SymbolDay, TradeColumns, generate_days
from feed_sim.generate.universe import SymbolSpec

CACHE_DIR_ENV = "FEED_SIM_CACHE_DIR"
FORMAT_NAME = "feed-sim-generated-session"
FORMAT_VERSION = 1
SUFFIX = ".days.zst"
TRAILER_MAGIC = b"FSDAYS\x00\x01"
TRAILER = struct.Struct("<8sQ")
"""Written after the zstd frame: TRAILER_MAGIC and the frame's length. A file without it was
cut short; a frame of another length was cut (or extended) before it."""
KEEP = 6
"""Cached sessions kept after writing a new one (the most recently used; ~135 MB each for
495 symbols x 30 min)."""
STALE_TEMP_S = 3600.0
"""Temp files older than this are leftovers of a killed writer and are removed."""

_LENGTH = struct.Struct("<Q")
_PACKAGE = Path(__file__).resolve().parent
PROJECT_ROOT = _PACKAGE.parents[1]
"""The checkout (the same rule as `universe.DEFAULT_SYMBOLS_FILE`; feed_sim does not import
the harness's `harness.paths`)."""
_READ_CHUNK = 1 << 22
_PARTS: tuple[tuple[str, type[Any]], ...] = (
    ("trades", TradeColumns),
    ("quotes", QuoteColumns),
    ("depth", DepthColumns),
)


class CacheError(Exception):
    """A cached session file that cannot be trusted: unreadable, cut short, corrupt, or made
    for other inputs. The message names the file."""


@cache
def generator_version() -> str:
    """A hash of everything the generator's output depends on besides its arguments: the
    sources and data files of this package (this module too: a new file layout misses as
    well), and numpy's version (its random streams and distributions may change between
    releases). Any edit here makes cached sessions miss; nobody has to remember to bump a
    constant, and a forgotten bump can never serve a stale session."""
    return source_hash(_PACKAGE, f"numpy {np.__version__}")


def source_hash(package: Path, extra: str = "") -> str:
    """sha256 of `extra`, the `*.py` files of `package` and its `data/` files (names and
    contents)."""
    digest = hashlib.sha256(f"{extra}\n".encode())
    files = sorted(package.glob("*.py")) + sorted(package.glob("data/*"))
    for path in files:
        digest.update(f"{path.relative_to(package).as_posix()}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _spec_values(spec: SymbolSpec) -> list[Any]:
    """Every field of a symbol's spec, float fields as floats."""
    return [
        float(getattr(spec, f.name)) if f.type == "float" else getattr(spec, f.name)
        for f in dataclasses.fields(spec)
    ]


@dataclass(frozen=True)
class GenerationInputs:
    """Every argument of `generate_days` that changes its output (not `workers`)."""

    symbols: tuple[SymbolSpec, ...]
    day: dt.date
    seed: int
    session: Session = "regular"
    include_depth: bool = True
    duration_s: float | None = None
    start_offset_s: float = 0.0
    rate_scale: float = 1.0
    auctions: bool = True

    def describe(self) -> dict[str, Any]:
        """The inputs as JSON data (stored in the cached file's header); numbers normalised
        (30 and 30.0 minutes are the same session)."""
        return {
            "symbols": [_spec_values(s) for s in self.symbols],
            "day": self.day.isoformat(),
            "seed": int(self.seed),
            "session": str(self.session),
            "include_depth": bool(self.include_depth),
            "duration_s": None if self.duration_s is None else float(self.duration_s),
            "start_offset_s": float(self.start_offset_s),
            "rate_scale": float(self.rate_scale),
            "auctions": bool(self.auctions),
        }

    def key(self) -> str:
        """sha256 of the inputs and the generator's version."""
        text = json.dumps(
            {"generator": generator_version(), **self.describe()}, sort_keys=True, allow_nan=False
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def file_name(self) -> str:
        """A readable name ending in the key: day, symbols, minutes, seed."""
        minutes = "all" if self.duration_s is None else f"{self.duration_s / 60:g}"
        return (
            f"{self.day.isoformat()}_{len(self.symbols)}sym_{minutes}min_seed{self.seed}_"
            f"{self.key()[:20]}{SUFFIX}"
        )

    def generate(self, workers: int = 2) -> Iterator[SymbolDay]:
        """Generate the session (what a cached file of these inputs holds)."""
        return generate_days(
            self.symbols,
            self.day,
            self.seed,
            self.session,
            self.include_depth,
            self.duration_s,
            self.start_offset_s,
            self.rate_scale,
            self.auctions,
            workers=workers,
        )


def cache_dir() -> Path:
    """`$FEED_SIM_CACHE_DIR`, else `.cache/tapes/` of the project checkout (`make clean`
    removes `.cache`)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return PROJECT_ROOT / ".cache" / "tapes"


def cache_path(inputs: GenerationInputs, directory: Path | None = None) -> Path:
    """Where the session of `inputs` is cached."""
    return (directory if directory is not None else cache_dir()) / inputs.file_name()


# ---- writing ---------------------------------------------------------------------------------


def _arrays_of(day: SymbolDay) -> tuple[dict[str, Any], list[npt.NDArray[Any]]]:
    """A symbol's record: its JSON description and its arrays, in the order listed."""
    described: dict[str, Any] = {"symbol": day.symbol}
    arrays: list[npt.NDArray[Any]] = []
    for part, _ in _PARTS:
        columns = getattr(day, part)
        if columns is None:
            described[part] = None
            continue
        listed: list[list[Any]] = []
        for field in dataclasses.fields(columns):
            value = getattr(columns, field.name)
            if isinstance(value, np.ndarray):
                if value.dtype.kind not in "biuf" or value.ndim != 1:
                    raise TypeError(
                        f"{day.symbol} {part}.{field.name}: {value.dtype} {value.shape}"
                    )
                array = np.ascontiguousarray(value)
                listed.append([field.name, array.dtype.str, len(array)])
                arrays.append(array)
        described[part] = {"arrays": listed}
        if isinstance(columns, DepthColumns):
            described[part]["mmids"] = list(columns.mmids)
    return described, arrays


class SessionWriter:
    """Writes a cached session: records go to a temp file beside `path`; `commit()` renames it
    into place. Not committed (an exception, `abort()`), nothing is left behind."""

    def __init__(self, path: Path, inputs: GenerationInputs, level: int = 1) -> None:
        self.path = path
        self.inputs = inputs
        self.count = 0
        self._done = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        self._file: IO[bytes] = self._tmp.open("xb")
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._zstd = compressor.stream_writer(self._file, closefd=False)
        header = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "key": inputs.key(),
            "generator": generator_version(),
            "inputs": inputs.describe(),
            "symbols": [s.symbol for s in inputs.symbols],
        }
        try:
            self._record(header, [])
        except BaseException:
            self.abort()
            raise

    def _record(self, described: dict[str, Any], arrays: list[npt.NDArray[Any]]) -> None:
        text = json.dumps(described, allow_nan=False).encode()
        self._zstd.write(_LENGTH.pack(len(text)))
        self._zstd.write(text)
        for array in arrays:
            self._zstd.write(array.data.cast("B"))

    def write(self, day: SymbolDay) -> None:
        """Append the next symbol (in the order of `inputs.symbols`)."""
        expected = self.inputs.symbols[self.count].symbol
        if day.symbol != expected:
            raise ValueError(f"{self.path}: symbol {self.count} is {day.symbol}, not {expected}")
        self._record(*_arrays_of(day))
        self.count += 1

    def commit(self) -> Path:
        """Finish the file and rename it into place (atomic); the final path. A commit that
        fails (missing symbols, an OSError) leaves no file."""
        try:
            if self.count != len(self.inputs.symbols):
                total = len(self.inputs.symbols)
                raise ValueError(f"{self.path}: {self.count} of {total} symbols written")
            self._record({"end": True, "symbols": self.count}, [])
            self._zstd.flush(zstandard.FLUSH_FRAME)  # (close() would add an empty frame)
            self._file.write(TRAILER.pack(TRAILER_MAGIC, self._file.tell()))
            self._file.close()  # no fsync: a file a crash left garbled fails read_session
            os.replace(self._tmp, self.path)
            self._done = True
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Drop the temp file (no-op after a commit)."""
        if not self._file.closed:
            self._file.close()
        if not self._done:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None and not self._done:
            self.commit()
        self.abort()


def write_through(
    path: Path,
    inputs: GenerationInputs,
    days: Iterable[SymbolDay],
    on_error: Callable[[str], None],
) -> Generator[SymbolDay, None, None]:
    """Pass `days` through, writing them to the cache file `path` as they go; the file
    appears when the last one has passed. A cache that cannot be written (read-only checkout,
    full disk) is reported to `on_error` and the days still flow; a consumer that stops early
    leaves no file."""
    writer: SessionWriter | None = None
    try:
        writer = SessionWriter(path, inputs)
    except OSError as exc:
        on_error(f"cannot cache the generated session in {path.parent}: {exc}")
    try:
        for day in days:
            if writer is not None:
                try:
                    writer.write(day)
                except OSError as exc:
                    on_error(f"cannot cache the generated session as {path}: {exc}")
                    writer.abort()
                    writer = None
            yield day
        if writer is not None:
            try:
                writer.commit()
            except OSError as exc:
                on_error(f"cannot cache the generated session as {path}: {exc}")
            else:
                prune(path.parent, keep=path)
    finally:
        if writer is not None:
            writer.abort()


def prune(directory: Path, keep: Path | None = None, max_files: int = KEEP) -> list[Path]:
    """Remove all but the `max_files` most recently used cached sessions (`keep` always
    stays) and temp files a killed writer left; the paths removed."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = [(p, p.stat().st_mtime) for p in directory.iterdir()]
    except OSError:
        return removed
    sessions = sorted(
        ((p, mtime) for p, mtime in entries if p.name.endswith(SUFFIX) and p != keep),
        key=lambda item: item[1],
        reverse=True,
    )
    old = [p for p, _ in sessions[max(0, max_files - (keep is not None)) :]]
    old += [
        p
        for p, mtime in entries
        if p.name.startswith(".") and p.name.endswith(".tmp") and now - mtime > STALE_TEMP_S
    ]
    for p in old:
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


# ---- reading ---------------------------------------------------------------------------------


class _Limited:
    """The first `size` bytes of a file (the zstd frame without the trailer)."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self.fh = fh
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.fh.read(n)
        self.left -= len(data)
        return data


class _Reader:
    """Exact-size reads from the decompressed stream; a short read means a cut file."""

    def __init__(self, path: Path, stream: Any) -> None:
        self.path = path
        self.stream = stream

    def fill(self, buffer: memoryview) -> None:
        filled = 0
        while filled < len(buffer):
            got = self.stream.readinto(buffer[filled : filled + _READ_CHUNK])
            if not got:
                raise CacheError(f"{self.path}: the data ends early (file cut short)")
            filled += got

    def record(self) -> dict[str, Any]:
        head = bytearray(_LENGTH.size)
        self.fill(memoryview(head))
        (length,) = _LENGTH.unpack(head)
        if length > 1 << 26:
            raise CacheError(f"{self.path}: implausible record length {length}")
        text = bytearray(length)
        self.fill(memoryview(text))
        try:
            described = json.loads(text)
        except ValueError as exc:
            raise CacheError(f"{self.path}: a record is not JSON ({exc})") from None
        if not isinstance(described, dict):
            raise CacheError(f"{self.path}: a record is not a JSON object")
        return described

    def array(self, listed: Any) -> tuple[str, npt.NDArray[Any]]:
        try:
            name, dtype_text, length = listed
            dtype = np.dtype(str(dtype_text))
        except (TypeError, ValueError) as exc:
            raise CacheError(f"{self.path}: bad array entry {listed!r} ({exc})") from None
        if dtype.kind not in "biuf" or not isinstance(length, int) or length < 0:
            raise CacheError(f"{self.path}: bad array entry {listed!r}")
        array = np.empty(length, dtype=dtype)
        self.fill(array.data.cast("B"))
        return str(name), array


def _columns(reader: _Reader, symbol: str, part: str, cls: type[Any], described: Any) -> Any:
    if not isinstance(described, dict) or not isinstance(described.get("arrays"), list):
        raise CacheError(f"{reader.path}: {symbol} has no {part} columns")
    values: dict[str, Any] = dict(reader.array(listed) for listed in described["arrays"])
    if cls is DepthColumns:
        mmids = described.get("mmids")
        if not isinstance(mmids, list) or not all(isinstance(m, str) for m in mmids):
            raise CacheError(f"{reader.path}: {symbol} has no valid depth mmids")
        values["mmids"] = tuple(mmids)
    names = {f.name for f in dataclasses.fields(cls)}
    lengths = {len(v) for k, v in values.items() if k != "mmids"}
    if set(values) != names or len(lengths) > 1:
        raise CacheError(f"{reader.path}: {symbol} {part} columns do not match the generator's")
    return cls(**values)


def _symbol_day(reader: _Reader, expected: str) -> SymbolDay:
    described = reader.record()
    if described.get("symbol") != expected:
        raise CacheError(f"{reader.path}: expected {expected}, found {described.get('symbol')!r}")
    parts: dict[str, Any] = {}
    for part, cls in _PARTS:
        raw = described.get(part)
        if raw is None and part == "depth":
            parts[part] = None
        else:
            parts[part] = _columns(reader, expected, part, cls, raw)
    return SymbolDay(expected, parts["trades"], parts["quotes"], parts["depth"])


def read_session(
    path: Path,
    inputs: GenerationInputs,
    on_symbol: Callable[[int], None] | None = None,
) -> list[SymbolDay]:
    """The whole session cached in `path` for `inputs`, checked completely before it is
    returned (`on_symbol(n)` after each symbol read); CacheError if anything is wrong."""
    symbols = [s.symbol for s in inputs.symbols]
    try:
        with path.open("rb") as fh:
            frame_bytes = fh.seek(0, os.SEEK_END) - TRAILER.size
            if frame_bytes <= 0:
                raise CacheError(f"{path}: too short to be a cached session")
            fh.seek(frame_bytes)
            magic, length = TRAILER.unpack(fh.read())
            if magic != TRAILER_MAGIC or length != frame_bytes:
                raise CacheError(f"{path}: no end trailer (file cut short or not a session)")
            fh.seek(0)
            stream = zstandard.ZstdDecompressor().stream_reader(
                cast(IO[bytes], _Limited(fh, frame_bytes))
            )
            reader = _Reader(path, stream)
            header = reader.record()
            if header.get("format") != FORMAT_NAME or header.get("format_version") != 1:
                raise CacheError(f"{path}: not a {FORMAT_NAME} v{FORMAT_VERSION} file")
            if header.get("key") != inputs.key() or header.get("symbols") != symbols:
                raise CacheError(f"{path}: made for other inputs or another generator version")
            days: list[SymbolDay] = []
            for symbol in symbols:
                days.append(_symbol_day(reader, symbol))
                if on_symbol is not None:
                    on_symbol(len(days))
            end = reader.record()
            if end != {"end": True, "symbols": len(symbols)}:
                raise CacheError(f"{path}: bad end record {end!r}")
            if stream.read(1):  # also ends the frame: verifies its checksum
                raise CacheError(f"{path}: data after the end record")
    except CacheError:
        raise
    except (OSError, MemoryError, ValueError, TypeError, zstandard.ZstdError) as exc:
        raise CacheError(f"{path}: {type(exc).__name__}: {exc}") from None
    with contextlib.suppress(OSError):
        os.utime(path)  # most recently used: `prune` keeps it
    return days


__all__ = [
    "CACHE_DIR_ENV",
    "CacheError",
    "GenerationInputs",
    "SessionWriter",
    "cache_dir",
    "cache_path",
    "generator_version",
    "prune",
    "read_session",
    "source_hash",
    "write_through",
]
