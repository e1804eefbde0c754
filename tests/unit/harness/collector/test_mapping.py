"""The field mapping and batch decoder: reference layout, user layouts, malformed values."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from contracts.records import FieldMapping
from harness.collector.mapping import BatchDecoder
from ingest.records import FeedRecord


def _record(seq: int, **kw: object) -> bytes:
    fields: dict[str, object] = {
        "symbol": "AAPL",
        "type": "trade",
        "seq": seq,
        "exchange_ns": 1_000 + seq,
        "recv_ns": 2_000 + seq,
        "produced_ns": 3_000 + seq,
        "payload": {"last": 1.5},
    }
    fields.update(kw)
    return FeedRecord(**fields).to_value()  # type: ignore[arg-type]


def test_reference_core_records_decode_to_columns() -> None:
    values = [_record(i) for i in range(600)]  # more than one orjson chunk
    batch = BatchDecoder().decode(values, 9_000)
    assert len(batch) == 600 and batch.malformed == 0
    assert batch.symbols[0] == "AAPL" and batch.types[-1] == "trade"
    assert batch.seq.tolist() == list(range(600))
    assert batch.exchange_ns[5] == 1_005 and batch.recv_ns[5] == 2_005
    assert batch.produced_ns[5] == 3_005 and batch.observed_ns.tolist() == [9_000] * 600


def test_malformed_values_are_counted_not_raised() -> None:
    values = [
        _record(1),
        b"not json",
        b'{"symbol": "AAPL"}',  # no seq / exchange time
        b'{"symbol": 7, "seq": 1, "exchange_ns": 1}',  # symbol not a string
        b'{"symbol": "X", "seq": "one", "exchange_ns": 1}',
        b"[1, 2]",
        b"",
        b'{"a": 1}, {"b": 2}',
        _record(2),
    ]
    batch = BatchDecoder().decode(values, np.arange(len(values)))
    assert batch.malformed == 7
    assert batch.seq.tolist() == [1, 2]
    assert batch.observed_ns.tolist() == [0, 8]  # per-value stamps follow the kept records
    appended = BatchDecoder().decode(values, 5, np.arange(len(values)) * 10)
    assert appended.append_ns.tolist() == [0, 80] and appended.observed_ns.tolist() == [5, 5]


def test_missing_optional_stamps_are_zero() -> None:
    value = orjson.dumps({"symbol": "A", "type": "quote", "seq": 3, "exchange_ns": 5})
    nulls = orjson.dumps({"symbol": "A", "seq": 4, "exchange_ns": 6, "recv_ns": None})
    batch = BatchDecoder().decode([value, nulls], 10)
    assert batch.malformed == 0
    assert batch.recv_ns.tolist() == [0, 0] and batch.produced_ns.tolist() == [0, 0]
    assert batch.types == ["quote", ""]


def test_user_core_mapping_with_nested_keys_and_microseconds() -> None:
    mapping = FieldMapping.from_dict(
        {
            "symbol": "sym",
            "seq": "meta.n",
            "exchange_ns": "t.feed_us",
            "recv_ns": "t.read_us",
            "produced_ns": None,
            "type": None,
            "time_unit_ns": 1000,
        }
    )
    value = orjson.dumps({"sym": "MSFT", "meta": {"n": 9}, "t": {"feed_us": 5, "read_us": 7}})
    batch = BatchDecoder(mapping).decode([value], 1)
    assert batch.symbols == ["MSFT"] and batch.seq.tolist() == [9] and batch.types == [""]
    assert batch.exchange_ns.tolist() == [5000] and batch.recv_ns.tolist() == [7000]
    assert batch.produced_ns.tolist() == [0]


def test_unknown_mapping_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="sequence"):
        FieldMapping.from_dict({"sequence": "seq"})


def test_empty_batch() -> None:
    batch = BatchDecoder().decode([], 0)
    assert len(batch) == 0 and batch.seq.size == 0


def test_flat_user_mapping_with_renamed_keys() -> None:
    mapping = FieldMapping.from_dict(
        {"symbol": "s", "seq": "n", "exchange_ns": "ex", "recv_ns": "rx", "produced_ns": None,
         "type": "kind", "time_unit_ns": 1000}
    )  # fmt: skip
    values = [orjson.dumps({"s": "IBM", "n": i, "ex": 10 + i, "rx": 20 + i, "kind": "q",
                            "payload": {"deep": [1, {"x": None}]}}) for i in range(3)]  # fmt: skip
    batch = BatchDecoder(mapping).decode(values, 5)
    assert batch.malformed == 0 and batch.symbols == ["IBM"] * 3 and batch.types == ["q"] * 3
    assert batch.seq.tolist() == [0, 1, 2] and batch.exchange_ns.tolist() == [
        10_000,
        11_000,
        12_000,
    ]
    assert (
        batch.recv_ns.tolist() == [20_000, 21_000, 22_000] and batch.produced_ns.tolist() == [0] * 3
    )


def test_batches_equal_an_independent_decode() -> None:
    """Mixed batches (well-formed, odd-but-valid, malformed) against orjson value by value."""
    rng = np.random.default_rng(3)
    values: list[bytes] = []
    for i in range(900):
        doc: dict[str, object] = {"symbol": f"S{i % 7}", "seq": i, "exchange_ns": 10 * i}
        roll = rng.random()
        if roll < 0.5:
            doc |= {"type": "quote", "recv_ns": 10 * i + 3, "produced_ns": 10 * i + 5}
        elif roll < 0.6:
            doc |= {"recv_ns": None}  # null time: 0
        elif roll < 0.65:
            doc = {"symbol": None, "seq": i}  # malformed
        values.append(orjson.dumps(doc))
    batch = BatchDecoder().decode(values, 1)
    docs = [orjson.loads(v) for v in values]
    good = [d for d in docs if isinstance(d.get("symbol"), str)]
    assert batch.malformed == len(docs) - len(good)
    assert batch.symbols == [d["symbol"] for d in good]
    assert batch.types == [d.get("type") or "" for d in good]
    assert batch.seq.tolist() == [d["seq"] for d in good]
    assert batch.exchange_ns.tolist() == [d["exchange_ns"] for d in good]
    assert batch.recv_ns.tolist() == [d.get("recv_ns") or 0 for d in good]
    assert batch.produced_ns.tolist() == [d.get("produced_ns") or 0 for d in good]
