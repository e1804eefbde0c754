"""End to end through the reference core: feed_sim -> `ingest run` -> a local Kafka broker.

Issue 4's benchmark: 50,000 msg/s over the 495 symbols (Level 1) for 60 s, processing lag P99
<= 5 ms, and the core's RSS. Three processes besides this one, all on loopback and all stopped
by PID at the end (also on failure):

1. a local Kafka broker (harness LocalKafka, 1 broker, fresh state in a temp folder) with the
   feed topics created by `harness.infra.topics.ensure_topics` (495 partitions);
2. `feed-sim serve --paused --mode fixed` serving the generated 495-symbol tape (cached under
   .cache/feed_sim, the same tape as bench_feed_sim.py), rate = target / 495 per symbol;
3. `ingest run` on every symbol of config/production_symbols.json (Level 1 only: the target is
   a Level 1 message rate), 5 connections, subscriptions 50 per batch.

After a warm-up stage the measured stage runs for `--seconds`; the core's RSS is sampled once a
second (psutil). Then the feed is paused, the core drained (SIGTERM: flush, `stopped` event) and
every record is consumed back from Kafka: lags are computed exactly per record from its own
fields (contract 3) and recorded into HDR histograms (contracts.hdr, microseconds):
processing = produced_ns - recv_ns, network = recv_ns - exchange_ns (the intended send time),
for the records received during the measured stage.

Targets (PASS/FAIL each; exit 1 when one is missed): achieved rate >= 99% of the target (what
the core turned into records during the stage; feed_sim's own achieved rate and lateness are
printed next to it, so a generator that could not keep up is visible as such), processing lag
P99 <= 5 ms, completeness (every message sent was read by the core with no TickID gap, every
record produced was delivered and consumed back), RSS <= 4 GiB (harness.defaults.TARGET_MEMORY_GB).

    .venv/bin/python bench/bench_ingest_e2e.py            # 60 s at 50,000 msg/s
    .venv/bin/python bench/bench_ingest_e2e.py --quick    # CI smoke: 10 s
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.hdr import new_histogram, percentiles, record_many  # noqa: E402
from feed_sim.control_client import ControlClientError, FeedSimControl  # noqa: E402
from harness.defaults import TARGET_MEMORY_GB  # noqa: E402
from harness.infra.errors import InfraError  # noqa: E402
from harness.infra.kafka_clients import consumer as kafka_consumer  # noqa: E402
from harness.infra.kafka_clients import producer as kafka_producer  # noqa: E402
from harness.infra.kafka_local import LocalKafka, fetch_kafka_jars, kafka_jars  # noqa: E402
from harness.infra.topics import TopicSpec, ensure_topics, feed_topic_specs  # noqa: E402
from harness.sampler import ProcessTreeUsage  # noqa: E402
from ingest.kafka_out import DEFAULT_PRODUCERS, topic_names  # noqa: E402

CACHE = ROOT / ".cache" / "feed_sim"
N_SYMBOLS = 495
TARGET_RATE = 50_000.0
PROCESSING_P99_US = 5_000
RATE_TOLERANCE = 0.01
TAPE_DAY = dt.date(2025, 11, 24)
TAPE_SEED = 20261125
TAPE_MINUTES = 2.0
LEVEL1_TOPICS = ("trade", "quote")


# -- helpers ----------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    one, five, fifteen = os.getloadavg()
    load = f", load {one:.1f}/{five:.1f}/{fifteen:.1f}"
    return (
        f"{os.cpu_count()} cores, {model}, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"Python {platform.python_version()}, Linux {platform.release()}{load}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_tape() -> Path:
    """The generated 495-symbol session of bench_feed_sim.py (same cache file)."""
    from feed_sim.generate.tape_gen import generate_tape

    path = CACHE / f"bench-{TAPE_DAY.isoformat()}-{N_SYMBOLS}s-{TAPE_MINUTES:g}m-{TAPE_SEED}.tape"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.relative_to(ROOT)} (once) ...", flush=True)
        generate_tape(path, N_SYMBOLS, TAPE_DAY, TAPE_SEED, duration_s=TAPE_MINUTES * 60)
    return path


def stop_pid(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Ingest:
    """`ingest run` in its own process; JSON events from stdout, /admin/state over HTTP."""

    def __init__(self, config: dict[str, Any], folder: Path) -> None:
        config_file = folder / "ingest.json"
        config_file.write_text(json.dumps(config))
        self.log = (folder / "ingest.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "run", "--config", str(config_file)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        self.events: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = int(self.event("started", 120)["metrics_port"])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(raw))

    def event(self, name: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("event") == name:
                    return event
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise SystemExit(f"ingest printed no {name!r} event (exit {self.proc.poll()})")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            body: bytes = r.read()
            return body

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.get("/admin/state"))
        return data

    def metrics_quantiles(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.get("/metrics").decode().splitlines():
            if line.startswith("ingest_lag_microseconds{"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def records(self) -> int:
        records = self.state()["process"]["records"]
        return int(records["trade"]) + int(records["quote"])

    def level1_read(self) -> int:
        """`Q` lines turned into a record or consumed without one (no trade/bid/ask change)."""
        process = self.state()["process"]
        return self.records() + int(process["level1_without_record"])

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=180)
        self.reader.join(10)
        return self.event("stopped", 1)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.samples: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0):
            try:
                self.samples.append(int(self.process.memory_info().rss))
            except psutil.Error:
                return


def consume_all(
    bootstrap: str, expected: int, timeout_s: float
) -> tuple[array[int], array[int], array[int]]:
    """(recv_ns, produced_ns, exchange_ns) of every record of the Level 1 topics."""
    names = topic_names()
    consumer = kafka_consumer(
        bootstrap,
        f"bench-e2e-{time.time_ns()}",
        {"auto.offset.reset": "earliest", "enable.auto.commit": False},
    )
    consumer.subscribe([names[k] for k in LEVEL1_TOPICS])
    recv: array[int] = array("q")
    produced: array[int] = array("q")
    exchange: array[int] = array("q")
    deadline = time.monotonic() + timeout_s
    idle_since = time.monotonic()
    try:
        while len(recv) < expected and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            if not batch:
                if time.monotonic() - idle_since > 20:
                    break
                continue
            idle_since = time.monotonic()
            for msg in batch:
                value = msg.value()
                if msg.error() is not None or value is None:
                    continue
                data = orjson.loads(value)
                recv.append(data["recv_ns"])
                produced.append(data["produced_ns"])
                exchange.append(data["exchange_ns"])
    finally:
        consumer.close()
    return recv, produced, exchange


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.3f} ms"


# -- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 10 s measured")
    parser.add_argument("--seconds", type=float, default=None, help="measured stage length")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="msg/s over 495 symbols")
    parser.add_argument(
        "--producers", type=int, default=None, help="the core's Kafka producers (its default: 4)"
    )
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    warmup_s = 3.0
    rate = float(args.rate)

    print(f"machine: {machine()}", flush=True)
    tape = bench_tape()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-e2e-"))
    try:
        jars = kafka_jars()
    except InfraError:
        jars = fetch_kafka_jars()
    kafka = LocalKafka(state_dir=work / "kafka", jars_dir=jars, heap_mb=512)
    feed: subprocess.Popen[bytes] | None = None
    ingest: Ingest | None = None
    sampler: RssSampler | None = None
    failures: list[str] = []
    try:
        cluster = kafka.up(brokers=1, timeout_s=240)
        bootstrap = cluster.bootstrap
        ensure_topics(bootstrap, feed_topic_specs(1, names=tuple(topic_names().values())))
        ensure_topics(bootstrap, [TopicSpec("bench.warmup", 1, 1, {})])
        warm = kafka_producer(bootstrap, {"enable.idempotence": True, "acks": "all"})
        warm.produce("bench.warmup", b"warm-up")
        if warm.flush(180) != 0:
            raise SystemExit("the broker did not accept an idempotent produce within 180 s")

        control_port = free_port()
        feed = subprocess.Popen(
            [
                *(sys.executable, "-m", "feed_sim.cli", "serve", "--tape", str(tape)),
                *("--control-port", str(control_port), "--paused", "--status-every", "0"),
                *("--level1-port", "0", "--level2-port", "0", "--admin-port", "0"),
                *("--lookup-port", "0", "--mode", "fixed", "--rate", str(rate / N_SYMBOLS)),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(work / "feed-sim.log").open("wb"),
        )
        control = FeedSimControl(f"http://127.0.0.1:{control_port}", timeout_s=60)
        deadline = time.monotonic() + 600
        while True:
            if feed.poll() is not None:
                raise SystemExit(f"feed-sim serve exited with {feed.returncode}")
            try:
                status = control.status()
                break
            except ControlClientError:
                if time.monotonic() > deadline:
                    raise SystemExit("feed-sim did not come up within 600 s") from None
                time.sleep(0.5)
        ports = status["ports"]

        ingest = Ingest(
            {
                "feed": {
                    "host": "127.0.0.1",
                    "level1_port": ports["level1"],
                    "level2_port": ports["level2"],
                    "level2": False,
                    "batch_pause_s": 0.2,
                },
                "kafka": {
                    "bootstrap": bootstrap,
                    **({} if args.producers is None else {"producers": args.producers}),
                },
                "metrics": {"host": "127.0.0.1", "port": 0},
            },
            work,
        )
        while True:  # every symbol watched
            conns = ingest.state()["connections"]
            if sum(c["watched"] for c in conns) >= N_SYMBOLS and not any(
                c["subscribing"] for c in conns
            ):
                break
            time.sleep(0.2)
        rss_idle = psutil.Process(ingest.proc.pid).memory_info().rss
        sampler = RssSampler(ingest.proc.pid)
        sampler.start()

        control.stage("warmup")
        control.start()
        time.sleep(warmup_s)
        control.stage("measure")
        records0 = ingest.records()
        core_usage = ProcessTreeUsage([ingest.proc.pid])
        core_usage.read()  # CPU counted from here
        time.sleep(seconds)
        records1 = ingest.records()
        core_read = core_usage.read()
        core_cpu_s = core_read.cpu_seconds if core_read is not None else 0.0
        control.stage("after")
        control.pause()
        measured = control.counters("measure")
        sent_total = sum(
            c.messages for c in (control.counters(s) for s in ("warmup", "measure", "after"))
        )
        stage_s = (measured.ended_ns - measured.started_ns) / 1e9
        deadline = time.monotonic() + 120
        while ingest.level1_read() < sent_total and time.monotonic() < deadline:
            time.sleep(0.25)
        metric_quantiles = ingest.metrics_quantiles()
        sampler.halt.set()
        records_core = ingest.records()
        level1_read = ingest.level1_read()
        gaps = ingest.state()["process"]["tickid_missing"]
        stopped = ingest.stop()

        recv, produced, exchange = consume_all(bootstrap, stopped["produced"], timeout_s=600)
        recv_a = np.frombuffer(recv, dtype=np.int64)
        produced_a = np.frombuffer(produced, dtype=np.int64)
        exchange_a = np.frombuffer(exchange, dtype=np.int64)
        window = (recv_a >= measured.started_ns) & (recv_a < measured.ended_ns)
        processing = new_histogram()
        network = new_histogram()
        record_many(processing, (produced_a[window] - recv_a[window]) // 1000)
        has_time = window & (exchange_a > 0)
        record_many(network, (recv_a[has_time] - exchange_a[has_time]) // 1000)
        proc_p = percentiles(processing, (50, 99, 99.9))
        net_p = percentiles(network, (50, 99, 99.9))
        late_p = percentiles(measured.lateness_us, (50, 99, 99.9))

        feed_rate = measured.messages / stage_s
        core_rate = int(window.sum()) / stage_s
        rss_peak = max(sampler.samples or [0])
        complete = (
            stopped["undelivered"] == 0
            and stopped["failed"] == 0
            and stopped["produced"] == stopped["delivered"] == len(recv)
            and records_core == stopped["produced"]
            and level1_read == sent_total
            and gaps == 0
        )

        def verdict(ok: bool, name: str) -> str:
            if not ok:
                failures.append(name)
            return "PASS" if ok else "FAIL"

        print(f"tape: {tape.name}; {N_SYMBOLS} symbols, Level 1, fixed mode")
        print(f"measured stage: {stage_s:.1f} s after {warmup_s:.0f} s warm-up")
        print(f"target rate:            {rate:>12,.0f} msg/s")
        print(
            f"feed_sim achieved:      {feed_rate:>12,.0f} msg/s  (its lateness P50/P99/P99.9 "
            f"{fmt_ms(late_p['p50'])} / {fmt_ms(late_p['p99'])} / {fmt_ms(late_p['p99.9'])})"
        )
        print(
            f"core records:           {core_rate:>12,.0f} msg/s  "
            f"[{verdict(core_rate >= rate * (1 - RATE_TOLERANCE), 'rate')}]"
            f"  (core's own count: {(records1 - records0) / seconds:,.0f} msg/s)"
        )
        core_msgs = max(1, records1 - records0)
        print(
            f"core CPU:               {core_cpu_s / seconds * 100:>11.0f} %  "
            f"({core_cpu_s / core_msgs * 1e6:.0f} us per record, all its threads; "
            f"{args.producers or DEFAULT_PRODUCERS} Kafka producers)"
        )
        print(
            f"processing lag (Kafka records, exact): P50 {fmt_ms(proc_p['p50'])}  "
            f"P99 {fmt_ms(proc_p['p99'])}  P99.9 {fmt_ms(proc_p['p99.9'])}  "
            f"max {fmt_ms(proc_p['max'])}  n={proc_p['count']:,}  "
            f"[{verdict(proc_p['p99'] <= PROCESSING_P99_US, 'processing P99')} <= 5 ms]"
        )
        proc_q = {
            key: metric_quantiles.get(
                f'ingest_lag_microseconds{{hop="processing",quantile="{key}"}}', 0.0
            )
            for key in ("0.5", "0.99")
        }
        print(
            "processing lag (core /metrics, whole run): "
            f"P50 {fmt_ms(proc_q['0.5'])}  P99 {fmt_ms(proc_q['0.99'])}"
        )
        print(
            f"network lag (recv - intended): P50 {fmt_ms(net_p['p50'])}  "
            f"P99 {fmt_ms(net_p['p99'])}  P99.9 {fmt_ms(net_p['p99.9'])}"
        )
        limit = TARGET_MEMORY_GB * 2**30
        print(
            f"core RSS: {rss_idle / 2**20:.0f} MiB subscribed and idle, "
            f"{rss_peak / 2**20:.0f} MiB peak under load "
            f"[{verdict(rss_peak <= limit, 'RSS')} <= {TARGET_MEMORY_GB:g} GiB]"
        )
        print(
            f"completeness: sent {sent_total:,}, core read {level1_read:,} (TickIDs missing "
            f"{gaps}), records {records_core:,}, produced "
            f"{stopped['produced']:,}, delivered {stopped['delivered']:,}, consumed {len(recv):,} "
            f"[{verdict(complete, 'completeness')}]"
        )
    finally:
        if sampler is not None:
            sampler.halt.set()
        if ingest is not None:
            stop_pid(ingest.proc, timeout_s=60)
        if feed is not None:
            stop_pid(feed)
        kafka.down()
    if failures:
        print(f"TARGET MISSED: {', '.join(failures)}")
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
