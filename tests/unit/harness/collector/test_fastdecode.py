"""The C decoder (`harness.collector._fastdecode`) against the msgspec / orjson path.

Whatever the C decoder accepts must decode to the same columns as the general path, which
must find nothing malformed in it; what it refuses goes to the general path (checked by the
decoder's own tests in test_mapping.py, which now run through both).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from contracts.records import FieldMapping
from harness.collector._fastdecode import extract
from harness.collector.mapping import BatchDecoder, DecodedBatch
from ingest.records import FeedRecord

KEYS = (b"symbol", b"type", b"seq", b"exchange_ns", b"recv_ns", b"produced_ns")
INT64_MAX = 2**63 - 1


def reference_value(seq: int = 7) -> bytes:
    return FeedRecord(
        "AAPL",
        "trade",
        seq,
        1_796_000_000_000_000_000 + seq,
        1_796_000_000_000_100_000 + seq,
        1_796_000_000_000_200_000 + seq,
        {"last": 102.39999999999999, "size": 100, "conditions": "3D", "flags": [True, None]},
    ).to_value()


def columns(batch: DecodedBatch) -> tuple[Any, ...]:
    return (
        batch.symbols,
        batch.types,
        batch.seq.tolist(),
        batch.exchange_ns.tolist(),
        batch.recv_ns.tolist(),
        batch.produced_ns.tolist(),
        batch.malformed,
    )


def keys_of(mapping: FieldMapping) -> tuple[bytes | None, ...]:
    """The C decoder's keys of a flat mapping: symbol, type, seq, exchange, recv, produced."""
    names = (mapping.symbol, mapping.type, mapping.seq, mapping.exchange_ns)
    names += (mapping.recv_ns, mapping.produced_ns)
    return tuple(None if name is None else name.encode() for name in names)


def assert_agrees(values: list[bytes], mapping: FieldMapping | None = None) -> bool:
    """If the C decoder accepts `values`, they are JSON, the general path finds nothing
    malformed in them, and both give the same columns; True when it accepted."""
    mapping = mapping or FieldMapping()
    if extract(values, keys_of(mapping), {}) is None:  # type: ignore[arg-type]
        return False
    for value in values:
        orjson.loads(value)  # raises if the C decoder accepted what is not JSON
    general = BatchDecoder(mapping, native=False).decode(values, 1)
    assert general.malformed == 0
    assert columns(BatchDecoder(mapping).decode(values, 1)) == columns(general)
    return True


def test_reference_core_values_take_the_c_path_and_agree() -> None:
    values = [reference_value(i) for i in range(300)]
    assert assert_agrees(values)


def test_strings_are_interned_across_batches() -> None:
    decoder = BatchDecoder()
    first = decoder.decode([reference_value(1)], 1)
    second = decoder.decode([reference_value(2)], 1)
    assert first.symbols[0] is second.symbols[0] and first.types[0] is second.types[0]


@pytest.mark.parametrize(
    ("doc", "accepted"),
    [
        ({"symbol": "A", "seq": INT64_MAX, "exchange_ns": -(2**63)}, True),
        ({"symbol": "A", "seq": 2**63, "exchange_ns": 1}, False),  # outside int64
        ({"symbol": "A", "seq": -0, "exchange_ns": 1}, True),
        ({"symbol": "A", "seq": 1.0, "exchange_ns": 1}, False),
        ({"symbol": "A", "seq": 1, "exchange_ns": 1, "recv_ns": None}, False),
        ({"symbol": "A", "seq": 1, "exchange_ns": 1, "payload": {"x": 1e300}}, False),
        ({"symbol": "A\n", "seq": 1, "exchange_ns": 1}, False),  # escaped symbol
        ({"symbol": "Ä", "seq": 1, "exchange_ns": 1}, False),
        ({"symbol": "", "seq": 1, "exchange_ns": 1}, True),
        ({"seq": 1, "exchange_ns": 1}, False),
        ({"symbol": "A", "seq": True, "exchange_ns": 1}, False),
        ({"symbol": "A", "seq": 1, "exchange_ns": 1, "p": {"q": [[[]], {}, "x\\y"]}}, True),
    ],
)
def test_edge_values(doc: dict[str, Any], accepted: bool) -> None:
    value = json.dumps(doc, ensure_ascii=False).encode()
    assert (extract([value], KEYS, {}) is not None) is accepted
    assert_agrees([value])


