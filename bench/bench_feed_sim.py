"""feed_sim throughput, pacing lateness and memory (ARCHITECTURE.md "Performance budget").

Runs `feed-sim serve` in its own process on a generated 495-symbol tape (cached under
.cache/feed_sim), and a reading client in another process that watches all 495 symbols on the
Level 1 port and counts the `Q` lines it actually receives. Everything is driven through the
control API (feed_sim.control_client.FeedSimControl):

1. RSS of the simulator (psutil) once the 495 symbols are loaded;
2. paced: fixed rate, 50,000 msg/s over 495 symbols; achieved rate = messages the stage
   counted / stage duration; lateness percentiles from the stage's HDR histogram. Twice:
   `paced-ring` (render "ring": lines from pre-rendered per-symbol rings, the intended time
   patched in; what `harness run` uses at fixed rates) and `paced-live` (render "live": each
   message applied to the symbol's state and rendered, the faithful replay);
3. flat out: as fast as the client reads; achieved and client-received rates;
4. completeness: every Q line counted as sent was received;
5. the machine's floor for paced lateness (`pacing_floor`): a minimal pacer in this process
   (sleep until due, one `send` of 10 Q lines every 200 us, feed_sim's typical batch, to a
   reading process on loopback), and the CPU steal time (the hypervisor running something
   else on our vCPUs, /proc/stat) of every stage. A P99 of the minimal pacer above the
   target means the target cannot be met on this machine by any pacer in it.

Targets: paced lateness P99 <= 1 ms and achieved within 1% of target (judged on paced-ring;
paced-live's misses are printed as information); flat out >= 1,000,000 msg/s sent and
received. Exit status 1 when a target is missed (each miss is printed).

    .venv/bin/python bench/bench_feed_sim.py            # full: 60 s paced, 20 s flat out
    .venv/bin/python bench/bench_feed_sim.py --quick    # CI smoke: 5 s paced, 3 s flat out
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.hdr import percentiles  # noqa: E402
from contracts.sent import StageCounters  # noqa: E402
from feed_sim.control_client import ControlClientError, FeedSimControl  # noqa: E402

CACHE = ROOT / ".cache" / "feed_sim"
N_SYMBOLS = 495
PACED_TARGET = 50_000.0
FLAT_TARGET = 1_000_000.0
LATENESS_P99_US = 1_000
RATE_TOLERANCE = 0.01
TAPE_DAY = dt.date(2025, 11, 24)
TAPE_SEED = 20261125
FIELDSET = (
    "Symbol",
    "Most Recent Trade",
    "Most Recent Trade Size",
    "Most Recent Trade Time",
    "Most Recent Trade Market Center",
    "Total Volume",
    "Bid",
    "Bid Size",
    "Ask",
    "Ask Size",
    "Bid Time",
    "Ask Time",
    "Message Contents",
    "Most Recent Trade Conditions",
    "TickID",
)
"""The default fieldset plus TickID (the feed sequence of contract 4) and Bid/Ask Time."""


@dataclass
class StageResult:
    name: str
    target: float | None
    seconds: float
    sent: int
    received: int
    lateness_us: dict[str, int]
    steal_pct: float

    @property
    def achieved(self) -> float:
        return self.sent / self.seconds

    @property
    def received_rate(self) -> float:
        return self.received / self.seconds


# -- the reading client (own process) ---------------------------------------------------------


def client_main(
    port: int,
    symbols: list[str],
    q_lines: Synchronized[int],
    ready: Any,
    stop: Any,
) -> None:
    """Watch `symbols` on the Level 1 port and count the Q lines received (to `q_lines`)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    setup = ["S,SET PROTOCOL,6.2", "S,SELECT UPDATE FIELDS," + ",".join(FIELDSET[1:])]
    setup += [f"w{symbol}" for symbol in symbols]
    sock.sendall(("\r\n".join(setup) + "\r\n").encode())
    sock.settimeout(0.2)
    ready.set()
    count = 0
    last = b"\r\n"
    while not stop.is_set():
        try:
            data = sock.recv(1 << 20)
        except TimeoutError:
            continue
        if not data:
            break
        count += (last + data[:2]).count(b"\nQ,") + data.count(b"\nQ,")
        last = data[-2:]
        q_lines.value = count
    sock.close()


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
    return (
        f"{os.cpu_count()} cores, {model}, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"Python {platform.python_version()}, Linux {platform.release()}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_tape(minutes: float) -> Path:
    """A generated 495-symbol session (Level 1 and depth), cached by its parameters."""
    from feed_sim.generate.tape_gen import generate_tape

    path = CACHE / f"bench-{TAPE_DAY.isoformat()}-{N_SYMBOLS}s-{minutes:g}m-{TAPE_SEED}.tape"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.relative_to(ROOT)} (once) ...", flush=True)
        generate_tape(path, N_SYMBOLS, TAPE_DAY, TAPE_SEED, duration_s=minutes * 60)
    return path


