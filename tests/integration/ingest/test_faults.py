"""Fault tests of the reference core on a real 3-broker Kafka cluster, with a real feed_sim and
`ingest run` as a real subprocess:

- the feed connections dropped mid-stream (feed_sim `POST /faults/drop`): the core reconnects
  and resubscribes, records resume, and the TickIDs sent while it was away are reported as a
  gap (exactly: feed_sim's sent range minus what reached Kafka);
- a broker (the partition leader) killed and restarted mid-stream: per symbol the seqs in Kafka
  are exactly the TickIDs feed_sim sent, with no duplicate;
- SIGTERM while the feed is flowing: exit 0 and every record the core produced is in Kafka.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from feed_sim.control_client import FeedSimControl
from harness.infra.kafka_clients import admin_client
from harness.infra.kafka_local import ClusterState, LocalKafka
from ingest.kafka_out import topic_names
from ingest.symbols import SymbolPartitions
from tests.integration.ingest.conftest import (
    E2E_DEPTH_SYMBOLS,
    E2E_SYMBOLS,
    Consumed,
    IngestProcess,
    Witness,
    create_topics,
    ingest_config,
    read_partitions,
    run_ingest,
    serve_feed_sim,
    symbol_partitions,
    unique_prefix,
    wait_until,
)

pytestmark = pytest.mark.integration

LEVEL1 = ("trade", "quote")
ALL_KINDS = ("trade", "quote", "depth")


def level1_seqs(consumed: list[Consumed], symbol: str) -> list[int]:
    return sorted(
        c.record.seq for c in consumed if c.record.symbol == symbol and c.record.type in LEVEL1
    )


def records_total(ingest: IngestProcess, kinds: tuple[str, ...] = LEVEL1) -> int:
    records = ingest.state()["process"]["records"]
    return sum(int(records[k]) for k in kinds)


def sent_level1(control: FeedSimControl) -> dict[str, tuple[int, int, int]]:
    """symbol -> (sent, first TickID, last TickID) of feed_sim's current stage."""
    return {s: (c.sent, c.first_seq, c.last_seq) for s, c in control.counters().level1.items()}


