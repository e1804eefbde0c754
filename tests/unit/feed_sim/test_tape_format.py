"""Tests of the tape file format (feed_sim.tape.format): round trip, spec conformance, errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from feed_sim.tape.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    TapeFormatError,
    TapeWriter,
    load_tape,
    read_events,
    read_header,
    write_tape,
)
from feed_sim.tape.model import Kind, TapeEvent

T0 = 1_614_589_200_028_010_000

EVENTS = [
    TapeEvent(T0, "AAPL", Kind.TRADE, {"price": 1.52, "size": 1000, "conditions": "873D17"}),
    TapeEvent(T0, "MSFT", Kind.QUOTE, {"bid": 1.5, "bid_size": 100, "ask": 1.51, "ask_size": 7}),
    TapeEvent(T0 + 5, "AAPL", Kind.DEPTH, {"side": "A", "action": "update", "mmid": "NSDQ"}),
    TapeEvent(T0 + 9, "", Kind.RAW, {"port": "level1", "line": "S,SERVER CONNECTED"}),
]


def _raw_tape(path: Path, header: dict[str, object], rows: Sequence[object]) -> Path:
    """Write a tape by hand, exactly as FORMAT.md describes (one zstd frame)."""
    lines = [orjson.dumps(header)] + [orjson.dumps(r) for r in rows]
    path.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines) + b"\n"))
    return path


def _header(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "format": FORMAT_NAME,
        "format_version": 1,
        "created_ns": 1,
        "source": "hand",
        "symbols": ["AAPL"],
        "start_ns": 10,
        "end_ns": 20,
        "event_count": 2,
        "amplified": False,
        "meta": {},
    }
    base.update(over)
    return base


def test_round_trip_and_header(tmp_path: Path) -> None:
    path = tmp_path / "t.tape.zst"
    with TapeWriter(path, "generated", meta={"seed": 7}, created_ns=123) as writer:
        for e in EVENTS:
            writer.write(e)
    header = writer.close()
    assert header == read_header(path)
    assert header.format_version == FORMAT_VERSION
    assert header.created_ns == 123
    assert header.source == "generated"
    assert header.symbols == ("AAPL", "MSFT")
    assert (header.start_ns, header.end_ns, header.event_count) == (T0, T0 + 9, 4)
    assert header.amplified is False
    assert header.meta == {"seed": 7}
    assert list(read_events(path)) == EVENTS
    assert load_tape(path) == (header, EVENTS)
    assert [p.name for p in tmp_path.iterdir()] == ["t.tape.zst"]


def test_file_layout_matches_spec(tmp_path: Path) -> None:
    path = tmp_path / "t.tape.zst"
    write_tape(path, EVENTS, "generated", amplified=True)
    data = path.read_bytes()
    assert data[:4] == b"\x28\xb5\x2f\xfd"  # zstd magic
    text = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()
    lines = text.split(b"\n")
    assert lines[-1] == b""
    head = orjson.loads(lines[0])
    assert head["format"] == "iqfeed-tape"
    assert head["format_version"] == 1
    assert head["amplified"] is True
    assert orjson.loads(lines[1]) == [T0, "AAPL", "T", EVENTS[0].fields]
    assert orjson.loads(lines[4]) == [T0 + 9, "", "R", EVENTS[3].fields]
    assert len(lines) == 6


def test_reads_a_hand_written_single_frame_tape(tmp_path: Path) -> None:
    rows = [[10, "AAPL", "T", {"price": 1.0, "size": 1}], [20, "AAPL", "Q", {"bid": 1.0}]]
    path = _raw_tape(tmp_path / "hand.tape.zst", _header(), rows)
    header, events = load_tape(path)
    assert header.source == "hand"
    assert events == [
        TapeEvent(10, "AAPL", Kind.TRADE, {"price": 1.0, "size": 1}),
        TapeEvent(20, "AAPL", Kind.QUOTE, {"bid": 1.0}),
    ]


def test_empty_tape(tmp_path: Path) -> None:
    path = tmp_path / "empty.tape.zst"
    header = write_tape(path, [], "generated", symbols=["X"])
    assert (header.event_count, header.start_ns, header.end_ns, header.symbols) == (0, 0, 0, ("X",))
    assert load_tape(path) == (header, [])


def test_writer_rejects_out_of_order_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.tape.zst"
    with pytest.raises(TapeFormatError) as err, TapeWriter(path, "generated") as writer:
        writer.write(TapeEvent(100, "AAPL", Kind.TRADE, {"price": 1.0}))
        writer.write(TapeEvent(99, "MSFT", Kind.TRADE, {"price": 1.0}))
    assert "event #2" in str(err.value)
    assert "MSFT" in str(err.value)
    assert str(path) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_unencodable_fields(tmp_path: Path) -> None:
    path = tmp_path / "t.tape.zst"
    with pytest.raises(TapeFormatError, match="not JSON-encodable"), TapeWriter(path, "g") as w:
        w.write(TapeEvent(1, "AAPL", Kind.TRADE, {"price": object()}))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_writer_rejects_non_finite_floats(tmp_path: Path, value: float) -> None:
    path = tmp_path / "t.tape.zst"
    with pytest.raises(TapeFormatError, match="NaN/infinite"), TapeWriter(path, "g") as w:
        w.write(TapeEvent(1, "AAPL", Kind.TRADE, {"price": value}))


def test_newer_version_is_refused(tmp_path: Path) -> None:
    path = _raw_tape(tmp_path / "new.tape.zst", _header(format_version=2), [])
    with pytest.raises(TapeFormatError, match="newer") as err:
        read_header(path)
    assert str(path) in str(err.value)


def test_wrong_format_name_is_refused(tmp_path: Path) -> None:
    path = _raw_tape(tmp_path / "x.tape.zst", _header(format="other"), [])
    with pytest.raises(TapeFormatError, match="not an iqfeed-tape file") as err:
        load_tape(path)
    assert str(path) in str(err.value)


def test_bad_header_field(tmp_path: Path) -> None:
    path = _raw_tape(tmp_path / "x.tape.zst", _header(event_count="2"), [])
    with pytest.raises(TapeFormatError, match="event_count"):
        read_header(path)


@pytest.mark.parametrize("content", [b"", b"plain text, not zstd\n"])
def test_not_a_tape(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.tape.zst"
    path.write_bytes(content)
    with pytest.raises(TapeFormatError, match="line 1") as err:
        load_tape(path)
    assert str(path) in str(err.value)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "t.tape.zst"
    events = [TapeEvent(i, "AAPL", Kind.TRADE, {"price": 1.0 + i}) for i in range(2000)]
    write_tape(path, events, "generated")
    data = path.read_bytes()
    for cut in (len(data) - 3, len(data) // 2):
        path.write_bytes(data[:cut])
        assert read_header(path).event_count == 2000  # the header frame is intact
        with pytest.raises(TapeFormatError, match="truncated") as err:
            list(read_events(path))
        assert str(path) in str(err.value)
        assert err.value.line is not None


def test_count_mismatch_is_reported(tmp_path: Path) -> None:
    path = _raw_tape(tmp_path / "x.tape.zst", _header(), [[10, "AAPL", "T", {}]])
    with pytest.raises(TapeFormatError, match="header says 2 events but the file holds 1"):
        list(read_events(path))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([10, "AAPL", "T"], "array of 4"),
        (["10", "AAPL", "T", {}], "ts_ns must be an integer"),
        ([10, 5, "T", {}], "symbol must be a string"),
        ([10, "AAPL", "X", {}], "unknown event kind"),
        ([10, "AAPL", "T", []], "fields must be a JSON object"),
        ([5, "AAPL", "T", {}], "earlier than the previous"),
    ],
)
def test_bad_event_lines_name_the_line(tmp_path: Path, row: object, message: str) -> None:
    path = _raw_tape(tmp_path / "x.tape.zst", _header(), [[10, "AAPL", "T", {}], row])
    with pytest.raises(TapeFormatError, match=message) as err:
        list(read_events(path))
    assert err.value.line == 3
    assert f"{path}, line 3" in str(err.value)


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "x.tape.zst"
    body = orjson.dumps(_header()) + b'\n[10,"AAPL","T",{}]\n[11,"AAPL",\n'
    path.write_bytes(zstandard.ZstdCompressor().compress(body))
    with pytest.raises(TapeFormatError, match="not valid JSON") as err:
        list(read_events(path))
    assert err.value.line == 3


_event = st.builds(
    TapeEvent,
    ts_ns=st.integers(0, 2**62),
    symbol=st.text(max_size=8),
    kind=st.sampled_from(list(Kind)),
    fields=st.dictionaries(
        st.text(max_size=6),
        st.one_of(
            st.integers(-(2**53), 2**53),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=10),
        ),
        max_size=4,
    ),
)


@settings(max_examples=50, deadline=None)
@given(events=st.lists(_event, max_size=30))
def test_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory, events: list[TapeEvent]
) -> None:
    events.sort(key=lambda e: e.ts_ns)
    path = tmp_path_factory.mktemp("prop") / "p.tape.zst"
    header = write_tape(path, events, "generated")
    assert load_tape(path) == (header, events)
