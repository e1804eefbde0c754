"""Kafka producer and broker designs side by side, at the ramp's loads, on one local broker.

Why (../shared/findings/kafka-produce-latency.md): librdkafka puts one partition in each
ProduceRequest, so with one partition per symbol at ~100 msg/s each the reference core sent
about one request per record, records waited in librdkafka's partition queue and the broker's
CPU followed the request count. This benchmark measures, in one session, the designs that
could change that, so the reference core and the local broker can use the best and a team can
see what its own settings cost.

Each design is the reference core's own producer (`ingest.kafka_out.KafkaOutput`: acks=all,
idempotence, the bounded queue with back-pressure and delivery accounting) in its own process,
open-loop paced: record k is due at start + k / rate whatever happened before (its intended
time), symbols taken in turn (the first N of config/production_symbols.json), one record in
`--trade-every` a trade, the rest quotes, values like the core's (~200-byte JSON). A local
1-broker Kafka 4 (KRaft, loopback) with topics that stamp LogAppendTime, so each delivery
report carries the broker's append time (whole ms). Per design and load, over the measured
window (after `--warm` seconds):

- produce->ack (delivery report), produce->append, intended->append (the harness's total lag
  when the core has no other delay): P50 / P99 / P99.9 in ms, exact (numpy) over every record
  of the window; append times are the broker's, whole milliseconds;
- ProduceRequests/s and records per request (librdkafka statistics: Produce requests and
  txmsgs over the window);
- producer CPU per record (the producer process's CPU, librdkafka's threads and the pacing
  loop included), broker CPU (cores, the broker JVM) and host busy cores (psutil), achieved
  rate;
- correctness: every record delivered (none failed), per-partition offsets in send order.

Designs (`--designs`, names below) differ in librdkafka settings, producer instances, the
partition layout (one per symbol as the readiness review has it, or the symbols folded onto
fewer partitions) and the broker profile (harness.infra.broker_profiles). Loads (`--loads`)
default to the ramp's stages: 5000/50, 10000/100, 20000/200, 50000/495 (msg/s / symbols).

    .venv/bin/python bench/bench_kafka_produce.py                 # every design and load
    .venv/bin/python bench/bench_kafka_produce.py --quick         # CI smoke: 5k/50, 3 designs
    .venv/bin/python bench/bench_kafka_produce.py --designs today,linger-auto --loads 5000/50

Target (full mode, exit status 1 when missed): the reference core's design (`reference`,
what ingest uses by default) delivers every record in order, and intended->append P99 stays
under 100 ms at the loads of stages 1 and 2. Other designs' figures are information.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.infra.broker_profiles import PROFILES, broker_profile  # noqa: E402
from harness.infra.kafka_local import LocalKafka, kafka_jars  # noqa: E402
from harness.infra.topics import (  # noqa: E402
    ensure_topics,
    feed_topic_specs,
    wait_until_producible,
)
from ingest.kafka_out import topic_names  # noqa: E402
from ingest.kafka_settings import (  # noqa: E402
    REFERENCE_DESIGN,
    ProducerDesign,
    fold_partition,
)

TOTAL_P99_TARGET_MS = 100.0
JUDGED_LOADS = ((5000, 50), (10000, 100))
"""The loads of stages 1 and 2, where the reference design must hold the target."""
DEFAULT_LOADS = "5000/50,10000/100,20000/200,50000/495"
WORKER_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Design:
    """One producer + broker design: the core's producer design, a layout, a broker profile."""

    name: str
    producer: ProducerDesign
    broker: str = "default"
    partitions: int | None = None
    """Topic partitions (None: one per symbol of the universe, the review's layout)."""
    note: str = ""


DESIGNS: dict[str, Design] = {
    d.name: d
    for d in (
        Design("today", ProducerDesign(linger_ms=2), note="the core's settings before this bench"),
        Design("linger-10", ProducerDesign(linger_ms=10)),
        Design("linger-25", ProducerDesign(linger_ms=25)),
        Design("linger-auto", ProducerDesign(linger_ms="auto"), note="linger from the partitions"),
        Design("producers-4", ProducerDesign(linger_ms=2, producers=4)),
        Design("no-compression", ProducerDesign(linger_ms="auto", compression="none")),
        Design("reference", REFERENCE_DESIGN, note="ingest's default now"),
        Design("reference/kafka-defaults", REFERENCE_DESIGN, broker="kafka-defaults"),
        Design("reference/small-host", REFERENCE_DESIGN, broker="small-host"),
        Design("reference/48-partitions", REFERENCE_DESIGN, partitions=48),
        Design("today/48-partitions", ProducerDesign(linger_ms=2), partitions=48),
        Design("reference/12-partitions", REFERENCE_DESIGN, partitions=12),
    )
}
QUICK_DESIGNS = "today,reference,reference/48-partitions"


