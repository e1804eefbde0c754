"""Tests of amplification (feed_sim.tape.amplify): many targets from fewer source tapes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from feed_sim.tape.amplify import amplify, plan, rescale, write_amplified_tape
from feed_sim.tape.format import load_tape
from feed_sim.tape.model import Kind, TapeEvent

S = 1_000_000_000
T0 = 1_614_600_000 * S


def _source(symbol: str, n: int, price: float, step_ns: int) -> list[TapeEvent]:
    """A small single-symbol tape: trades with the NBBO, quotes, a depth row, some ties."""
    events: list[TapeEvent] = []
    fields: dict[str, Any]
    for i in range(n):
        p = round(price + 0.01 * (i % 7), 4)
        ts = T0 + (i // 2) * step_ns  # pairs share a timestamp
        if i % 3 == 0:
            fields = {"bid": p - 0.01, "bid_size": 100, "ask": p + 0.01, "ask_size": 200 + i}
            events.append(TapeEvent(ts, symbol, Kind.QUOTE, fields))
        elif i % 5 == 0:
            fields = {"side": "B", "action": "update", "mmid": "NSDQ", "order_id": 0,
                      "price": p, "size": 300}  # fmt: skip
            events.append(TapeEvent(ts, symbol, Kind.DEPTH, fields))
        else:
            fields = {"price": p, "size": 17 + i, "market_center": 19, "conditions": "873D17",
                      "basis": "C", "aggressor": 0, "bid": p - 0.01, "ask": p + 0.0001,
                      "total_volume": 1000 + i, "source_tick_id": i}  # fmt: skip
            events.append(TapeEvent(ts, symbol, Kind.TRADE, fields))
    return events


SOURCES = {"SRC1": _source("SRC1", 400, 1.50, S // 3), "SRC2": _source("SRC2", 250, 20.00, S)}
TARGETS = [("AAA", 150.0), ("BBB", 3.0), ("CCC", 0.9), ("DDD", 42.42), ("EEE", 1.5)]


def _on_grid(x: float) -> bool:
    return abs(x * 100 - round(x * 100)) < 1e-6


def test_counts_labels_and_order() -> None:
    out = amplify(SOURCES, TARGETS, seed=1, max_offset_s=30)
    per_target = Counter(e.symbol for e in out)
    assert per_target == {"AAA": 400, "BBB": 250, "CCC": 400, "DDD": 250, "EEE": 400}
    assert [e.ts_ns for e in out] == sorted(e.ts_ns for e in out)
    for target, source in zip(("AAA", "BBB", "CCC"), ("SRC1", "SRC2", "SRC1"), strict=True):
        mine = [e for e in out if e.symbol == target]
        src = SOURCES[source]
        assert Counter(e.kind for e in mine) == Counter(e.kind for e in src)
        assert all(src[0].ts_ns <= e.ts_ns <= src[-1].ts_ns for e in mine)
        sizes = Counter(e.fields.get("size") for e in mine)
        assert sizes == Counter(e.fields.get("size") for e in src)
        assert {e.fields.get("conditions") for e in mine} == {
            e.fields.get("conditions") for e in src
        }


def test_prices_rescaled_on_grid_with_bid_below_ask() -> None:
    out = amplify(SOURCES, TARGETS, seed=1, max_offset_s=30)
    for e in out:
        for key in ("price", "bid", "ask"):
            if key in e.fields:
                assert _on_grid(e.fields[key]), e
                assert e.fields[key] >= 0.01
        if "bid" in e.fields and "ask" in e.fields:
            assert e.fields["bid"] < e.fields["ask"], e
    factor = 150.0 / 1.51  # AAA's target price over SRC1's first trade price
    src_prices = Counter(e.fields["price"] for e in SOURCES["SRC1"] if e.kind is Kind.TRADE)
    aaa_prices = Counter(
        e.fields["price"] for e in out if e.symbol == "AAA" and e.kind is Kind.TRADE
    )
    assert aaa_prices == Counter({round(p * factor, 2): n for p, n in src_prices.items()})


def test_first_price_maps_to_target_price() -> None:
    plans = plan(SOURCES, TARGETS, seed=1, max_offset_s=30)
    assert [p.source for p in plans] == ["SRC1", "SRC2", "SRC1", "SRC2", "SRC1"]
    first_src1 = next(e for e in SOURCES["SRC1"] if e.kind is Kind.TRADE).fields["price"]
    assert rescale(first_src1, plans[0].factor) == 150.0
    assert rescale(first_src1, plans[4].factor) == 1.5


def test_deterministic_and_seed_dependent() -> None:
    a = amplify(SOURCES, TARGETS, seed=7, max_offset_s=60)
    assert a == amplify(SOURCES, TARGETS, seed=7, max_offset_s=60)
    assert a != amplify(SOURCES, TARGETS, seed=8, max_offset_s=60)


def test_offsets_break_lockstep() -> None:
    targets = [("AAA", 1.5), ("CCC", 1.5)]  # same source (SRC1 only), same price
    out = amplify({"SRC1": SOURCES["SRC1"]}, targets, seed=3, max_offset_s=60)
    times = {s: [e.ts_ns for e in out if e.symbol == s] for s in ("AAA", "CCC")}
    assert times["AAA"] != times["CCC"]
    plans = plan({"SRC1": SOURCES["SRC1"]}, targets, seed=3, max_offset_s=60)
    assert all(0 <= p.offset_ns <= 60 * S for p in plans)


def test_zero_offset_is_identity_up_to_labels_and_prices() -> None:
    src = SOURCES["SRC1"]
    out = amplify({"SRC1": src}, [("X", 1.5)], seed=1, max_offset_s=0)
    assert [(e.ts_ns, e.kind) for e in out] == [(e.ts_ns, e.kind) for e in src]
    assert all(e.symbol == "X" for e in out)


def test_locked_source_quote_keeps_its_shape() -> None:
    src = [
        TapeEvent(T0, "S", Kind.TRADE, {"price": 10.0, "bid": 10.0, "ask": 10.0}),
        TapeEvent(T0 + 1, "S", Kind.QUOTE, {"bid": 10.0, "ask": 10.001}),
        TapeEvent(T0 + 2, "S", Kind.QUOTE, {"bid": 0.0, "ask": 10.0}),
    ]
    out = amplify({"S": src}, [("T", 1.0)], seed=1, max_offset_s=0)
    assert (out[0].fields["bid"], out[0].fields["ask"]) == (1.0, 1.0)  # locked stays locked
    assert (out[1].fields["bid"], out[1].fields["ask"]) == (1.0, 1.01)  # bid < ask kept
    assert (out[2].fields["bid"], out[2].fields["ask"]) == (0.0, 1.0)  # missing side stays


def test_write_amplified_tape(tmp_path: Path) -> None:
    path = tmp_path / "amp.tape.zst"
    header = write_amplified_tape(path, SOURCES, TARGETS, seed=5, max_offset_s=10)
    assert header.amplified is True
    assert header.meta["amplified_from"] == {
        "AAA": "SRC1", "BBB": "SRC2", "CCC": "SRC1", "DDD": "SRC2", "EEE": "SRC1"
    }  # fmt: skip
    assert header.symbols == ("AAA", "BBB", "CCC", "DDD", "EEE")
    assert header.source == "amplified:SRC1+SRC2"
    loaded_header, events = load_tape(path)
    assert loaded_header == header
    assert events == amplify(SOURCES, TARGETS, seed=5, max_offset_s=10)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="unique"):
        amplify(SOURCES, [("A", 1.0), ("A", 2.0)], seed=1, max_offset_s=1)
    with pytest.raises(ValueError, match="positive"):
        amplify(SOURCES, [("A", 0.0)], seed=1, max_offset_s=1)
    with pytest.raises(ValueError, match="no source"):
        amplify({}, [("A", 1.0)], seed=1, max_offset_s=1)
    raw = [TapeEvent(T0, "", Kind.RAW, {"port": "level1", "line": "x"})]
    with pytest.raises(ValueError, match="RAW"):
        amplify({"R": raw}, [("A", 1.0)], seed=1, max_offset_s=1)
    unordered = list(reversed(SOURCES["SRC2"]))
    with pytest.raises(ValueError, match="time order"):
        amplify({"U": unordered}, [("A", 1.0)], seed=1, max_offset_s=1)


def test_offsets_never_move_a_print_out_of_its_session_segment() -> None:
    """Prints up to the 16:00 close and after-hours ones (2021-03-01, EST: 21:00 UTC) stay on
    their side of the close whatever the offset, and all stay within 04:00-20:00 ET."""
    close = 1_614_632_400 * S  # 2021-03-01 16:00:00 ET
    src = [
        TapeEvent(close + k * S, "S", Kind.TRADE,
                  {"price": 1.5, "size": 100, "conditions": "17" if k >= 0 else "01"})
        for k in range(-300, 300, 7)
    ]  # fmt: skip
    out = amplify({"S": src}, [(f"T{i}", 1.5) for i in range(8)], seed=2, max_offset_s=600)
    for e in out:
        after = e.ts_ns >= close
        assert after == (e.fields["conditions"] == "17"), e
        assert close - 300 * S <= e.ts_ns < close + 300 * S
