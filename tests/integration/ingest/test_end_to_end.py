"""End to end, Level 1 and Level 2: feed_sim -> `ingest run` (a real subprocess) -> a real
Kafka broker -> a consumer.

What arrives in Kafka is checked against what a direct feed_sim client (the witness, watching
the same symbols from before the core subscribed) received: per TickID the trade price, size,
market center, conditions and time, or the quote's NBBO; per book the Nasdaq MMID rows in the
order they were sent. Plus key = symbol, partition = the symbol's partition from
config/production_symbols.json, topic per type, strictly increasing seq per symbol, and the lag
fields of contract 3 (exchange = the intended time in the message <= recv <= produced).

The tape holds quote rows that change nothing on the top of book (`e2e_tape_events`): feed_sim
sends none of them, so every Level 1 message names a trade or a bid/ask change and becomes a
record (the core's `level1_without_record` stays 0, no TickID is missing). Level 1 is rendered
live, and from pre-rendered rings as `harness run` sends at fixed rates.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from harness.infra.kafka_local import ClusterState, LocalKafka
from ingest.kafka_out import topic_names
from ingest.symbols import SymbolPartitions
from tests.integration.ingest.conftest import (
    E2E_DEPTH_SYMBOLS,
    E2E_SYMBOLS,
    Consumed,
    Witness,
    create_topics,
    ingest_config,
    read_partitions,
    run_ingest,
    sequence_gaps,
    serve_feed_sim,
    symbol_partitions,
    unique_prefix,
    wait_until,
)

pytestmark = pytest.mark.integration

EASTERN = ZoneInfo("America/New_York")
KINDS = ("trade", "quote", "depth")
SANITY_LAG_NS = 5_000_000_000
"""Loose bound on recv - exchange and produced - recv: catches a wrong clock, time zone or
unit (hours off), not a latency target."""
L2_CODES = {"3": "add", "4": "update", "0": "update", "5": "delete", "6": "summary"}


def et_text(ns: int) -> str:
    """UTC ns -> Eastern `HH:MM:SS.ffffff` (the wire form), independently of ingest's parser."""
    seconds, rest = divmod(ns, 1_000_000_000)
    utc = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=rest // 1_000)
    return utc.astimezone(EASTERN).strftime("%H:%M:%S.%f")


def witness_depth_rows(lines: list[str], symbol: str) -> list[tuple[Any, ...]]:
    """(action, side, mmid, price, size, time text) of each Level 2 row of `symbol`."""
    rows: list[tuple[Any, ...]] = []
    for line in lines:
        parts = line.split(",")
        if len(parts) < 7 or parts[0] not in L2_CODES or parts[1] != symbol:
            continue
        action = L2_CODES[parts[0]]
        if action == "delete":  # 5,SYM,<oid>,MMID,side,<time>,date,
            rows.append((action, parts[4], parts[3], None, 0, parts[5]))
        else:  # 4,SYM,<oid>,MMID,side,price,size,<prio>,precision,time,date,
            rows.append((action, parts[4], parts[3], float(parts[5]), int(parts[6]), parts[9]))
    return rows


def record_depth_row(c: Consumed) -> tuple[Any, ...]:
    p = c.record.payload
    time_text = et_text(c.record.exchange_ns) if c.record.exchange_ns else ""
    if p["action"] == "delete":
        return ("delete", p["side"], p["mmid"], None, 0, time_text)
    return (p["action"], p["side"], p["mmid"], p["price"], p["size"], time_text)


def find_run(needle: list[tuple[Any, ...]], haystack: list[tuple[Any, ...]]) -> int:
    """Start of `needle` as a contiguous run inside `haystack`, -1 if absent."""
    for start in range(len(haystack) - len(needle) + 1):
        if haystack[start : start + len(needle)] == needle:
            return start
    return -1