# -- the producer process -------------------------------------------------------------------


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one design at one load in this process; the figures as a JSON-ready dict."""
    from array import array

    import numpy as np
    from confluent_kafka import KafkaError, Message

    from ingest.kafka_out import KafkaOutput
    from ingest.records import FeedRecord
    from ingest.symbols import SymbolPartitions

    design = ProducerDesign(**spec["producer"])
    rate, n_symbols, partitions = spec["rate"], spec["symbols"], spec["partitions"]
    universe = SymbolPartitions.load()
    symbols = sorted(universe.symbols(), key=universe.partition_of)[:n_symbols]
    partition_of = {s: fold_partition(universe.partition_of(s), partitions) for s in symbols}
    interval_ns = 1e9 / rate
    warm_k = int(spec["warm_s"] * rate)
    end_k = warm_k + int(spec["seconds"] * rate)
    trade_every = spec["trade_every"]

    # Raw values (ns), exact percentiles at the end: cheaper per record than HDR recording
    # in Python, and the producer's CPU is one of the figures.
    lags = {"produce_ack": array("q"), "produce_append": array("q"), "total": array("q")}
    pending: dict[tuple[str, int], deque[tuple[int, int]]] = {}
    last_offset: dict[tuple[str, int], int] = {}
    checks = {"out_of_order": 0, "failed": 0, "measured": 0}
    window = [0, 0]

    class MeasuredOutput(KafkaOutput):
        def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
            super()._on_delivery(err, msg)
            key = (str(msg.topic()), int(msg.partition() or 0))
            intended, produced = pending[key].popleft()
            if err is not None:
                checks["failed"] += 1
                return
            offset = int(msg.offset() or 0)
            if offset <= last_offset.get(key, -1):
                checks["out_of_order"] += 1
            last_offset[key] = offset
            if not window[0] <= intended < window[1]:
                return
            ack_ns = time.time_ns()
            append_ns = int(msg.timestamp()[1]) * 1_000_000
            checks["measured"] += 1
            lags["produce_ack"].append(ack_ns - produced)
            lags["produce_append"].append(append_ns - produced)
            lags["total"].append(append_ns - intended)

    out = MeasuredOutput(
        spec["bootstrap"],
        partition_of.__getitem__,
        topic_prefix=spec["topic_prefix"],
        overrides=design.overrides(n_symbols, partitions),
        producers=design.producers,
        statistics_interval_ms=500,
    )
    quote = {
        "bid": 101.25,
        "bid_size": 300,
        "ask": 101.27,
        "ask_size": 200,
        "bid_mc": 11,
        "ask_mc": 19,
    }
    trade = {
        "price": 101.26,
        "size": 100,
        "market_center": 11,
        "conditions": "3D",
        "total_volume": 1234567,
        "bid": 101.25,
        "ask": 101.27,
        "contents": "Cbav",
    }
    start_ns = time.time_ns() + 300_000_000
    window[0] = int(start_ns + warm_k * interval_ns)
    window[1] = int(start_ns + end_k * interval_ns)
    print("started", flush=True)
    k = 0
    cpu0 = figures0 = None
    while k < end_k:
        now = time.time_ns()
        due = min(end_k, int((now - start_ns) / interval_ns) + 1)
        if due <= k:
            out.poll(0)
            time.sleep(min(0.001, max(0.0, (start_ns + k * interval_ns - now) / 1e9)))
            continue
        while k < due:
            if k == warm_k:
                cpu0, figures0 = time.process_time(), out.producer_figures()
                print("measuring", flush=True)
            symbol = symbols[k % n_symbols]
            intended = int(start_ns + k * interval_ns)
            is_trade = k % trade_every == 0
            record = FeedRecord(
                symbol,
                "trade" if is_trade else "quote",
                k,
                intended,
                intended,
                0,
                trade if is_trade else quote,
            )
            out.send(record)
            pending.setdefault((out.topics[record.type], partition_of[symbol]), deque()).append(
                (intended, record.produced_ns)
            )
            k += 1
        out.poll(0)
    sent_s = (time.time_ns() - window[0]) / 1e9
    cpu_s = time.process_time() - (cpu0 or 0.0)
    print("measured", flush=True)
    settle = time.monotonic() + 1.2  # one more statistics document covering the window's end
    while time.monotonic() < settle:
        out.poll(0.01)
    figures1 = out.producer_figures()
    undelivered = out.flush(60)
    requests = records = 0
    if figures0 is not None and figures1 is not None:
        requests = figures1.produce_requests - figures0.produce_requests
        records = figures1.records_sent - figures0.records_sent
    measured = end_k - warm_k
    return {
        "achieved": measured / sent_s,
        "percentiles_ms": {
            name: [
                float(v) / 1e6
                for v in np.percentile(np.frombuffer(values, np.int64), (50, 99, 99.9))
            ]
            if values
            else [float("nan")] * 3
            for name, values in lags.items()
        },
        "requests_per_s": requests / sent_s,
        "records_per_request": records / requests if requests else 0.0,
        "producer_us_per_record": cpu_s * 1e6 / measured,
        "delivered": out.stats.delivered,
        "produced": out.stats.produced,
        "undelivered": undelivered,
        "backpressure_waits": out.stats.backpressure_waits,
        "linger_ms": out.config.get("linger.ms"),
        **checks,
    }


# -- the orchestrator ---------------------------------------------------------------------


@dataclass
class Result:
    design: str
    rate: int
    symbols: int
    figures: dict[str, Any] = field(default_factory=dict)
    broker_cores: float = 0.0
    host_cores: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        f = self.figures
        return (
            not self.error
            and f.get("failed", 1) == 0
            and f.get("out_of_order", 1) == 0
            and f.get("undelivered", 1) == 0
            and f.get("delivered") == f.get("produced")
        )


def _busy_cpu_s() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def run_design(
    bootstrap: str, broker_pid: int, design: Design, rate: int, symbols: int, args: Any
) -> Result:
    """One worker process; the broker's and the host's CPU sampled over its measured window."""
    partitions = design.partitions or 495
    spec = {
        "bootstrap": bootstrap,
        "topic_prefix": f"bench{partitions}",
        "producer": asdict(design.producer),
        "rate": rate,
        "symbols": symbols,
        "partitions": partitions,
        "warm_s": args.warm,
        "seconds": args.seconds,
        "trade_every": args.trade_every,
    }
    result = Result(design.name, rate, symbols)
    broker = psutil.Process(broker_pid)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    broker0 = host0 = wall0 = 0.0
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    try:
        for line in proc.stdout:
            line = line.strip()
            if line == "measuring":
                broker0, host0, wall0 = sum(broker.cpu_times()[:4]), _busy_cpu_s(), time.time()
            elif line == "measured":
                wall = time.time() - wall0
                result.broker_cores = (sum(broker.cpu_times()[:4]) - broker0) / wall
                result.host_cores = (_busy_cpu_s() - host0) / wall
            elif line.startswith("{"):
                result.figures = json.loads(line)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no result in {WORKER_TIMEOUT_S:g} s")
        if proc.wait(30) != 0:
            result.error = f"worker exit {proc.returncode}"
    except (TimeoutError, subprocess.TimeoutExpired) as exc:
        result.error = str(exc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return result


def warm_up_broker(bootstrap: str, pid: int, load: tuple[int, int], args: Any) -> None:
    """Run a design unmeasured for `--broker-warmup` seconds: a fresh broker JVM spends its
    first tens of seconds compiling (JFR: the C2 compiler threads took more CPU than the
    request handlers in the first 25 s at 5k msg/s), which would bias the first design."""
    if args.broker_warmup <= 0:
        return
    print(f"  warming the broker up for {args.broker_warmup:g} s ...", flush=True)
    warm_args = argparse.Namespace(**{**vars(args), "warm": args.broker_warmup, "seconds": 1.0})
    result = run_design(bootstrap, pid, DESIGNS["today"], load[0], load[1], warm_args)
    if not result.ok:
        raise SystemExit(f"the broker warm-up failed: {result.error or result.figures}")


@contextlib.contextmanager
def local_broker(profile: str, partition_counts: set[int]) -> Iterator[tuple[str, int]]:
    """A 1-broker Kafka with `profile`, the bench topics per partition count; (bootstrap, pid)."""
    with tempfile.TemporaryDirectory(prefix="bench-produce-") as tmp:
        kafka = LocalKafka(
            state_dir=Path(tmp),
            jars_dir=kafka_jars(),
            heap_mb=1024,
            profile=None if profile == "default" else profile,
        )
        try:
            print(f"starting a local Kafka broker (profile {kafka.profile.name}) ...", flush=True)
            state = kafka.up(brokers=1, timeout_s=180)
            for count in sorted(partition_counts):
                names = tuple(topic_names(f"bench{count}").values())
                ensure_topics(state.bootstrap, feed_topic_specs(1, count, names=names))
            wait_until_producible(state.bootstrap, 1)
            yield state.bootstrap, state.nodes[0].pid
        finally:
            kafka.down()


def fmt(values: list[float]) -> str:
    return " / ".join(f"{v:.1f}" if v < 100 else f"{v:.0f}" for v in values)


def _faults(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in ("failed", "out_of_order", "undelivered", "produced")}


def table(results: list[Result]) -> str:
    head = (
        "| design | msg/s / symbols | achieved | linger ms | produce->ack | produce->append | "
        "intended->append | requests/s | records/request | producer us/record | broker cores |"
        " host busy cores | ok |\n|" + "---|" * 13
    )
    rows = [head]
    for r in results:
        f = r.figures
        if not f:
            rows.append(f"| {r.design} | {r.rate} / {r.symbols} | {r.error or 'no result'} |")
            continue
        p = f["percentiles_ms"]
        rows.append(
            f"| {r.design} | {r.rate} / {r.symbols} | {f['achieved']:,.0f} | {f['linger_ms']} | "
            f"{fmt(p['produce_ack'])} | {fmt(p['produce_append'])} | {fmt(p['total'])} | "
            f"{f['requests_per_s']:,.0f} | {f['records_per_request']:.2f} | "
            f"{f['producer_us_per_record']:.0f} | {r.broker_cores:.2f} | {r.host_cores:.2f} | "
            f"{'yes' if r.ok else 'NO: ' + (r.error or json.dumps(_faults(f)))} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 5k/50, three designs")
    parser.add_argument("--designs", default="", help=f"comma list of {', '.join(DESIGNS)}")
    parser.add_argument("--loads", default="", help=f"msg/s/symbols list (default {DEFAULT_LOADS})")
    parser.add_argument("--warm", type=float, default=0.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=0.0, help="seconds measured")
    parser.add_argument(
        "--broker-warmup", type=float, default=-1.0, help="seconds of unmeasured load per broker"
    )
    parser.add_argument("--trade-every", type=int, default=5, help="one record in N a trade")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    names = (args.designs or (QUICK_DESIGNS if args.quick else ",".join(DESIGNS))).split(",")
    unknown = [n for n in names if n not in DESIGNS]
    if unknown:
        parser.error(f"unknown designs {unknown}; known: {', '.join(DESIGNS)}")
    loads_text = args.loads or ("5000/50" if args.quick else DEFAULT_LOADS)
    try:
        loads = [tuple(int(x) for x in item.split("/")) for item in loads_text.split(",")]
    except ValueError:
        parser.error(f"--loads: expected RATE/SYMBOLS[,...], got {loads_text!r}")
    args.warm = args.warm or (3.0 if args.quick else 5.0)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    if args.broker_warmup < 0:
        args.broker_warmup = 5.0 if args.quick else 30.0
    designs = [DESIGNS[n] for n in names]
    for design in designs:
        if design.broker != "default":
            broker_profile(design.broker)
    print(
        f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}; broker profiles: "
        + "; ".join(f"{p.name} = {p.summary}" for p in PROFILES.values()),
        flush=True,
    )
    results: list[Result] = []
    for profile in dict.fromkeys(d.broker for d in designs):
        group = [d for d in designs if d.broker == profile]
        with local_broker(profile, {d.partitions or 495 for d in group}) as (bootstrap, pid):
            warm_up_broker(bootstrap, pid, loads[0], args)
            for rate, symbols in loads:
                for design in group:
                    print(f"  {design.name} at {rate} msg/s over {symbols} symbols ...", flush=True)
                    results.append(run_design(bootstrap, pid, design, rate, symbols, args))
    results.sort(key=lambda r: (r.rate, names.index(r.design)))
    print()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    missed = [r for r in results if not r.ok]
    for r in results:
        judged = (r.rate, r.symbols) in JUDGED_LOADS and r.design == "reference"
        if judged and r.figures and r.figures["percentiles_ms"]["total"][1] > TOTAL_P99_TARGET_MS:
            missed.append(r)
    for r in missed:
        print(f"TARGET MISSED: {r.design} at {r.rate}/{r.symbols}")
    return 1 if missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