def test_feed_drop_reconnects_resubscribes_and_reports_the_gap(
    kafka_triple: tuple[LocalKafka, ClusterState], e2e_tape: Path, tmp_path: Path
) -> None:
    _, cluster = kafka_triple
    prefix = unique_prefix("drop")
    create_topics(cluster.bootstrap, cluster.broker_count, prefix, ALL_KINDS)
    witness: Witness | None = None
    with serve_feed_sim([e2e_tape], rate_hz=20.0, l2_rate_hz=5.0) as feed:
        config = ingest_config(
            level1_port=feed.port("level1"),
            level2_port=feed.port("level2"),
            bootstrap=cluster.bootstrap,
            prefix=prefix,
            symbols=E2E_SYMBOLS,
            connections=1,
            reconnect_initial_s=2.0,  # time for the witness to take TickIDs meanwhile
        )
        try:
            with run_ingest(tmp_path, config) as ingest:
                wait_until(lambda: records_total(ingest) >= 30, 120, "records before the drop")
                before = records_total(ingest, ALL_KINDS)
                depth_before = records_total(ingest, ("depth",))
                dropped = feed.control.fault("drop", port="all")["dropped"]
                assert dropped == 2  # the core's Level 1 and Level 2 sockets
                # While the core backs off, another client keeps the feed sending: these
                # TickIDs never reach the core.
                witness = Witness.level1(feed.port("level1"), E2E_SYMBOLS)

                def resumed() -> bool:
                    return (
                        records_total(ingest, ALL_KINDS) >= before + 60
                        and records_total(ingest, ("depth",)) > depth_before + 5
                    )

                wait_until(resumed, 120, "records after the reconnect")
                feed.control.pause()
                counts = sent_level1(feed.control)
                sent = sum(n for n, _, _ in counts.values())

                def all_in() -> bool:
                    process = ingest.state()["process"]
                    return records_total(ingest) + int(process["tickid_missing"]) == sent

                wait_until(all_in, 30, "the core to read all that was sent")
                state = ingest.state()
                metrics = ingest.metrics()
                code, stopped = ingest.terminate()
                assert code == 0, ingest.stderr_tail()
        finally:
            if witness is not None:
                witness.close()

    # reconnected and resubscribed (both ports)
    assert metrics["ingest_connection_reconnects_total"] >= 2
    for conn in state["connections"]:
        assert conn["reconnects"] >= 1 and conn["connected"] and not conn["subscribing"]
        assert conn["watched"] == conn["symbols"] > 0

    consumed = read_partitions(
        cluster.bootstrap,
        symbol_partitions(prefix, E2E_SYMBOLS, ALL_KINDS),
        expected=stopped["delivered"],
    )
    assert len(consumed) == stopped["produced"] == stopped["delivered"]
    process = state["process"]
    witnessed = witness.level1_by_tick() if witness is not None else {}
    for symbol in E2E_SYMBOLS:
        seqs = level1_seqs(consumed, symbol)
        assert len(seqs) == len(set(seqs))
        n_sent, first, last = counts[symbol]
        expected = set(range(first, last + 1))
        assert n_sent == len(expected)  # every TickID in the range went out (contract 5)
        assert seqs[0] == first and seqs[-1] == last
        missing = expected - set(seqs)
        # the gap: one jump, exactly the TickIDs sent while the core was disconnected
        assert missing, f"{symbol}: nothing was sent while the core was away"
        assert process["tickid_gaps"]["by_symbol"][symbol] == 1
        assert missing == set(range(min(missing), max(missing) + 1))
        assert missing <= set(witnessed[symbol]), "the missing TickIDs went to the witness"
        assert process["duplicates"]["by_symbol"].get(symbol, 0) == 0
    missing_total = sum(
        len(set(range(counts[s][1], counts[s][2] + 1)) - set(level1_seqs(consumed, s)))
        for s in E2E_SYMBOLS
    )
    assert process["tickid_missing"] == missing_total
    assert metrics["ingest_tickid_missing_total"] == missing_total
    assert metrics["ingest_tickid_gaps_total"] == len(E2E_SYMBOLS)
    # Level 2 resubscribed too: depth resumed after the drop, seq still per symbol increasing
    for symbol in E2E_DEPTH_SYMBOLS:
        depth = [c for c in consumed if c.record.symbol == symbol and c.record.type == "depth"]
        seqs = [c.record.seq for c in depth]
        assert seqs == list(range(1, len(seqs) + 1))
        actions = [c.record.payload["action"] for c in depth]
        first_live = next(i for i, a in enumerate(actions) if a != "summary")
        assert "summary" in actions[first_live:], f"{symbol}: no snapshot after the reconnect"