def wait_for_control(control: FeedSimControl, server: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"feed-sim serve exited with {server.returncode}")
        try:
            return control.status()
        except ControlClientError:
            time.sleep(0.5)
    raise SystemExit("feed-sim did not come up within 600 s")


def wait_until_all_sent(control: FeedSimControl, label: str, timeout_s: float = 60.0) -> None:
    """Warm-up: until every symbol has sent in stage `label` (flat out builds rings first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(control.counters(label).level1) >= N_SYMBOLS:
            return
        time.sleep(0.25)


def wait_for_rings(control: FeedSimControl, count: int, timeout_s: float = 60.0) -> None:
    """Until every symbol is served from its rings (render "ring")."""
    deadline = time.monotonic() + timeout_s
    while control.status()["ring_symbols"] < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"rings not built for {count} symbols in {timeout_s:.0f} s")
        time.sleep(0.5)


def run_stage(
    control: FeedSimControl,
    label: str,
    seconds: float,
    q_lines: Synchronized[int],
    target: float | None,
) -> StageResult:
    control.stage(label)
    received0 = q_lines.value
    cpu0 = psutil.cpu_times()
    time.sleep(seconds)
    cpu1 = psutil.cpu_times()
    received1 = q_lines.value
    control.stage(f"after-{label}")
    counters: StageCounters = control.counters(label)
    duration = (counters.ended_ns - counters.started_ns) / 1e9
    return StageResult(
        label,
        target,
        duration,
        counters.messages,
        received1 - received0,
        percentiles(counters.lateness_us, (50, 99, 99.9)),
        steal_percent(cpu0, cpu1),
    )


def steal_percent(before: Any, after: Any) -> float:
    """CPU steal time between two `psutil.cpu_times()` as % of all CPU time (0 where the
    kernel does not report steal)."""
    total = sum(after) - sum(before)
    steal = getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0)
    return 100.0 * steal / total if total > 0 else 0.0


# -- the machine's floor for paced lateness ----------------------------------------------------


FLOOR_INTERVAL_NS = 200_000
FLOOR_LINES = 10
FLOOR_LINE = (
    b"Q,MSFT,412.3700,100,15:59:58.123456,11,21345678,412.3600,300,412.3800,400,"
    b"15:59:58.123456,15:59:58.123456,ba,3D,1234567,\r\n"
)
"""A Q line in the benchmark's fieldset, about the length feed_sim sends."""


