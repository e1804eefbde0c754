"""A test SUT with known, injected delays (run as a separate process by the harness tests).

It is a minimal IQFeed -> Kafka core: it connects to feed_sim's Level 1 port, selects the
fields it needs, watches the symbols of `--symbols-file`, and forwards every `Q` line to Kafka
as one JSON record in the reference core's layout (symbol, type, seq = TickID, exchange_ns =
the message's time field, recv_ns = the socket read, produced_ns = the hand-over to the
producer). On top of that it misbehaves on purpose, exactly as told:

- `--hold-every N --hold-ms H`: every N-th message (by arrival order) is held H ms before it
  is produced, WITHOUT delaying the others (a per-message delay, e.g. a slow code path);
- `--stall-after K --stall-ms S`: after the K-th message the reader stops reading the socket
  for S ms, once (the messages scheduled meanwhile wait in the socket buffer: coordinated
  omission for anyone measuring from the read);
- `--slow-above M --slow-ms D`: while more than M symbols are watched every message is held D
  ms; with `--sticky` it stays slow once it has been slow (a core that does not recover);
- `--die-above M --die-after-s T`: T s after more than M symbols are watched it SIGKILLs
  itself (a core killed mid-stage);
- `--produce-delay-ms P`: every record waits P ms AFTER its `produced_ns` stamp before the
  produce call (a slow hand-over to the producer: the Kafka hop's, not processing's);
- `--no-type`: records carry no `type` field (a core that stamps none).

`DELAY_CORE_EXTRA_ARGS` in the environment adds options after the command line's: a core
"rebuilt" with a delay while the scenario (its file and hash) stays the same.

SIGHUP re-reads the symbols file (watch the new symbols, unwatch the dropped ones); SIGTERM
flushes the producer and exits 0.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import select
import shlex
import signal
import socket
import sys
import time
from typing import Any

from confluent_kafka import Producer

from ingest.feed.timeparse import time_text_near_ns

FIELDS = ("Symbol", "TickID", "Most Recent Trade Time", "Bid Time", "Ask Time")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed-host", default="127.0.0.1")
    parser.add_argument("--level1-port", type=int, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--symbols-file", required=True)
    parser.add_argument("--universe-file", required=True)
    parser.add_argument("--topic", default="iqfeed.quotes")
    parser.add_argument("--hold-every", type=int, default=0)
    parser.add_argument("--hold-ms", type=float, default=0.0)
    parser.add_argument("--stall-after", type=int, default=0)
    parser.add_argument("--stall-ms", type=float, default=0.0)
    parser.add_argument("--slow-above", type=int, default=0)
    parser.add_argument("--slow-ms", type=float, default=0.0)
    parser.add_argument("--sticky", action="store_true")
    parser.add_argument("--die-above", type=int, default=0)
    parser.add_argument("--die-after-s", type=float, default=0.0)
    parser.add_argument("--produce-delay-ms", type=float, default=0.0)
    parser.add_argument("--no-type", action="store_true")
    return parser.parse_args(argv)


class DelayCore:
    """The core's state: watched symbols, held records, the misbehaviour switches."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        with open(args.universe_file, encoding="utf-8") as f:
            universe = json.load(f)["symbols"]
        self.partition = {row["symbol"]: int(row["partition"]) for row in universe}
        self.producer = Producer(
            {"bootstrap.servers": args.bootstrap, "linger.ms": 0, "acks": "all"}
        )
        self.sock = socket.create_connection((args.feed_host, args.level1_port), timeout=10)
        self.sock.setblocking(False)
        self.watched: set[str] = set()
        self.held: list[tuple[int, int, bytes, str]] = []  # (due_ns, order, value, symbol)
        self.stamped: list[tuple[int, int, bytes, str]] = []  # produced_ns stamped, not sent
        self.count = 0
        self.stalled = False
        self.stall_pending = False
        self.slow_latched = False
        self.die_at_ns: int | None = None
        self.reload_requested = True
        self.stopping = False
        self.buffer = b""

    def send(self, line: str) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(line.encode("ascii") + b"\r\n")
        self.sock.setblocking(False)

    def handshake(self) -> None:
        self.send("S,SET PROTOCOL,6.2")
        self.send("S,SELECT UPDATE FIELDS," + ",".join(FIELDS[1:]))

    def reload(self) -> None:
        with open(self.args.symbols_file, encoding="utf-8") as f:
            wanted = set(json.load(f))
        for symbol in sorted(self.watched - wanted):
            self.send(f"r{symbol}")
        for symbol in sorted(wanted - self.watched):
            self.send(f"w{symbol}")
        self.watched = wanted
        args = self.args
        if args.die_above and len(wanted) > args.die_above and self.die_at_ns is None:
            self.die_at_ns = time.time_ns() + int(args.die_after_s * 1e9)
        print(json.dumps({"event": "watching", "symbols": len(wanted)}), flush=True)

    def slow(self) -> bool:
        args = self.args
        if args.slow_above and len(self.watched) > args.slow_above:
            self.slow_latched = True
        return (
            self.slow_latched
            if args.sticky
            else (bool(args.slow_above) and len(self.watched) > args.slow_above)
        )

    def on_line(self, line: bytes, recv_ns: int) -> None:
        parts = line.decode("ascii", "replace").split(",")
        if len(parts) < 6 or parts[0] != "Q":
            return
        symbol = parts[1]
        times = [time_text_near_ns(text, recv_ns) for text in parts[3:6] if text]
        stamps = [t for t in times if t is not None]
        if not stamps or not parts[2].isdigit():
            return
        self.count += 1
        record: dict[str, Any] = {
            "symbol": symbol,
            "type": "quote",
            "seq": int(parts[2]),
            "exchange_ns": max(stamps),
            "recv_ns": recv_ns,
        }
        if self.args.no_type:
            del record["type"]
        delay_ms = 0.0
        if self.args.hold_every and self.count % self.args.hold_every == 0:
            delay_ms = self.args.hold_ms
            record["held_ms"] = delay_ms  # lets a test pick out the held messages
        if self.slow():
            delay_ms = max(delay_ms, self.args.slow_ms)
        due = recv_ns + int(delay_ms * 1e6)
        heapq.heappush(self.held, (due, self.count, json.dumps(record).encode(), symbol))
        args = self.args
        if args.stall_after and self.count == args.stall_after and not self.stalled:
            self.stall_pending = True  # after this read's lines: their recv stamps stay true

    def release_due(self) -> None:
        now = time.time_ns()
        while self.held and self.held[0][0] <= now:
            _, order, value, symbol = heapq.heappop(self.held)
            record = json.loads(value)
            record["produced_ns"] = stamp = time.time_ns()
            due = stamp + int(self.args.produce_delay_ms * 1e6)
            heapq.heappush(self.stamped, (due, order, json.dumps(record).encode(), symbol))
        now = time.time_ns()
        while self.stamped and self.stamped[0][0] <= now:
            _, _, value, symbol = heapq.heappop(self.stamped)
            self.producer.produce(
                self.args.topic,
                value,
                key=symbol.encode(),
                partition=self.partition.get(symbol, 0),
            )
        self.producer.poll(0)

    def run(self) -> None:
        self.handshake()
        while not self.stopping:
            if self.reload_requested:
                self.reload_requested = False
                self.reload()
            if self.die_at_ns is not None and time.time_ns() >= self.die_at_ns:
                os.kill(os.getpid(), signal.SIGKILL)
            timeout = 0.005
            for queue in (self.held, self.stamped):
                if queue:
                    timeout = max(0.0, min(timeout, (queue[0][0] - time.time_ns()) / 1e9))
            readable, _, _ = select.select([self.sock], [], [], timeout)
            if readable:
                chunk = self.sock.recv(1 << 16)
                recv_ns = time.time_ns()
                if not chunk:
                    break
                lines = (self.buffer + chunk).split(b"\r\n")
                self.buffer = lines.pop()
                for line in lines:
                    self.on_line(line, recv_ns)
            self.release_due()
            if self.stall_pending:
                self.stall_pending, self.stalled = False, True
                time.sleep(self.args.stall_ms / 1000)
        while self.held or self.stamped:
            self.release_due()
            time.sleep(0.001)
        self.producer.flush(30)


def main(argv: list[str]) -> int:
    extra = shlex.split(os.environ.get("DELAY_CORE_EXTRA_ARGS", ""))
    core = DelayCore(parse_args([*argv, *extra]))

    def on_hup(*_: object) -> None:
        core.reload_requested = True

    def on_term(*_: object) -> None:
        core.stopping = True

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    print(json.dumps({"event": "started", "pid": os.getpid()}), flush=True)
    core.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