def test_broker_restart_loses_and_duplicates_nothing(
    kafka_triple: tuple[LocalKafka, ClusterState], e2e_tape: Path, tmp_path: Path
) -> None:
    kafka, cluster = kafka_triple
    prefix = unique_prefix("broker")
    create_topics(cluster.bootstrap, cluster.broker_count, prefix, LEVEL1)
    trades = topic_names(prefix)["trade"]
    partition = SymbolPartitions.load().partition_of("AAPL")
    admin = admin_client(cluster.bootstrap)
    leader = admin.list_topics(trades, timeout=30).topics[trades].partitions[partition].leader
    assert leader in {n.node_id for n in cluster.nodes}
    killed = False
    with serve_feed_sim([e2e_tape], rate_hz=100.0) as feed:
        config = ingest_config(
            level1_port=feed.port("level1"),
            level2_port=feed.port("level2"),
            bootstrap=cluster.bootstrap,
            prefix=prefix,
            symbols=E2E_SYMBOLS,
            level2=False,
        )
        try:
            with run_ingest(tmp_path, config) as ingest:
                wait_until(lambda: records_total(ingest) >= 300, 120, "records before the kill")
                kafka.kill_node(leader)  # SIGKILL the leader of AAPL's trades partition
                killed = True
                mark = records_total(ingest)
                wait_until(lambda: records_total(ingest) >= mark + 600, 120, "records meanwhile")
                kafka.restart_node(leader)
                killed = False
                mark = records_total(ingest)
                wait_until(lambda: records_total(ingest) >= mark + 300, 120, "records after")
                feed.control.pause()
                counts = sent_level1(feed.control)
                sent = sum(n for n, _, _ in counts.values())
                wait_until(lambda: records_total(ingest) == sent, 30, "the core to read all")
                code, stopped = ingest.terminate(timeout_s=180)
                assert code == 0, ingest.stderr_tail()
        finally:
            if killed:
                kafka.restart_node(leader)  # leave the module's cluster whole

    assert stopped["undelivered"] == 0 and stopped["failed"] == 0
    consumed = read_partitions(
        cluster.bootstrap,
        symbol_partitions(prefix, E2E_SYMBOLS, LEVEL1),
        expected=stopped["delivered"],
    )
    assert len(consumed) == stopped["produced"] == stopped["delivered"] == sent
    for symbol in E2E_SYMBOLS:
        seqs = level1_seqs(consumed, symbol)
        duplicates = [seq for seq, n in Counter(seqs).items() if n > 1]
        assert duplicates == [], f"{symbol}: duplicated seqs {duplicates[:10]}"
        n_sent, first, last = counts[symbol]
        assert set(seqs) == set(range(first, last + 1)) and len(seqs) == n_sent
    for c in consumed:  # per-partition order kept through the leader change
        same = [x.record.seq for x in consumed if (x.topic, x.partition) == (c.topic, c.partition)]
        assert same == sorted(same)


def test_sigterm_while_flowing_delivers_everything_produced(
    kafka_triple: tuple[LocalKafka, ClusterState], e2e_tape: Path, tmp_path: Path
) -> None:
    _, cluster = kafka_triple
    prefix = unique_prefix("term")
    create_topics(cluster.bootstrap, cluster.broker_count, prefix, ALL_KINDS)
    with serve_feed_sim([e2e_tape], rate_hz=400.0, l2_rate_hz=100.0) as feed:
        config = ingest_config(
            level1_port=feed.port("level1"),
            level2_port=feed.port("level2"),
            bootstrap=cluster.bootstrap,
            prefix=prefix,
            symbols=E2E_SYMBOLS,
        )
        with run_ingest(tmp_path, config) as ingest:
            wait_until(lambda: records_total(ingest, ALL_KINDS) >= 3000, 120, "a flowing feed")
            assert feed.control.status()["running"] and not feed.control.status()["paused"]
            code, stopped = ingest.terminate()  # the feed keeps sending meanwhile
            assert code == 0, ingest.stderr_tail()
            assert ingest.proc.returncode == 0

    assert stopped["undelivered"] == 0 and stopped["failed"] == 0
    assert stopped["produced"] == stopped["delivered"] >= 3000
    consumed = read_partitions(
        cluster.bootstrap,
        symbol_partitions(prefix, E2E_SYMBOLS, ALL_KINDS),
        expected=stopped["delivered"],
    )
    assert len(consumed) == stopped["produced"]
    for symbol in E2E_SYMBOLS:
        seqs = level1_seqs(consumed, symbol)
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"{symbol}: lost or duplicated"
    for symbol in E2E_DEPTH_SYMBOLS:
        seqs = [
            c.record.seq for c in consumed if (c.record.symbol, c.record.type) == (symbol, "depth")
        ]
        assert seqs == list(range(1, len(seqs) + 1))
