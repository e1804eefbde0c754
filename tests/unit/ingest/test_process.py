"""Processor: records per event (contract 4), lag fields, per-symbol depth seq, counters."""

from __future__ import annotations

import orjson

from feed_sim.protocol.fields import Fieldset
from feed_sim.protocol.level1 import Level1State
from feed_sim.protocol.level1_render import render_summary, render_update
from feed_sim.protocol.level2 import render_order, render_order_delete
from feed_sim.protocol.timefmt import et_wall_ns
from ingest.feed.fieldset import INGEST_FIELDS
from ingest.feed.parse import LineParser
from ingest.feed.state import SymbolStates
from ingest.process import Processor, ProcessStats
from ingest.records import FeedRecord

FIELDNAMES = "S,CURRENT UPDATE FIELDNAMES," + ",".join(INGEST_FIELDS)
RECV = et_wall_ns(2025, 11, 24, 10, 0, 0)


def wire(raw: bytes) -> str:
    return raw.decode("latin-1").removesuffix("\r\n")


def ingest_processor(states: SymbolStates | None = None) -> Processor:
    processor = Processor(states or SymbolStates())
    assert processor.handle(FIELDNAMES, RECV) == []
    return processor


def q_line(
    tick: int,
    contents: str,
    *,
    bid_time: str = "09:59:59.000100",
    ask_time: str = "09:59:58.000200",
    symbol: str = "AAPL",
) -> str:
    """A Q line in the INGEST_FIELDS layout."""
    return (
        f"Q,{symbol},225.1200,37,09:59:57.123456,11/24/2025,19,873D17,123456,225.1000,300,"
        f"{bid_time},11,225.1400,500,{ask_time},19,{contents},{tick},"
    )


def test_trade_record() -> None:
    processor = ingest_processor()
    [record] = processor.handle(q_line(7, "Cbav"), RECV)
    assert (record.symbol, record.type, record.seq) == ("AAPL", "trade", 7)
    assert record.exchange_ns == et_wall_ns(2025, 11, 24, 9, 59, 57, 123456)
    assert record.recv_ns == RECV and record.produced_ns == 0
    assert record.payload == {
        "price": 225.12,
        "size": 37,
        "market_center": 19,
        "conditions": "873D17",
        "total_volume": 123456,
        "bid": 225.10,
        "ask": 225.14,
        "contents": "Cbav",
    }
    assert FeedRecord.from_value(record.to_value()) == record
    assert record.recv_ns == RECV and 0 < record.exchange_ns < RECV


def test_quote_record_uses_the_later_changed_side() -> None:
    processor = ingest_processor()
    [both] = processor.handle(q_line(1, "ba"), RECV)
    assert both.type == "quote" and both.seq == 1
    assert both.exchange_ns == et_wall_ns(2025, 11, 24, 9, 59, 59, 100)  # bid is later
    assert both.payload == {
        "bid": 225.10,
        "bid_size": 300,
        "ask": 225.14,
        "ask_size": 500,
        "bid_mc": 11,
        "ask_mc": 19,
    }
    [ask_only] = processor.handle(q_line(2, "a"), RECV)
    assert ask_only.exchange_ns == et_wall_ns(2025, 11, 24, 9, 59, 58, 200)


def test_no_record_for_other_contents_and_summaries() -> None:
    processor = ingest_processor()
    assert processor.handle(q_line(1, "v"), RECV) == []
    assert processor.handle(q_line(2, ""), RECV) == []
    assert processor.handle("P" + q_line(3, "Cbav")[1:], RECV) == []
    stats = processor.stats
    assert stats.level1_without_record == 2 and stats.summaries == 1
    assert processor.states.quote("AAPL").tick_id == 3  # the summary still updated state


