"""The ClickHouse sink's cost and its storage hop, as `harness run` runs it (scenario `storage`).

A local 1-broker Kafka with the three feed topics (LogAppendTime, one partition per universe
symbol, as the reference core writes them); reference-core records (`FeedRecord`, trade /
quote / depth in the ratio 1:1:2 over the first N symbols of the universe) produced at a fixed
rate by another process through the core's own `KafkaOutput`; the real `ingest
clickhouse-writer` process, embedded ClickHouse (chdb) in a temporary folder, started and read
exactly as a run does (`harness.storage_writer.StorageWriter`: a window over the measured
seconds, then the reconcile cut).

Printed per rate: the writer process's CPU (psutil, its threads and chdb's included) in cores
and per message, the storage hop (Kafka append -> row visible) P50/P99/max with its wait
(fetch + batch) and insert P99s, batches, the reconciliation (Kafka records vs rows after
FINAL) and the host's busy cores meanwhile.

Target: storage hop P99 < 1,000 ms at 5,000 msg/s (ramp_495's stage-1 rate and its
`storage_lag_p99_ms`). Exit 1 when missed (full mode only).

    .venv/bin/python bench/bench_clickhouse_writer.py            # 5,000 and 20,000 msg/s, 30 s
    .venv/bin/python bench/bench_clickhouse_writer.py --quick    # CI smoke: 2,000 msg/s, 10 s
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts import hdr  # noqa: E402
from harness.infra.kafka_local import LocalKafka  # noqa: E402
from harness.infra.topics import ensure_topics, feed_topic_specs  # noqa: E402
from harness.scenario import StorageConfig  # noqa: E402
from harness.storage_writer import StorageWriter  # noqa: E402
from harness.symbols import load_universe  # noqa: E402
from ingest.kafka_out import topic_names  # noqa: E402

TARGET_RATE = 5_000
TARGET_P99_MS = 1_000.0
KINDS = ("trade", "quote", "depth", "depth")


def produce(bootstrap: str, symbols: list[str], rate: int, seconds: float) -> None:
    """Reference-core records at `rate` msg/s for `seconds` (paced every 2 ms)."""
    from ingest.kafka_out import KafkaOutput
    from ingest.records import FeedRecord
    from ingest.symbols import SymbolPartitions

    out = KafkaOutput(bootstrap, SymbolPartitions.load().partition_of)
    tick = {
        "last": 101.25, "last_size": 100, "bid": 101.2, "ask": 101.3, "bid_size": 3,
        "ask_size": 4, "market_center": 11, "conditions": "3D",
    }  # fmt: skip
    depth = {"op": "4", "side": "B", "mmid": "NSDQ", "price": 10.5, "size": 100}
    start, sent = time.monotonic(), 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            now = time.time_ns()
            kind = KINDS[sent % len(KINDS)]
            payload = depth if kind == "depth" else {**tick, "total_volume": 1000 + sent}
            symbol = symbols[sent % len(symbols)]
            out.send(FeedRecord(symbol, kind, sent + 1, now - 2_000_000, now - 10**6, now, payload))
            sent += 1
        out.poll(0)
        time.sleep(0.002)
    out.flush(60)


def measure(bootstrap: str, symbols: list[str], rate: int, seconds: float, run: Path) -> bool:
    """One rate: start the writer, produce, measure the middle `seconds`; True if on target."""
    writer = StorageWriter(StorageConfig(clickhouse="embedded"), run)
    topics = list(topic_names().values())
    writer.start(bootstrap, topics)
    assert writer.pid is not None
    proc = psutil.Process(writer.pid)
    context = multiprocessing.get_context("spawn")
    producer = context.Process(target=produce, args=(bootstrap, symbols, rate, seconds + 8))
    try:
        producer.start()
        time.sleep(4)  # the writer's group has joined and batches have settled
        label = f"rate-{rate}"
        writer.open_window(label, time.time_ns())
        cpu0, host0, t0 = sum(proc.cpu_times()[:2]), psutil.cpu_times(), time.monotonic()
        time.sleep(seconds)
        cpu1, host1, t1 = sum(proc.cpu_times()[:2]), psutil.cpu_times(), time.monotonic()
        writer.close_window(label, time.time_ns())
        producer.join()
        hold = writer.reconcile(label)
    finally:
        if producer.is_alive():
            producer.terminate()
        writer.stop()
    cores = (cpu1 - cpu0) / (t1 - t0)
    busy = sum(host1) - sum(host0) - (host1.idle - host0.idle) - (host1.iowait - host0.iowait)
    messages = hold.storage.get_total_count()
    lag, wait, insert = (hdr.percentiles(h) for h in (hold.storage, hold.wait, hold.insert))
    rec = hold.reconciliation
    print(
        f"{rate:,} msg/s over {len(symbols)} symbols, {seconds:g} s measured: writer "
        f"{cores:.2f} cores = {1e6 * cores * (t1 - t0) / max(messages, 1):.1f} us/msg; "
        f"host busy {busy / (t1 - t0):.2f} of {os.cpu_count()} cores"
    )
    print(
        f"  storage hop P50 {lag['p50'] / 1e3:.0f} ms, P99 {lag['p99'] / 1e3:.0f} ms, max "
        f"{lag['max'] / 1e3:.0f} ms ({messages:,} records); wait P99 {wait['p99'] / 1e3:.0f} ms; "
        f"insert P50 {insert['p50'] / 1e3:.0f} / P99 {insert['p99'] / 1e3:.0f} ms over "
        f"{hold.batches:,} batches ({messages / max(hold.batches, 1):,.0f} records each)"
    )
    print(
        f"  reconciliation: caught up {rec.caught_up}, {rec.kafka_records:,} Kafka records, "
        f"{rec.rows_final:,} rows after FINAL (mismatch {rec.mismatch}, count {rec.count_s:.2f} s)"
    )
    return lag["p99"] / 1e3 < TARGET_P99_MS and rec.caught_up and rec.mismatch == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 2,000 msg/s, 10 s")
    parser.add_argument("--symbols", type=int, default=50, help="symbols (default 50)")
    args = parser.parse_args()
    rates, seconds = ([2_000], 10.0) if args.quick else ([TARGET_RATE, 20_000], 30.0)
    print(
        f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB, "
        f"Python {platform.python_version()}, {platform.platform()}"
    )
    universe = load_universe(ROOT / "config" / "production_symbols.json")
    symbols = [s.symbol for s in universe.symbols[: args.symbols]]
    met: dict[int, bool] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ch-writer-") as tmp:
        kafka = LocalKafka(state_dir=Path(tmp) / "kafka")
        state = kafka.up(brokers=1)
        try:
            names = tuple(topic_names().values())
            ensure_topics(state.bootstrap, feed_topic_specs(1, len(universe.symbols), names=names))
            for rate in rates:
                run = Path(tmp) / f"run-{rate}"
                (run / "logs").mkdir(parents=True)
                met[rate] = measure(state.bootstrap, symbols, rate, seconds, run)
        finally:
            kafka.down()
    if TARGET_RATE in met:
        verdict = "PASS" if met[TARGET_RATE] else "FAIL"
        print(
            f"target: storage hop P99 < {TARGET_P99_MS:,.0f} ms at {TARGET_RATE:,} msg/s, "
            f"reconciled: {verdict}"
        )
        return 0 if met[TARGET_RATE] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