@pytest.mark.parametrize("render", ["live", "ring"])
def test_level1_and_level2_end_to_end(
    kafka_single: tuple[LocalKafka, ClusterState],
    e2e_tape_unchanged_quotes: Path,
    tmp_path: Path,
    render: str,
) -> None:
    _, cluster = kafka_single
    prefix = unique_prefix("l1l2")
    create_topics(cluster.bootstrap, cluster.broker_count, prefix, KINDS)
    table = SymbolPartitions.load()
    topics = topic_names(prefix)
    start_ns = time.time_ns()
    witnesses: list[Witness] = []
    tapes = [e2e_tape_unchanged_quotes]
    with serve_feed_sim(tapes, rate_hz=20.0, l2_rate_hz=10.0, render=render) as feed:
        try:
            level1 = Witness.level1(feed.port("level1"), E2E_SYMBOLS)
            level2 = Witness.level2(feed.port("level2"), E2E_DEPTH_SYMBOLS)
            witnesses += [level1, level2]
            wait_until(lambda: len(level1.level1_by_tick()) == 3, 20, "the witness's quotes")
            config = ingest_config(
                level1_port=feed.port("level1"),
                level2_port=feed.port("level2"),
                bootstrap=cluster.bootstrap,
                prefix=prefix,
                symbols=E2E_SYMBOLS,
            )
            with run_ingest(tmp_path, config) as ingest:

                def enough() -> bool:
                    records = ingest.state()["process"]["records"]
                    return bool(records["trade"] >= 30 and records["depth"] >= 40)

                wait_until(enough, 120, "records from the core")
                # librdkafka's statistics (on by default, every second) reach /metrics
                wait_until(
                    lambda: ingest.metrics().get("kafka_producer_records_sent_total", 0) > 0,
                    60,
                    "the producer's statistics on /metrics",
                )
                scraped = ingest.metrics()
                assert scraped["kafka_producer_produce_requests_total"] > 0
                assert {"kafka_producer_requests_in_flight", "kafka_producer_queue_records"} <= set(
                    scraped
                )
                if render == "ring":  # built in the idle windows between messages
                    wait_until(
                        lambda: feed.control.status()["ring_symbols"] == len(E2E_SYMBOLS),
                        30,
                        "every symbol sent from its rings",
                    )
                feed.control.pause()  # the witness then holds everything the core could get
                time.sleep(0.5)  # and the core has read it
                process = ingest.state()["process"]
                code, stopped = ingest.terminate()
                end_ns = time.time_ns()
                assert code == 0, ingest.stderr_tail()
            time.sleep(0.5)  # let the witness read what was on the wire at the pause
        finally:
            for witness in witnesses:
                witness.close()

    consumed = read_partitions(
        cluster.bootstrap,
        symbol_partitions(prefix, E2E_SYMBOLS, KINDS),
        expected=stopped["delivered"],
    )
    assert stopped["undelivered"] == 0 and stopped["failed"] == 0
    assert len(consumed) == stopped["produced"] == stopped["delivered"], (
        f"read back {len(consumed)} of {stopped['delivered']} delivered record(s); "
        f"missing sequence numbers: {sequence_gaps(consumed)}; first per key: "
        f"{ {(c.record.symbol, c.record.type): c.record.seq for c in reversed(consumed)} }"
    )

    # key, partition, topic; every symbol and every type present
    for c in consumed:
        assert c.key == c.record.symbol.encode()
        assert c.partition == table.partition_of(c.record.symbol)
        assert c.topic == topics[c.record.type]
    seen = {(c.record.symbol, c.record.type) for c in consumed}
    assert {(s, k) for s in E2E_SYMBOLS for k in ("trade", "quote")} <= seen
    assert {(s, "depth") for s in E2E_DEPTH_SYMBOLS} <= seen
    assert ("IBM", "depth") not in seen

    # per-symbol ordering: seq strictly increasing in partition (offset) order
    for symbol in E2E_SYMBOLS:
        for kind in KINDS:
            seqs = [
                c.record.seq for c in consumed if (c.record.symbol, c.record.type) == (symbol, kind)
            ]
            assert seqs == sorted(set(seqs)), f"{symbol} {kind} out of order or duplicated"

    # Level 1: only updates were sent, each became a record
    sent = level1.level1_by_tick()
    for symbol, messages in sent.items():
        for tick, wire in messages.items():
            codes = set(wire["Message Contents"])
            assert codes & set("CEOba"), f"{symbol} TickID {tick}: no trade/bid/ask code"
    assert process["level1_without_record"] == 0 and process["duplicates"]["count"] == 0
    if render == "live":
        # From rings, the `P` summary of the core's watch comes from the live state, which the
        # rings do not advance: its TickID lags, and the core counts the difference as missed
        # (one gap per symbol, not a message lost; the records below have every TickID).
        assert process["tickid_missing"] == 0, process["tickid_gaps"]

    # Level 1: exact content per TickID against the witness; no TickID missed in the range
    for symbol in E2E_SYMBOLS:
        l1 = sorted(
            (c for c in consumed if c.record.symbol == symbol and c.record.type != "depth"),
            key=lambda c: c.record.seq,
        )
        ticks = [c.record.seq for c in l1]
        assert ticks == list(range(ticks[0], ticks[-1] + 1)), f"{symbol}: TickIDs missing"
        for c in l1:
            wire = sent[symbol][c.record.seq]
            p = c.record.payload
            if c.record.type == "trade":
                assert "C" in wire["Message Contents"]
                assert p["price"] == float(wire["Most Recent Trade"])
                assert p["size"] == int(wire["Most Recent Trade Size"])
                assert p["market_center"] == int(wire["Most Recent Trade Market Center"])
                assert p["conditions"] == wire["Most Recent Trade Conditions"]
                assert et_text(c.record.exchange_ns) == wire["Most Recent Trade Time"]
            else:
                assert "C" not in wire["Message Contents"] and "b" in wire["Message Contents"]
                assert p["bid"] == float(wire["Bid"]) and p["ask"] == float(wire["Ask"])
                assert p["bid_size"] == int(wire["Bid Size"])
                assert p["ask_size"] == int(wire["Ask Size"])
                assert p["bid_mc"] == int(wire["Bid Market Center"])
                assert p["ask_mc"] == int(wire["Ask Market Center"])
                assert et_text(c.record.exchange_ns) == max(wire["Bid Time"], wire["Ask Time"])

    # Level 2: the core's live rows are exactly a contiguous run of what the feed sent
    for symbol in E2E_DEPTH_SYMBOLS:
        depth = [c for c in consumed if c.record.symbol == symbol and c.record.type == "depth"]
        assert [c.record.seq for c in depth] == list(range(1, len(depth) + 1))
        rows = [record_depth_row(c) for c in depth]
        summaries = [r for r in rows if r[0] == "summary"]
        assert summaries and rows[: len(summaries)] == summaries, "the snapshot comes first"
        live = rows[len(summaries) :]
        assert len(live) >= 10
        wire_live = [r for r in witness_depth_rows(level2.lines, symbol) if r[0] != "summary"]
        assert find_run(live, wire_live) >= 0, f"{symbol}: depth rows differ from the feed's"
        assert any(r[0] == "delete" for r in live) and any(r[0] == "update" for r in live)

    # lag fields (contract 3): exchange (intended, in the message) <= recv <= produced
    for c in consumed:
        r = c.record
        assert start_ns <= r.recv_ns <= r.produced_ns <= end_ns
        assert r.produced_ns - r.recv_ns < SANITY_LAG_NS
        if r.exchange_ns == 0:
            assert r.type == "depth" and r.payload["action"] == "delete"  # no time on the wire
            continue
        assert start_ns - 1_000 <= r.exchange_ns <= r.recv_ns
        if r.payload.get("action") != "summary":
            assert r.recv_ns - r.exchange_ns < SANITY_LAG_NS