def test_tickid_gaps_and_duplicates() -> None:
    processor = ingest_processor()
    for tick in (10, 11, 14, 15, 15, 12, 16, 20):
        processor.handle(q_line(tick, "ba"), RECV)
    stats = processor.stats
    assert stats.tickid_gaps == {"AAPL": 2} and stats.tickid_missing == {"AAPL": 2 + 3}
    assert stats.duplicates == {"AAPL": 2}
    assert stats.records["quote"] == 8  # duplicates are still forwarded
    processor.reset_connection()
    processor.handle(FIELDNAMES, RECV)
    processor.handle(q_line(1, "ba"), RECV)  # a new socket: no false duplicate
    assert processor.stats.duplicates_total == 2


def test_summary_sets_the_baseline_without_a_gap() -> None:
    processor = ingest_processor()
    processor.handle("P" + q_line(100, "")[1:], RECV)
    processor.handle(q_line(101, "ba"), RECV)
    assert processor.stats.gaps_total == 0 and processor.stats.duplicates_total == 0


def test_feed_sim_stream_end_to_end() -> None:
    """feed_sim-rendered lines -> records whose exchange_ns is apply_*'s ts (to the us)."""
    processor = ingest_processor()
    fieldset = Fieldset(INGEST_FIELDS)
    state = Level1State("MSFT", close=410.0)
    t0 = et_wall_ns(2025, 3, 10, 9, 30)  # first trading day after the switch to EDT
    state.apply_quote(t0, 410.0, 100, 410.05, 200, 11, 19)
    processor.handle(wire(render_summary(state, fieldset)), t0)
    expected: list[tuple[str, int, int]] = []
    records: list[FeedRecord] = []
    for i in range(1, 50):
        ts = t0 + i * 1_234_567
        if i % 3:
            state.apply_quote(ts, 410.0 + i / 100, 100 + i, 410.05 + i / 100, 200, 11, 19)
            kind = "quote"
        else:
            state.apply_trade(ts, 410.02, 10 * i, 19, "01", "C")
            kind = "trade"
        expected.append((kind, state.next_tick_id - 1, ts - ts % 1_000))
        records += processor.handle(wire(render_update(state, fieldset)), ts + 900_000)
    assert [(r.type, r.seq, r.exchange_ns) for r in records] == expected
    assert processor.stats.gaps_total == 0 and processor.stats.malformed_total == 0


def test_depth_records_and_book() -> None:
    states = SymbolStates()
    processor = Processor(states)
    ts = et_wall_ns(2022, 4, 1, 17, 52, 38, 59128)
    lines = [
        "6,QQQ,,AMEX,A,408.8400,100,,4,17:52:38.059128,2022-04-01,",
        wire(render_order("4", "QQQ", None, "NSDQ", "B", 408.80, 300, None, 4, ts)),
        "3,@ESZ21,649948133402,,B,4411.50,2,12440218202,2,20:32:47.333543,2021-10-24,",
        wire(render_order_delete("QQQ", None, "AMEX", "A", None, ts)),
        "5,@ESZ21,649948133402,,B,20:32:47.333543,2021-10-24,",
        "7,@NQM22,A,14101.25,37,12,2,09:30:00.000100,2022-04-01,",
        "9,@NQM22,A,14101.25,09:30:00.000200,2022-04-01,",
    ]
    records = [r for line in lines for r in processor.handle(line, RECV)]
    assert [(r.symbol, r.seq) for r in records] == [
        ("QQQ", 1),
        ("QQQ", 2),
        ("@ESZ21", 1),
        ("QQQ", 3),
        ("@ESZ21", 2),
        ("@NQM22", 1),
        ("@NQM22", 2),
    ]
    assert all(r.type == "depth" for r in records)
    assert records[0].payload == {
        "action": "summary",
        "side": "A",
        "mmid": "AMEX",
        "order_id": 0,
        "price": 408.84,
        "size": 100,
        "order_count": 1,
        "level_kind": "mmid",
    }
    assert records[0].exchange_ns == ts
    delete = records[3]
    assert delete.exchange_ns == 0  # Nasdaq delete: empty time
    assert delete.payload["price"] == 408.84 and delete.payload["action"] == "delete"
    assert records[2].payload["order_id"] == 649948133402
    assert records[2].payload["level_kind"] == "order"
    assert records[5].payload["level_kind"] == "price" and records[5].payload["order_count"] == 12
    assert len(states.book("QQQ")) == 1 and len(states.book("@ESZ21")) == 0
    assert len(states.book("@NQM22")) == 0
    orjson.loads(records[0].to_value())


