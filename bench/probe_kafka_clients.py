"""The Kafka clients' own CPU per message: the floor under the collector's 2 us/msg budget.

A probe, not a target benchmark (`make bench` runs bench_*.py only): how much CPU a Kafka
consumer needs just to fetch the reference core's records at 50,000 msg/s with the collector's
settings (`harness.collector.kafka_read.CONSUMER_SETTINGS`: throughput, fetch.min.bytes 4 MB,
fetch.wait.max.ms 500), before any measuring. Bare consumers, each in its own process, each
only counting the value and key bytes of what it reads:

- `reader`: the collector's own `KafkaReader` (librdkafka's C API, harness/collector/
  _kafkaread.c), one per topic, counting only (no decoding);
- `librdkafka`: librdkafka through confluent-kafka (`Consumer.consume`, a Python `Message` per
  record), one consumer for the three topics;
- `java`: the Apache Kafka Java consumer (bench/probe/KafkaClientFloor.java, compiled with javac
  against the broker jars Maven fetched; kafka-clients has incremental fetch sessions, KIP-227).

A local 1-broker Kafka, the feed topics, records like the core's (bench_collector.make_values)
produced from this process at `--rate` over `--symbols` partitions of each of the 3 topics
(one partition per symbol, contract 4). Each consumer's CPU clock (its whole process:
librdkafka's threads, or the JVM's JIT and GC) starts after `--warm` records; the figure is CPU
time / records over the next `--messages`. The broker, this producer and the consumer share
the machine, as in a run.

    .venv/bin/python bench/probe_kafka_clients.py                 # 495 symbols, every client
    .venv/bin/python bench/probe_kafka_clients.py --symbols 50 --clients reader,librdkafka
"""

from __future__ import annotations

import argparse
import json
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_collector import (  # noqa: E402
    RATE,
    SYMBOLS,
    cpu_model,
    local_feed_broker,
    make_values,
    produce_paced,
)
from confluent_kafka import Message  # noqa: E402

from harness.collector.kafka_read import (  # noqa: E402
    BATCH,
    CONSUME_TIMEOUT_S,
    CONSUMER_SETTINGS,
    ReadMode,
    TopicReaders,
)
from harness.collector.process import start_offsets  # noqa: E402
from harness.infra.kafka_clients import consumer  # noqa: E402
from harness.infra.kafka_local import kafka_jars  # noqa: E402
from ingest.kafka_out import topic_names  # noqa: E402

JAVA_SOURCE = ROOT / "bench" / "probe" / "KafkaClientFloor.java"
CLIENTS = ("reader", "librdkafka", "java")
REPORT_TIMEOUT_S = 180.0
"""How long a consumer may take to report after the last record was produced (a hang bound)."""


def consume_librdkafka(
    bootstrap: str, topics: list[str], partitions: int, warm: int, n: int
) -> None:
    """The bare librdkafka consumer (runs in its own process): one JSON line when done."""
    reader = consumer(bootstrap, f"probe-{time.time_ns()}", dict(CONSUMER_SETTINGS))
    reader.assign(start_offsets(bootstrap, topics, False, 60.0, range(partitions)))
    print("ready", flush=True)
    seen = nbytes = 0
    cpu_start = wall_start = 0.0
    while seen < warm + n:
        messages = reader.consume(num_messages=BATCH, timeout=CONSUME_TIMEOUT_S)
        if not messages:
            continue
        values = list(map(Message.value, messages))
        keys = [k for k in map(Message.key, messages) if k is not None]
        nbytes += sum(map(len, values)) + sum(map(len, keys))
        before = seen
        seen += len(messages)
        if before < warm <= seen:
            cpu_start, wall_start = time.process_time(), time.monotonic()
    cpu_s, wall_s = time.process_time() - cpu_start, time.monotonic() - wall_start
    print(json.dumps({"messages": seen - warm, "cpu_s": cpu_s, "wall_s": wall_s, "bytes": nbytes}))
    reader.close()


