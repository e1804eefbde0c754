"""The `feed-sim` command line: serve, generate, convert, record, amplify."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.status import Status

from contracts.endpoints import DEFAULT_CONTROL_PORT, FEED_PORTS
from feed_sim import __version__
from feed_sim.generate.session import previous_trading_day
from feed_sim.server.app import FeedSimServer

if TYPE_CHECKING:
    from feed_sim.generate.tape_gen import SymbolDay

console = Console(stderr=True, highlight=False, soft_wrap=True)
"""stderr; lines are not wrapped (in a log file each message stays one line)."""
T = TypeVar("T")

PROGRESS_EVERY_S = 0.5
"""Seconds between plain progress lines when stderr is not a terminal (a log file)."""


class StartupProgress:
    """What `serve` does before it listens: a live status line on a terminal; in a log file
    plain lines (each step's first and last, and at most one per PROGRESS_EVERY_S between),
    which the harness's FeedSimProcess relays while it waits."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self._status: Status | None = None
        self._last = 0.0

    def __enter__(self) -> StartupProgress:
        if self.out.is_terminal:
            self._status = self.out.status("starting...")
            self._status.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()

    def update(self, text: str, force: bool = False) -> None:
        """The current step and how far it is (replaces the previous one on a terminal)."""
        if self._status is not None:
            self._status.update(escape(text))
            return
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self.note(text)

    def note(self, text: str) -> None:
        """A line that stays, also on a terminal."""
        self.out.print(text, markup=False, highlight=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        self.out.print(f"warning: {text}", markup=False, soft_wrap=True, style="yellow")

    def count(self, items: Iterable[T], total: int, label: str) -> Iterator[T]:
        """`items`, reporting `label: n/total symbols` as each one is taken and processed."""
        self.update(f"{label}: 0/{total} symbols", force=True)
        for n, item in enumerate(items, 1):
            yield item
            self.update(f"{label}: {n}/{total} symbols", force=n == total)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="feed-sim")
def main() -> None:
    """feed-sim: a replay-based IQFeed (IQConnect) protocol simulator.

    Serves the IQFeed ports on loopback (Level 1 5009, Level 2 9200, admin 9300, lookup 9100)
    from tapes: recorded IQConnect sessions, converted IQFeed tick history, or a realistic
    generated market. Every message is paced on an open-model schedule and its time fields
    carry its intended send time, so downstream lag is measured without coordinated omission.
    """


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind (IQConnect binds loopback only).",
)
@click.option("--level1-port", default=FEED_PORTS["level1"], show_default=True, type=int)
@click.option("--level2-port", default=FEED_PORTS["level2"], show_default=True, type=int)
@click.option("--admin-port", default=FEED_PORTS["admin"], show_default=True, type=int)
@click.option("--lookup-port", default=FEED_PORTS["lookup"], show_default=True, type=int)
@click.option(
    "--control-port",
    default=DEFAULT_CONTROL_PORT,
    show_default=True,
    type=int,
    help="HTTP/JSON control API (see feed_sim/control.py).",
)
@click.option(
    "--tape",
    "tapes",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Tape file(s) to serve. Default: a generated session of --symbols production "
    "symbols (config/production_symbols.json), cached under .cache/tapes.",
)
@click.option(
    "--symbols",
    "n_symbols",
    default=495,
    show_default=True,
    type=click.IntRange(1, 495),
    help="Symbols of the generated default tape.",
)
@click.option(
    "--minutes",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 390),
    help="Length of the generated default tape, from the open.",
)
@click.option("--seed", default=20261125, show_default=True, type=int)
@click.option(
    "--mode",
    type=click.Choice(["tape", "fixed", "flat"]),
    default="tape",
    show_default=True,
    help="tape: the tape's own timing x --speed; fixed: --rate "
    "msg/s per symbol; flat: as fast as possible.",
)
@click.option(
    "--rate",
    "rate_hz",
    default=100.0,
    show_default=True,
    type=float,
    help="Level 1 msg/s per symbol in fixed mode.",
)
@click.option(
    "--l2-rate",
    "l2_rate_hz",
    default=0.0,
    show_default=True,
    type=float,
    help="Level 2 msg/s per symbol in fixed mode.",
)
@click.option(
    "--speed", default=1.0, show_default=True, type=float, help="Tape-timing speed factor."
)
@click.option(
    "--render",
    type=click.Choice(["live", "ring"]),
    default="live",
    show_default=True,
    help="Fixed mode: render each message live from the tape (faithful), or take it from "
    "pre-rendered per-symbol rings with its intended time patched in (a few us a message; "
    "content repeats every 1,000 messages of a symbol, see feed_sim/server/paced_rings.py).",
)
@click.option(
    "--symbol-limit",
    default=500,
    show_default=True,
    type=int,
    help="Max Level 1 symbols (S,CUST; beyond it: S,SYMBOL LIMIT REACHED).",
)
@click.option("--paused", is_flag=True, help="Serve but wait for POST /start to send data.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option(
    "--status-every",
    default=5.0,
    show_default=True,
    type=float,
    help="Seconds between status lines (0: none).",
)
def serve(
    host: str,
    level1_port: int,
    level2_port: int,
    admin_port: int,
    lookup_port: int,
    control_port: int,
    tapes: tuple[str, ...],
    n_symbols: int,
    minutes: float,
    seed: int,
    mode: str,
    rate_hz: float,
    l2_rate_hz: float,
    speed: float,
    render: str,
    symbol_limit: int,
    paused: bool,
    duration: float | None,
    status_every: float,
) -> None:
    """Serve the IQFeed ports until Ctrl-C / SIGTERM (clean shutdown).

    Without --tape it serves a generated session: --symbols production symbols, --minutes
    from the open of the last trading day, --seed. Generated sessions are cached in .cache/tapes/
    of the checkout ($FEED_SIM_CACHE_DIR overrides it), one file per symbols, minutes, seed,
    session day and generator version (a hash of feed_sim/generate's code and data and of
    numpy's version), so only the first start of a trading day generates; the 6 most recently used
    are kept, an unreadable one is regenerated. To clear it: rm -rf .cache/tapes (make clean
    removes all of .cache).
    """
    from feed_sim.server.app import ServeConfig
    from feed_sim.server.engine import RateSettings

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    config = ServeConfig(
        host=host,
        control_port=control_port,
        symbol_limit=symbol_limit,
        ports={
            "level1": level1_port,
            "level2": level2_port,
            "admin": admin_port,
            "lookup": lookup_port,
        },
    )

    async def run() -> None:
        server = FeedSimServer(config)
        if tapes:
            with console.status("loading tapes..."):
                loaded = server.load_tapes(tapes)
        else:
            with StartupProgress(console) as progress:
                loaded = _load_default_market(server, n_symbols, minutes, seed, progress)
        # The loaded markets live as long as the process: keep them out of the collector's
        # full passes, which would otherwise stall the pacer for tens of ms at a time.
        gc.collect()
        gc.freeze()
        server.engine.set_rate(
            RateSettings(
                mode=mode, rate_hz=rate_hz, l2_rate_hz=l2_rate_hz, speed=speed, render=render
            )
        )
        try:
            await server.start()
        except OSError as exc:
            console.print(f"[red]error:[/] cannot bind: {exc}")
            sys.exit(4)
        ports = ", ".join(f"{k} {v}" for k, v in server.bound_ports.items())
        console.print(f"feed-sim serving {len(loaded)} symbols on {host}: {ports}")
        if not paused:
            server.engine.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        started = time.monotonic()
        last = server.engine.counters.messages
        try:
            while not stop.is_set():
                wait = status_every if status_every > 0 else 3600.0
                if duration is not None:
                    wait = min(wait, max(0.0, duration - (time.monotonic() - started)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                if duration is not None and time.monotonic() - started >= duration:
                    break
                if status_every > 0:
                    status = server.engine.status()
                    sent = server.engine.counters.messages
                    console.print(
                        f"[{time.strftime('%H:%M:%S')}] {status['mode']} "
                        f"{(sent - last) / status_every:,.0f} msg/s, clients {status['clients']},"
                        f" lateness p99 {status['lateness_us']['p99']} us, "
                        f"stage {status['stage']}"
                    )
                    last = sent
        finally:
            await server.close()
            console.print("feed-sim stopped")

    # Until the loop takes SIGTERM over (add_signal_handler above), a SIGTERM unwinds instead
    # of killing outright, so the session cache's temp file is removed.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    asyncio.run(run())


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _load_default_market(
    server: FeedSimServer, n_symbols: int, minutes: float, seed: int, progress: StartupProgress
) -> list[str]:
    """The embedded default: a generated session of the production symbols from the open of
    the last trading day, loaded as columns (no tape file). Read from the session cache when it
    holds this session (feed_sim/generate/cache.py), else generated and cached on the way."""
    from feed_sim.generate.cache import (
        CacheError,
        GenerationInputs,
        cache_path,
        read_session,
        write_through,
    )
    from feed_sim.generate.universe import load_symbols, select_symbols

    specs = select_symbols(load_symbols(), n_symbols)
    inputs = GenerationInputs(tuple(specs), previous_trading_day(), seed, duration_s=minutes * 60)
    what = f"{n_symbols} symbols x {minutes:g} min of {inputs.day}, seed {seed}"
    path = cache_path(inputs)
    started = time.monotonic()
    days: list[SymbolDay] | None = None
    if path.is_file():
        label = f"reading cached session {path.name}"
        progress.update(f"{label}: 0/{n_symbols} symbols", force=True)
        try:
            days = read_session(
                path, inputs, lambda n: progress.update(f"{label}: {n}/{n_symbols} symbols")
            )
        except CacheError as exc:
            progress.warn(f"{exc}; generating the session again")
    if days is not None:
        taken = _taken(days)  # each symbol's columns freed once the engine has its own
        server.engine.load_generated(progress.count(taken, n_symbols, f"loading {what}"))
        progress.note(f"loaded cached session {path} ({time.monotonic() - started:.1f} s)")
    else:
        failures: list[str] = []

        def cache_failed(message: str) -> None:
            failures.append(message)
            progress.warn(message)

        generated = write_through(path, inputs, inputs.generate(), cache_failed)
        server.engine.load_generated(progress.count(generated, n_symbols, f"generating {what}"))
        progress.note(
            f"generated {what} in {time.monotonic() - started:.1f} s"
            + ("; not cached" if failures else f"; cached as {path}")
        )
    server.engine.tape_sources.append(
        f"generated: {n_symbols} symbols, {minutes:g} min from the open, seed {seed}"
    )
    return [s.symbol for s in specs]


def _taken(items: list[T]) -> Iterator[T]:
    """The items of `items` in order, each removed from the list as it is handed out."""
    items.reverse()
    while items:
        yield items.pop()


@main.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--symbols",
    "n_symbols",
    default=495,
    show_default=True,
    type=click.IntRange(1, 495),
    help="A liquidity-stratified subset of this size.",
)
@click.option(
    "--day",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Session date (ET). Default: the last NYSE trading day.",
)
@click.option("--seed", default=20261125, show_default=True, type=int)
@click.option(
    "--session", type=click.Choice(["regular", "extended"]), default="regular", show_default=True
)
@click.option("--minutes", type=float, default=None, help="Only this many minutes.")
@click.option(
    "--start-offset-min",
    type=float,
    default=0.0,
    show_default=True,
    help="Start this many minutes into the session.",
)
@click.option(
    "--rate-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Scale every symbol's activity.",
)
@click.option("--no-depth", is_flag=True, help="No Level 2 market-maker events.")
def generate(
    out: Path,
    n_symbols: int,
    day: dt.datetime | None,
    seed: int,
    session: str,
    minutes: float | None,
    start_offset_min: float,
    rate_scale: float,
    no_depth: bool,
) -> None:
    """Generate a realistic synthetic tape calibrated on ../shared/market-facts.md."""
    from feed_sim.generate.tape_gen import generate_tape

    session_day = day.date() if day else previous_trading_day()
    started = time.monotonic()
    with console.status(f"generating {n_symbols} symbols for {session_day}..."):
        header = generate_tape(
            out,
            n_symbols,
            session_day,
            seed,
            "extended" if session == "extended" else "regular",
            include_depth=not no_depth,
            duration_s=None if minutes is None else minutes * 60,
            start_offset_s=start_offset_min * 60,
            rate_scale=rate_scale,
        )
    console.print(
        f"{out}: {header.event_count:,} events, {len(header.symbols)} symbols, "
        f"{time.monotonic() - started:.1f} s"
    )


@main.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--symbol", required=True, help="Symbol to file the trades under.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def convert(source: Path, symbol: str, out: Path) -> None:
    """Convert an IQFeed tick-history reply (csv or zip) into a tape of trades with NBBO."""
    from feed_sim.tape.convert import convert_history

    header = convert_history(source, out, symbol.upper())
    console.print(
        f"{out}: {header.event_count:,} trades, skipped "
        f"{header.meta.get('skipped', 0)} malformed rows"
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--level1-port", default=FEED_PORTS["level1"], show_default=True, type=int)
@click.option("--level2-port", default=FEED_PORTS["level2"], show_default=True, type=int)
@click.option("--symbol", "symbols", multiple=True, required=True, help="Symbol to watch.")
@click.option("--level2", is_flag=True, help="Also record WOR depth watches.")
@click.option("--seconds", default=60.0, show_default=True, type=float)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def record(
    host: str,
    level1_port: int,
    level2_port: int,
    symbols: tuple[str, ...],
    level2: bool,
    seconds: float,
    out: Path,
) -> None:
    """Record a live IQConnect session (every received line with its receive time)."""
    from feed_sim.tape.record import record_session

    ports = {"level1": level1_port}
    if level2:
        ports["level2"] = level2_port
    try:
        header = record_session(host, ports, [s.upper() for s in symbols], out, seconds, level2)
    except ConnectionError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(4)
    console.print(f"{out}: {header.event_count:,} lines recorded")


@main.command()
@click.argument(
    "sources", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--symbols",
    "n_symbols",
    default=495,
    show_default=True,
    type=click.IntRange(1, 495),
    help="Target symbols (stratified subset).",
)
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--max-offset-s", default=600.0, show_default=True, type=float)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def amplify(
    sources: tuple[Path, ...], n_symbols: int, seed: int, max_offset_s: float, out: Path
) -> None:
    """Drive N production symbols from fewer source tapes (labelled amplified)."""
    from feed_sim.generate.universe import load_symbols, select_symbols
    from feed_sim.tape.amplify import write_amplified_tape
    from feed_sim.tape.format import load_tape
    from feed_sim.tape.model import TapeEvent

    events_by_source: dict[str, list[TapeEvent]] = {}
    for path in sources:
        _, events = load_tape(path)
        for event in events:
            events_by_source.setdefault(event.symbol, []).append(event)
    targets = [(s.symbol, s.price) for s in select_symbols(load_symbols(), n_symbols)]
    header = write_amplified_tape(out, events_by_source, targets, seed, max_offset_s)
    console.print(
        f"{out}: {header.event_count:,} events for {len(targets)} symbols from "
        f"{len(events_by_source)} source symbol(s) (amplified)"
    )


if __name__ == "__main__":
    main()