def test_clear_depth_record() -> None:
    states = SymbolStates()
    processor = Processor(states)
    processor.handle("6,QQQ,,AMEX,A,408.8400,100,,4,17:52:38.059128,2022-04-01,", RECV)
    processor.handle("6,QQQ,,AMEX,B,408.8000,100,,4,17:52:38.059128,2022-04-01,", RECV)
    [clear] = processor.handle("S,CLEAR DEPTH,QQQ,A,", RECV)
    assert (clear.type, clear.seq, clear.exchange_ns) == ("depth", 3, 0)
    assert clear.payload["action"] == "clear" and clear.payload["side"] == "A"
    assert clear.payload["level_kind"] == "mmid"
    assert list(states.book("QQQ").mmid_rows) == [("AMEX", "B")]


def test_system_and_error_counters() -> None:
    processor = Processor(SymbolStates())
    for line in (
        "S,KEY,99999",
        "S,SERVER CONNECTED",
        "S,CURRENT PROTOCOL,6.2",
        "S,SYMBOL LIMIT REACHED,AAPL",
        "S,SYMBOL LIMIT REACHED,MSFT",
        "S,SERVER DISCONNECTED",
        "S,SERVER RECONNECT FAILED",
        "n,ZZZZ",
        "q,SPY",
        "q,SPY",
        "E,!SYNTAX_ERROR!,",
        "T,20230530 05:58:26",
        "F,MSFT,5,65.6,",
        "R,AAPL,X,1.23,100,13:00:00,1.24,200,",
        "",
        "Q,bad",
        "\x00\x01",
    ):
        assert processor.handle(line, RECV) == []
    s = processor.stats
    assert s.lines == 17
    assert s.system["SYMBOL LIMIT REACHED"] == 2 and s.limit_reached_symbols == {"AAPL", "MSFT"}
    assert s.server_disconnects == 1 and s.system["SERVER RECONNECT FAILED"] == 1
    assert s.symbols_not_found == 1 and s.not_found == {"ZZZZ"}
    assert s.no_depth_symbols == {"SPY"} and s.errors == 1 and s.fundamentals == 1
    assert s.timestamps == 1 and processor.server_time_ns == et_wall_ns(2023, 5, 30, 5, 58, 26)
    assert s.ignored == {"R": 1}
    assert s.malformed == {"empty": 1, "bad_field_count": 1, "binary": 1}
    counters = s.counters()
    assert counters["malformed_binary_total"] == 1
    assert counters["system_symbol_limit_reached_total"] == 2
    assert all(name.replace("_", "").isalnum() for name in counters)
    json = s.to_json()
    assert json["limit_reached_symbols"] == ["AAPL", "MSFT"]
    orjson.dumps(json)


def test_stats_merge() -> None:
    a, b = ingest_processor(), ingest_processor()
    a.handle(q_line(1, "ba"), RECV)
    a.handle(q_line(5, "ba"), RECV)
    b.handle(q_line(1, "Cv", symbol="MSFT"), RECV)
    b.handle("S,SYMBOL LIMIT REACHED,TSLA", RECV)
    b.handle("", RECV)
    total = ProcessStats() + a.stats + b.stats
    assert total.lines == a.stats.lines + b.stats.lines
    assert total.records == {"trade": 1, "quote": 2, "depth": 0}
    assert total.tickid_gaps == {"AAPL": 1} and total.missing_total == 3
    assert total.limit_reached_symbols == {"TSLA"} and total.malformed == {"empty": 1}
    assert a.stats.records["quote"] == 2  # operands untouched


def test_processors_share_state_but_not_fieldsets() -> None:
    states = SymbolStates()
    l1 = ingest_processor(states)
    other = Processor(states, LineParser())
    l1.handle(q_line(1, "ba"), RECV)
    assert states.quote("AAPL").bid == 225.10
    assert other.parser.fields != l1.parser.fields
