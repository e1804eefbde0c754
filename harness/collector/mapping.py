"""The batch decoder of the SUT's Kafka values, through a `contracts.records.FieldMapping`
(contract 4: which JSON keys hold the symbol, seq, times and type; the reference core's
layout by default).

`BatchDecoder.decode()` turns a batch of Kafka value bytes into numpy columns. When every
mapped key is top-level, the C decoder (`_fastdecode.c`) reads the whole batch in one call: a
validating JSON scanner that takes the mapped fields and skips the rest (the payload) without
building it, and interns the symbol and type strings. It accepts a strict subset of JSON
(ASCII, integer fields, no unicode escapes, ...) and hands anything else back; then msgspec
decodes the batch (values joined into one JSON array) into small typed structs of the mapped
fields. Anything that does not fit those types (a null time, a float sequence, a malformed
value) goes the general way: orjson into dicts, then value by value, counting malformed
values, never raising.
A missing optional time is 0, which the recorder reads as "not available".
"""

from __future__ import annotations

import gc
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from contracts.records import REFERENCE_CORE, FieldMapping
from harness.collector._fastdecode import extract

I64 = npt.NDArray[np.int64]
CHUNK = 256
"""Values per orjson call: the joined text stays below glibc's mmap threshold (128 KB), whose
fresh zero pages cost more than the parse on a small VM."""
INTERNED_MAX = 1 << 16
"""Symbol and type strings kept for interning; past that (a core inventing symbols) the table
starts anew, so it stays bounded."""
_BAD = (
    orjson.JSONDecodeError,
    KeyError,
    IndexError,
    TypeError,
    ValueError,
    AttributeError,
    OverflowError,
)


@dataclass(slots=True)
class DecodedBatch:
    """Columns of the well-formed records of one batch, in arrival order."""

    symbols: list[str]
    types: list[str]
    seq: I64
    exchange_ns: I64
    recv_ns: I64
    produced_ns: I64
    observed_ns: I64
    append_ns: I64
    """The broker's append time (0 = none: not a LogAppendTime topic), as given to decode."""
    malformed: int = 0

    def __len__(self) -> int:
        return len(self.symbols)


def _struct_decoder(mapping: FieldMapping) -> msgspec.json.Decoder[list[Any]]:
    """A msgspec decoder of a JSON array of records into structs of the mapped fields only
    (flat mappings: every key top-level). Optional times default to 0 when absent."""
    fields: list[tuple[str, type, Any] | tuple[str, type]] = [
        ("symbol", str),
        ("seq", int),
        ("exchange_ns", int),
        ("recv_ns", int, 0),
        ("produced_ns", int, 0),
        ("type", str, ""),
    ]
    keys = {
        "symbol": mapping.symbol,
        "seq": mapping.seq,
        "exchange_ns": mapping.exchange_ns,
        "recv_ns": mapping.recv_ns,
        "produced_ns": mapping.produced_ns,
        "type": mapping.type,
    }
    present = [f for f in fields if keys[f[0]] is not None]
    record = msgspec.defstruct(
        "MappedRecord",
        present,
        rename={name: key for name, key in keys.items() if key is not None},
        gc=False,
    )
    return msgspec.json.Decoder(list[record])  # type: ignore[valid-type]


def _path(key: str | None) -> tuple[str, ...] | None:
    return None if key is None else tuple(key.split("."))