@pytest.mark.parametrize(
    "value",
    [
        b'{"symbol":"A","seq":1,"exchange_ns":1,"seq":2}',  # duplicate mapped key
        b'{"symbol":"A","se\\u0071":1,"exchange_ns":1}',  # escaped key
        b'{"symbol":"A","s\\/q":5,"seq":1,"exchange_ns":1}',
        b'{"symbol":"A","seq":1,"exchange_ns":1} x',
        b'{"symbol":"A","seq":01,"exchange_ns":1}',
        b'{"symbol":"A","seq":1,"exchange_ns":1,}',
        b'{"symbol":"A","seq":1,"exchange_ns":1,"p":[1,]}',
        b'{"symbol":"A","seq":1,"exchange_ns":1,"p":tru}',
        b'{"symbol":"A","seq":1,"exchange_ns":1,"p":"\x01"}',
        b'{"symbol":"A","seq":1,"exchange_ns":1,"p":' + b"[" * 40 + b"]" * 40 + b"}",
        b'{"symbol":"A","seq":1,"exchange_ns":-}',
        b"[]",
        b"",
    ],
)
def test_refused_values(value: bytes) -> None:
    assert extract([value], KEYS, {}) is None


def test_whitespace_between_tokens_is_json() -> None:
    value = b' {\n "symbol" : "A" ,\t"seq":\r1 , "exchange_ns" : 2 , "p" : [ 1 , { } ] } \n'
    assert assert_agrees([value])


def test_absent_optional_fields_and_unmapped_keys() -> None:
    mapping = FieldMapping(type=None, produced_ns=None)
    values = [orjson.dumps({"symbol": "A", "seq": 1, "exchange_ns": 2, "type": 9})]
    assert assert_agrees(values, mapping)
    batch = BatchDecoder(mapping).decode(values, 1)
    assert batch.types == [""] and batch.recv_ns.tolist() == [0]


def test_a_refused_value_sends_the_whole_batch_the_general_way() -> None:
    values = [reference_value(1), b"not json", reference_value(2)]
    batch = BatchDecoder().decode(values, 1)
    assert batch.malformed == 1 and batch.seq.tolist() == [1, 2]


ASCII_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8)
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ASCII_TEXT
    | st.text(max_size=8)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ASCII_TEXT, inner, max_size=4),
    max_leaves=12,
)
MAPPED = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64), st.text(max_size=6), JSON_LEAVES, JSON
)


VALID_INT = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value of the mapped field's type, sometimes anything JSON."""
    return st.integers(0, 9).flatmap(lambda roll: valid if roll < 8 else MAPPED)


@settings(max_examples=500, deadline=None)
@given(
    required=st.fixed_dictionaries(
        {"symbol": field(ASCII_TEXT), "seq": field(VALID_INT), "exchange_ns": field(VALID_INT)}
    ),
    optional=st.fixed_dictionaries(
        {},
        optional={
            "type": field(ASCII_TEXT),
            "recv_ns": field(VALID_INT),
            "produced_ns": field(VALID_INT),
        },
    ),
    extra=st.dictionaries(ASCII_TEXT, JSON, max_size=3),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
)
def test_random_documents_agree(
    required: dict[str, Any],
    optional: dict[str, Any],
    extra: dict[str, Any],
    ascii_only: bool,
    indent: int | None,
) -> None:
    doc = {**extra, **required, **optional}
    value = json.dumps(doc, ensure_ascii=ascii_only, indent=indent).encode()
    event(f"C decoder accepted: {assert_agrees([value])}")


@settings(max_examples=400, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(["delete", "insert", "replace"]),
            st.integers(0, 400),
            st.binary(min_size=1, max_size=2),
        ),
        min_size=1,
        max_size=3,
    ),
    cut=st.integers(0, 400),
)
def test_corrupted_values_are_refused_or_agree(
    edits: list[tuple[str, int, bytes]], cut: int
) -> None:
    value = bytearray(reference_value())
    for kind, at, data in edits:
        at %= len(value) + 1
        if kind == "delete":
            del value[at : at + len(data)]
        elif kind == "insert":
            value[at:at] = data
        else:
            value[at : at + len(data)] = data
    for candidate in (bytes(value), bytes(value[: cut % (len(value) + 1)])):
        try:
            orjson.loads(candidate)
        except orjson.JSONDecodeError:
            assert extract([candidate], KEYS, {}) is None
        else:
            assert_agrees([candidate])