def floor_reader(port: int, ready: Any) -> None:
    """The floor's reading process: reads as the benchmark client does, until EOF."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    ready.set()
    while sock.recv(1 << 20):
        pass
    sock.close()


def pacing_floor(seconds: float, line: bytes) -> tuple[dict[str, int], dict[str, int], float]:
    """Lateness (us) of a minimal pacer: every FLOOR_INTERVAL_NS, sleep until due (the last
    3 ms by time.sleep, as feed_sim's pacer) and send FLOOR_LINES copies of `line` to a
    reading process; lateness = send returned - due. Returns (lateness percentiles, send
    call percentiles, steal %)."""
    from contracts.hdr import new_histogram, record_many

    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        reader = ctx.Process(
            target=floor_reader, args=(listener.getsockname()[1], ready), name="floor-reader"
        )
        reader.start()
        conn, _ = listener.accept()
    ready.wait(30)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    batch = line * FLOOR_LINES
    late: list[int] = []
    calls: list[int] = []
    clock = time.perf_counter_ns
    cpu0 = psutil.cpu_times()
    due = clock() + FLOOR_INTERVAL_NS
    end = due + int(seconds * 1e9)
    try:
        while due < end:
            wait = due - clock()
            if wait > 0:
                time.sleep(wait / 1e9)
            started = clock()
            conn.sendall(batch)
            sent = clock()
            late.append(sent - due)
            calls.append(sent - started)
            due += FLOOR_INTERVAL_NS
    finally:
        conn.close()
        reader.join(10)
        if reader.is_alive():
            reader.terminate()
    steal = steal_percent(cpu0, psutil.cpu_times())
    late_hist, call_hist = new_histogram(), new_histogram()
    record_many(late_hist, [ns // 1000 for ns in late])
    record_many(call_hist, [ns // 1000 for ns in calls])
    points = (50, 99, 99.9)
    return percentiles(late_hist, points), percentiles(call_hist, points), steal


def table(rows: list[StageResult]) -> str:
    head = (
        f"{'mode':<10} {'target msg/s':>13} {'achieved':>12} {'client recv':>12} "
        f"{'P50 us':>7} {'P99 us':>7} {'P99.9 us':>8} {'max us':>7} {'seconds':>7} "
        f"{'steal %':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        target = f"{r.target:,.0f}" if r.target else "as fast"
        lat = r.lateness_us
        lines.append(
            f"{r.name:<10} {target:>13} {r.achieved:>12,.0f} {r.received_rate:>12,.0f} "
            f"{lat['p50']:>7} {lat['p99']:>7} {lat['p99.9']:>8} {lat['max']:>7} "
            f"{r.seconds:>7.1f} {r.steal_pct:>7.1f}"
        )
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: 5 s paced, 3 s flat out")
    parser.add_argument("--paced-seconds", type=float, default=None)
    parser.add_argument("--flat-seconds", type=float, default=None)
    parser.add_argument(
        "--tape-minutes", type=float, default=2.0, help="length of the generated tape"
    )
    args = parser.parse_args()
    paced_s = args.paced_seconds or (5.0 if args.quick else 60.0)
    flat_s = args.flat_seconds or (3.0 if args.quick else 20.0)

    tape = bench_tape(args.tape_minutes)
    control_port = free_port()
    server_log = (CACHE / "bench-feed-sim-serve.log").open("wb")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "feed_sim.cli", "serve", "--tape", str(tape)),
            *("--control-port", str(control_port), "--paused", "--status-every", "0"),
            *("--level1-port", "0", "--level2-port", "0", "--admin-port", "0"),
            *("--lookup-port", "0", "--mode", "fixed"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=server_log,
    )
    ctx = mp.get_context("spawn")
    q_lines: Synchronized[int] = ctx.Value("q", 0, lock=False)
    ready, stop = ctx.Event(), ctx.Event()
    client: Any = None
    failures: list[str] = []
    try:
        control = FeedSimControl(f"http://127.0.0.1:{control_port}", timeout_s=60)
        t0 = time.monotonic()
        status = wait_for_control(control, server)
        load_s = time.monotonic() - t0
        proc = psutil.Process(server.pid)
        rss_loaded = proc.memory_info().rss
        loaded = status["symbols_loaded"]
        if loaded < N_SYMBOLS:
            failures.append(f"only {loaded} symbols loaded (want {N_SYMBOLS})")
        symbols = [str(s) for s in _loaded_symbols(tape)]
        control.set_symbols(symbols)

        client = ctx.Process(
            target=client_main,
            args=(status["ports"]["level1"], symbols, q_lines, ready, stop),
            name="bench-client",
        )
        client.start()
        ready.wait(30)
        time.sleep(1.0)  # watches answered (F and P lines)

        floor_s = min(paced_s, 20.0)
        floor_late, floor_calls, floor_steal = pacing_floor(floor_s, FLOOR_LINE)
        rows: list[StageResult] = []
        control.set_rate("fixed", rate_hz=PACED_TARGET / len(symbols), render="ring")
        control.stage("warmup-paced")
        control.start()
        wait_for_rings(control, len(symbols))
        time.sleep(10.0)  # the backlog of the build (rendered live meanwhile) drains
        rows.append(run_stage(control, "paced-ring", paced_s, q_lines, PACED_TARGET))
        control.set_rate("fixed", rate_hz=PACED_TARGET / len(symbols), render="live")
        control.stage("warmup-live")
        time.sleep(2.0)
        rows.append(run_stage(control, "paced-live", paced_s, q_lines, PACED_TARGET))

        control.set_rate("flat")  # then the stage: everything in it is flat out
        control.stage("warmup-flat")
        wait_until_all_sent(control, "warmup-flat")  # rings built for every symbol
        time.sleep(1.0)
        rows.append(run_stage(control, "flat", flat_s, q_lines, FLAT_TARGET))
        rss_end = proc.memory_info().rss
        control.stop()
        stages = ("stage-0", "warmup-paced", "paced-ring", "after-paced-ring", "warmup-live",
                  "paced-live", "after-paced-live", "warmup-flat", "flat")  # fmt: skip
        sent_total = sum(control.counters(label).messages for label in (*stages, "after-flat"))
        deadline = time.monotonic() + 30
        while q_lines.value < sent_total and time.monotonic() < deadline:
            time.sleep(0.2)
        received_total = q_lines.value
        cutoffs = control.status()["slow_client_cutoffs"]
    finally:
        stop.set()
        if client is not None:
            client.join(5)
            if client.is_alive():
                client.terminate()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()

    paced, live, flat = rows
    if paced.lateness_us["p99"] > LATENESS_P99_US:
        failures.append(f"paced lateness P99 {paced.lateness_us['p99']} us > {LATENESS_P99_US}")
    if abs(paced.achieved - PACED_TARGET) > RATE_TOLERANCE * PACED_TARGET:
        failures.append(f"paced achieved {paced.achieved:,.0f} msg/s not within 1% of target")
    info = []
    if live.lateness_us["p99"] > LATENESS_P99_US:
        info.append(f"paced-live lateness P99 {live.lateness_us['p99']} us > {LATENESS_P99_US}")
    if abs(live.achieved - PACED_TARGET) > RATE_TOLERANCE * PACED_TARGET:
        info.append(f"paced-live achieved {live.achieved:,.0f} msg/s not within 1% of target")
    if flat.achieved < FLAT_TARGET:
        failures.append(f"flat out sent {flat.achieved:,.0f} msg/s < {FLAT_TARGET:,.0f}")
    if flat.received_rate < FLAT_TARGET:
        failures.append(f"flat out received {flat.received_rate:,.0f} msg/s < {FLAT_TARGET:,.0f}")
    if received_total != sent_total or cutoffs:
        failures.append(
            f"completeness: client received {received_total:,} of {sent_total:,} Q lines "
            f"({cutoffs} slow-client cutoffs)"
        )

    mode = "QUICK (CI smoke figures, short runs)" if args.quick else "full"
    print(f"feed_sim benchmark, {mode}")
    print(f"machine: {machine()}")
    print(
        f"setup: feed-sim serve and the reading client in separate processes on loopback; "
        f"tape {tape.name} ({_event_count(tape):,} events), {len(symbols)} symbols watched, "
        f"fieldset of {len(FIELDSET)} fields incl. TickID"
    )
    print(
        f"simulator RSS with {loaded} symbols loaded: {rss_loaded / 2**20:,.0f} MiB "
        f"(load {load_s:.0f} s); after the run: {rss_end / 2**20:,.0f} MiB"
    )
    print(table(rows))
    print(
        f"machine floor ({floor_s:g} s, before the stages): a minimal pacer sending "
        f"{FLOOR_LINES} x {len(FLOOR_LINE)}-byte lines every {FLOOR_INTERVAL_NS // 1000} us "
        f"to a reading process: lateness P50 {floor_late['p50']} / P99 {floor_late['p99']} / "
        f"P99.9 {floor_late['p99.9']} / max {floor_late['max']} us; the send call alone "
        f"P50 {floor_calls['p50']} / P99 {floor_calls['p99']} / max {floor_calls['max']} us; "
        f"steal {floor_steal:.1f}%"
    )
    if floor_late["p99"] > LATENESS_P99_US:
        print(
            f"machine floor: even the minimal pacer's lateness P99 ({floor_late['p99']} us) "
            f"is above the {LATENESS_P99_US} us target on this machine"
        )
    print(
        f"completeness: {received_total:,} Q lines received of {sent_total:,} sent, "
        f"slow-client cutoffs {cutoffs}"
    )
    if args.quick:
        print(
            "quick mode is a smoke figure: same targets over a few seconds; "
            "the full mode (60 s paced) is the figure of record."
        )
    for line in info:
        print(f"information (live rendering, not the target's mode): {line}")
    if failures:
        for failure in failures:
            print(f"TARGET MISSED: {failure}")
        return 1
    print(
        "targets met: paced (ring) P99 <= 1 ms and within 1% of 50,000 msg/s; "
        "flat out >= 1,000,000 msg/s sent and received"
    )
    return 0


def _loaded_symbols(tape: Path) -> tuple[str, ...]:
    from feed_sim.tape.format import read_header

    return read_header(tape).symbols


def _event_count(tape: Path) -> int:
    from feed_sim.tape.format import read_header

    return read_header(tape).event_count


if __name__ == "__main__":
    sys.exit(main())