def consume_reader(bootstrap: str, topics: list[str], partitions: int, warm: int, n: int) -> None:
    """The collector's KafkaReaders, counting only (runs in its own process)."""
    readers = TopicReaders(bootstrap, f"probe-{time.time_ns()}", topics, CONSUMER_SETTINGS)
    readers.assign(start_offsets(bootstrap, topics, False, 60.0, range(partitions)))
    print("ready", flush=True)
    seen = nbytes = 0
    cpu_start = wall_start = 0.0
    while seen < warm + n:
        batch = readers.read(ReadMode.COUNT)
        nbytes += batch.nbytes
        before = seen
        seen += batch.records
        if before < warm <= seen:
            cpu_start, wall_start = time.process_time(), time.monotonic()
    cpu_s, wall_s = time.process_time() - cpu_start, time.monotonic() - wall_start
    print(json.dumps({"messages": seen - warm, "cpu_s": cpu_s, "wall_s": wall_s, "bytes": nbytes}))
    readers.close()


def java_command(
    bootstrap: str, topics: list[str], partitions: int, warm: int, n: int, build: Path
) -> list[str]:
    """Compile KafkaClientFloor.java into `build` and return the command that runs it."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        raise SystemExit("the java client needs a JDK (javac and java on PATH)")
    classpath = ":".join(str(jar) for jar in sorted(kafka_jars().glob("*.jar")))
    subprocess.run([javac, "-cp", classpath, "-d", str(build), str(JAVA_SOURCE)], check=True)
    return [
        java,
        "-Xmx512m",
        "-cp",
        f"{classpath}:{build}",
        "KafkaClientFloor",
        bootstrap,
        ",".join(topics),
        str(partitions),
        str(warm),
        str(n),
    ]


def probe(
    client: str,
    bootstrap: str,
    args: argparse.Namespace,
    values: list[bytes],
    keys: list[bytes],
    build: Path,
) -> None:
    """Run one client against freshly produced records and print its figure."""
    topics = list(topic_names().values())
    total = len(values)
    n = total - args.warm
    if client == "java":
        command = java_command(bootstrap, topics, args.symbols, args.warm, n, build)
    else:
        command = [
            sys.executable,
            __file__,
            f"--consume-{client}",
            bootstrap,
            ",".join(topics),
            str(args.symbols),
            str(args.warm),
            str(n),
        ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit(f"the {client} consumer did not start (exit {child.wait(30)})")
        took = produce_paced(bootstrap, values, keys, args.rate, args.symbols)
        ready, _, _ = select.select([child.stdout], [], [], REPORT_TIMEOUT_S)
        line = child.stdout.readline() if ready else ""
        if not line:
            raise SystemExit(f"the {client} consumer gave no figure in {REPORT_TIMEOUT_S:g} s")
        child.wait(REPORT_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    report = json.loads(line)
    us = report["cpu_s"] / report["messages"] * 1e6
    print(
        f"{client:>10}: {args.symbols} partitions x 3 topics, produced at {total / took:,.0f} "
        f"msg/s; {report['cpu_s']:.2f} CPU-s for {report['messages']:,} records = {us:.2f} us/msg "
        f"= {us * args.rate / 1e4:.1f}% of one core at {args.rate:,} msg/s"
    )


def main() -> int:
    consumers = {"--consume-librdkafka": consume_librdkafka, "--consume-reader": consume_reader}
    if len(sys.argv) == 7 and sys.argv[1] in consumers:
        bootstrap, topics, partitions, warm, n = sys.argv[2:]
        consumers[sys.argv[1]](bootstrap, topics.split(","), int(partitions), int(warm), int(n))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=SYMBOLS, help="partitions per topic")
    parser.add_argument("--messages", type=int, default=1_000_000, help="records measured")
    parser.add_argument("--warm", type=int, default=100_000, help="records before the clock")
    parser.add_argument("--rate", type=int, default=RATE, help="records per second produced")
    parser.add_argument(
        "--clients", default=",".join(CLIENTS), help="comma-separated: " + ", ".join(CLIENTS)
    )
    args = parser.parse_args()
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = sorted(set(clients) - set(CLIENTS))
    if unknown or not clients or args.warm < 1 or args.messages < 1:
        parser.error(
            f"--clients must name some of {', '.join(CLIENTS)} ({unknown or 'none'} given); "
            "--warm and --messages must be >= 1"
        )
    print(f"machine: {cpu_model()}; generating {args.warm + args.messages:,} records ...")
    values, keys, _ = make_values(args.warm + args.messages)
    with (
        local_feed_broker("probe-kafka-clients-") as bootstrap,
        tempfile.TemporaryDirectory(prefix="probe-java-build-") as build,
    ):
        for client in clients:
            probe(client, bootstrap, args, values, keys, Path(build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