def _dig(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _dig_optional(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path[:-1]:
        doc = doc.get(part) or {}
    return doc.get(path[-1]) or 0


class BatchDecoder:
    """Decodes Kafka value bytes into `DecodedBatch` columns per a `FieldMapping`."""

    def __init__(self, mapping: FieldMapping = REFERENCE_CORE, *, native: bool = True) -> None:
        """`native=False`: never the C decoder (the reference of its differential tests)."""
        self.mapping = mapping
        self._symbol = _path(mapping.symbol) or ()
        self._seq = _path(mapping.seq) or ()
        self._exchange = _path(mapping.exchange_ns) or ()
        self._recv = _path(mapping.recv_ns)
        self._produced = _path(mapping.produced_ns)
        self._type = _path(mapping.type)
        paths = [self._symbol, self._type, self._seq, self._exchange, self._recv, self._produced]
        self._flat = all(p is None or len(p) == 1 for p in paths)
        self._structs = _struct_decoder(mapping) if self._flat else None
        self._keys = (
            tuple(None if p is None else p[0].encode() for p in paths)
            if self._flat and native
            else None
        )
        self._interned: dict[str, str] = {}
        self.native_batches = 0
        """Batches the C decoder read; the others went the general way."""
        self.general_batches = 0

    def decode(
        self,
        values: Sequence[bytes],
        observed_ns: int | npt.ArrayLike,
        append_ns: int | npt.ArrayLike = 0,
    ) -> DecodedBatch:
        """Decode `values` observed at `observed_ns` and appended by the broker at `append_ns`
        (each one stamp for the batch, or one per value); the stamps of values that are
        dropped as malformed are dropped with them."""
        observed = np.broadcast_to(np.asarray(observed_ns, dtype=np.int64), (len(values),))
        append = np.broadcast_to(np.asarray(append_ns, dtype=np.int64), (len(values),))
        if self._keys is not None:
            fast = self._extract(values, observed, append)
            if fast is not None:
                return fast
        self.general_batches += 1
        if len(values) <= CHUNK:
            return self._decode(values, observed, append)
        parts = [
            self._decode(values[i : i + CHUNK], observed[i : i + CHUNK], append[i : i + CHUNK])
            for i in range(0, len(values), CHUNK)
        ]
        return DecodedBatch(
            [s for p in parts for s in p.symbols],
            [t for p in parts for t in p.types],
            np.concatenate([p.seq for p in parts]),
            np.concatenate([p.exchange_ns for p in parts]),
            np.concatenate([p.recv_ns for p in parts]),
            np.concatenate([p.produced_ns for p in parts]),
            np.concatenate([p.observed_ns for p in parts]),
            np.concatenate([p.append_ns for p in parts]),
            sum(p.malformed for p in parts),
        )

    def _extract(self, values: Sequence[bytes], observed: I64, append: I64) -> DecodedBatch | None:
        """The C decoder's columns, or None when the batch needs the general path."""
        assert self._keys is not None
        found = extract(
            values if isinstance(values, list) else list(values),
            self._keys,  # type: ignore[arg-type]
            self.strings,
        )
        return None if found is None else self.from_columns(found, observed, append)

    @property
    def native_keys(self) -> tuple[bytes | None, ...] | None:
        """The mapped keys as the C decoder takes them (None: values go the general way)."""
        return self._keys

    @property
    def strings(self) -> dict[str, str]:
        """The C decoder's interning table of symbol and type strings (bounded)."""
        if len(self._interned) > INTERNED_MAX:
            self._interned.clear()
        return self._interned

    def from_columns(
        self,
        found: tuple[list[str], list[str], bytearray],
        observed_ns: int | npt.ArrayLike,
        append_ns: int | npt.ArrayLike = 0,
    ) -> DecodedBatch:
        """The batch of what the C decoder found (`extract`, or `KafkaReader.read` reading
        into columns)."""
        self.native_batches += 1
        symbols, types, ints = found
        n = len(symbols)
        observed = np.broadcast_to(np.asarray(observed_ns, dtype=np.int64), (n,))
        append = np.broadcast_to(np.asarray(append_ns, dtype=np.int64), (n,))
        seq, exchange, recv, produced = np.frombuffer(ints, dtype=np.int64).reshape(4, -1)
        return self._batch(symbols, types, seq, exchange, recv, produced, observed, append, 0)

    def _decode(self, values: Sequence[bytes], observed: I64, append: I64) -> DecodedBatch:
        if not values:
            return self._columns([], observed, append, 0)
        joined = b"[" + b",".join(values) + b"]"
        if self._structs is not None:
            try:
                records = self._structs.decode(joined)
            except (msgspec.DecodeError, msgspec.ValidationError):
                records = None
            if records is not None and len(records) == len(values):
                return self._struct_columns(records, observed, append)
        try:
            docs = orjson.loads(joined)
        except _BAD:
            return self._one_by_one(values, observed, append)
        if len(docs) == len(values):
            try:
                return self._flat_columns(docs, observed, append)
            except _BAD:
                pass
            try:
                return self._columns(docs, observed, append, 0)
            except _BAD:
                pass
        return self._one_by_one(values, observed, append)

    def _one_by_one(self, values: Sequence[bytes], observed: I64, append: I64) -> DecodedBatch:
        good: list[Any] = []
        keep: list[int] = []
        for i, value in enumerate(values):
            try:
                doc = orjson.loads(value)
                self._columns([doc], observed[i : i + 1], append[i : i + 1], 0)
            except _BAD:
                continue
            good.append(doc)
            keep.append(i)
        return self._columns(good, observed[keep], append[keep], len(values) - len(good))

    def _struct_columns(self, records: list[Any], observed: I64, append: I64) -> DecodedBatch:
        """Columns of msgspec-decoded records (types already checked by msgspec)."""
        n = len(records)
        types = [""] * n if self._type is None else [r.type for r in records]
        no_time = np.zeros(n, dtype=np.int64)
        return self._batch(
            [r.symbol for r in records],
            types,
            np.fromiter([r.seq for r in records], np.int64, n),
            np.fromiter([r.exchange_ns for r in records], np.int64, n),
            no_time
            if self._recv is None
            else np.fromiter([r.recv_ns for r in records], np.int64, n),
            no_time
            if self._produced is None
            else np.fromiter([r.produced_ns for r in records], np.int64, n),
            observed,
            append,
            0,
        )

    def _flat_columns(self, docs: list[Any], observed: I64, append: I64) -> DecodedBatch:
        """The fast path: every mapped key top-level and present in every doc."""
        if not self._flat:
            raise KeyError("nested field paths")
        n = len(docs)
        get = operator.getitem

        def ints(path: tuple[str, ...] | None) -> I64:
            if path is None:
                return np.zeros(n, dtype=np.int64)
            return np.fromiter(map(get, docs, repeat(path[0])), np.int64, n)

        symbols = list(map(get, docs, repeat(self._symbol[0])))
        types = [""] * n if self._type is None else list(map(get, docs, repeat(self._type[0])))
        if not set(map(type, symbols)) <= {str} or not set(map(type, types)) <= {str}:
            raise TypeError("symbol or type is not a string")
        return self._batch(
            symbols,
            types,
            ints(self._seq),
            ints(self._exchange),
            ints(self._recv),
            ints(self._produced),
            observed,
            append,
            0,
        )

    def _batch(
        self,
        symbols: list[str],
        types: list[str],
        seq: I64,
        exchange: I64,
        recv: I64,
        produced: I64,
        observed: I64,
        append: I64,
        malformed: int,
    ) -> DecodedBatch:
        unit = self.mapping.time_unit_ns
        if unit != 1:
            exchange, recv, produced = exchange * unit, recv * unit, produced * unit
        return DecodedBatch(
            symbols,
            types,
            seq,
            exchange,
            recv,
            produced,
            np.array(observed),
            np.array(append),
            malformed,
        )

    def _column(self, docs: list[Any], path: tuple[str, ...]) -> list[Any]:
        if len(path) == 1:
            key = path[0]
            return [d[key] for d in docs]
        return [_dig(d, path) for d in docs]

    def _texts(self, docs: list[Any], path: tuple[str, ...]) -> list[Any]:
        """An optional text column ("" where absent)."""
        if len(path) == 1:
            key = path[0]
            return [d.get(key) or "" for d in docs]
        return [_dig_optional(d, path) or "" for d in docs]

    def _optional(self, docs: list[Any], path: tuple[str, ...] | None) -> I64:
        if path is None:
            return np.zeros(len(docs), dtype=np.int64)
        if len(path) == 1:
            key = path[0]
            return np.array([d.get(key) or 0 for d in docs], dtype=np.int64)
        return np.array([_dig_optional(d, path) for d in docs], dtype=np.int64)

    def _columns(self, docs: list[Any], observed: I64, append: I64, malformed: int) -> DecodedBatch:
        """Columns of `docs`; raises (KeyError, TypeError, ...) if any doc does not fit."""
        symbols = self._column(docs, self._symbol)
        types = [""] * len(docs) if self._type is None else self._texts(docs, self._type)
        if not set(map(type, symbols)) <= {str} or not set(map(type, types)) <= {str}:
            raise TypeError("symbol or type is not a string")
        seq = np.array(self._column(docs, self._seq), dtype=np.int64)
        exchange = np.array(self._column(docs, self._exchange), dtype=np.int64)
        recv = self._optional(docs, self._recv)
        produced = self._optional(docs, self._produced)
        return self._batch(
            symbols, types, seq, exchange, recv, produced, observed, append, malformed
        )


def quiet_gc(threshold: int = 100_000) -> None:
    """Raise the generation-0 GC threshold in the collector process.

    The decoder allocates two dicts per record, all acyclic and freed by reference counting;
    with the default threshold (700) the cyclic collector would run every ~350 records for
    nothing (about 0.1-0.3 us per record here).
    """
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(threshold, gen1, gen2)
