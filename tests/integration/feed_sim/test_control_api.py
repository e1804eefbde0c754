"""feed_sim's HTTP control API through `FeedSimControl` against the real endpoint: status,
symbols, rate modes, stages and counters (contract 5: sent per symbol and its TickID range equal
what a watching client received), the lateness histogram, and each fault's effect on a client."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contracts.hdr import decode
from feed_sim.control_client import ControlClientError, FeedSimControl
from feed_sim.protocol.timefmt import parse_et_time_of_day
from feed_sim.server.engine import RateSettings
from feed_sim.server.faults import MALFORMED_LINES
from tests.feed_sim_server import RunningServer, serve

from .conftest import Layout, LineClient

pytestmark = pytest.mark.integration

Connect = Callable[..., LineClient]
RATE = 20.0
RING_RATE = 5.0
TIMED = Layout(("Symbol", "TickID", "Message Contents", "Most Recent Trade Time", "Bid Time"))


@pytest.fixture
def controlled(small_tape: Path) -> Iterator[tuple[RunningServer, FeedSimControl]]:
    with serve([small_tape], rate=RateSettings(mode="fixed", rate_hz=RATE)) as feed:
        yield feed, FeedSimControl(feed.control_url, timeout_s=10)


def _watch(feed: RunningServer, connect: Connect, *symbols: str) -> LineClient:
    client = connect(feed.port("level1"))
    client.send("S,SELECT UPDATE FIELDS," + ",".join(TIMED.names[1:]))
    client.until(lambda s: s.startswith("S,CURRENT UPDATE FIELDNAMES,"))
    for symbol in symbols:
        client.send(f"w{symbol}")
        summary = f"P,{symbol},"
        client.until(lambda s: s.startswith(summary))  # noqa: B023 (used right away)
    return client


def _intended(q: dict[str, str], now_ns: int) -> int:
    """The message's intended time: its trade time for trades, its bid time for quotes (every
    quote of the small tape changes the bid size)."""
    stamp = q["Most Recent Trade Time"] if q["Message Contents"][:1] == "C" else q["Bid Time"]
    return parse_et_time_of_day(now_ns, stamp)


def test_status_and_errors(controlled: tuple[RunningServer, FeedSimControl]) -> None:
    feed, control = controlled
    status = control.status()
    assert status["running"] is True and status["mode"] == "fixed"
    assert status["symbols_loaded"] == 3
    assert set(status["ports"]) == {"level1", "level2", "admin", "lookup", "control"}
    assert status["ports"]["level1"] == feed.port("level1")
    assert status["handler_errors"] == 0
    with pytest.raises(ControlClientError, match=r"HTTP 400.*mode must be"):
        control.set_rate("sideways")
    with pytest.raises(ControlClientError, match="HTTP 400"):
        control.set_rate("fixed", rate_hz=-1)
    with pytest.raises(ControlClientError, match="HTTP 400"):
        control.stage("")
    with pytest.raises(ControlClientError, match="HTTP 400"):
        control.fault("stall", ms=0)
    with pytest.raises(ControlClientError, match="HTTP 404"):
        control.call("GET", "/nothing")
    with pytest.raises(ControlClientError, match="HTTP 400"):
        control.counters("no-such-stage")


def test_symbols_and_rate_modes(
    controlled: tuple[RunningServer, FeedSimControl], connect: Connect
) -> None:
    feed, control = controlled
    client = _watch(feed, connect, "AAPL", "MSFT")
    reply = control.set_symbols(["AAPL", "BOGUS"])
    assert reply == {"active": 1, "unknown": ["BOGUS"]}
    client.sync()
    symbols = {s.split(",")[1] for s in client.collect(1.5) if s.startswith("Q,")}
    assert symbols == {"AAPL"}
    assert control.set_rate("tape", speed=2.0)["mode"] == "tape"
    client.sync()
    assert any(s.startswith("Q,AAPL,") for s in client.collect(1.5))
    assert control.set_rate("flat")["mode"] == "flat"
    flat = [s for s in client.collect(1.0) if s.startswith("Q,AAPL,")]
    assert len(flat) > 200
    status = control.set_rate("fixed", rate_hz=RATE)
    assert (status["mode"], status["rate_hz"]) == ("fixed", RATE)
    client.sync()
    ticks = [int(TIMED.parse(s)["TickID"]) for s in client.collect(1.0) if s[:2] == "Q,"]
    assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)  # monotonic across modes


def test_stage_counters_match_what_a_client_received(
    controlled: tuple[RunningServer, FeedSimControl], connect: Connect
) -> None:
    feed, control = controlled
    client = _watch(feed, connect, "AAPL", "IBM")
    control.pause()
    control.stage("stage-test")
    client.sync()  # every line sent before the stage is read
    control.resume()
    lines = client.collect(2.5)
    control.pause()
    lines += client.sync()
    counters = control.counters("stage-test")  # still paused: nothing sent since the sync
    assert counters.label == "stage-test"
    for symbol in ("AAPL", "IBM"):
        ticks = [int(TIMED.parse(s)["TickID"]) for s in lines if s.startswith(f"Q,{symbol},")]
        count = counters.level1[symbol]
        missing = sorted(set(range(count.first_seq, count.last_seq + 1)) - set(ticks))
        assert count.sent == len(ticks) > 10, (symbol, missing, ticks[:3], ticks[-3:])
        assert (count.first_seq, count.last_seq) == (ticks[0], ticks[-1])
    assert "MSFT" not in counters.level1  # unwatched: never sent
    assert counters.unwatched_slots > 0
    raw = control.call("GET", "/counters?stage=stage-test")  # the current stage: buffered
    histogram = decode(raw["lateness_us"])  # lateness values are recorded before the reply
    assert histogram.get_total_count() == raw["messages"] > 0
    assert histogram.get_max_value() < 10_000_000


def test_stall_shows_as_lateness_and_a_gap(
    controlled: tuple[RunningServer, FeedSimControl], connect: Connect
) -> None:
    feed, control = controlled
    client = _watch(feed, connect, "AAPL")
    control.stage("stalled")
    control.fault("stall", ms=1500)
    lines = [TIMED.parse(s) for s in client.collect(3.0) if s.startswith("Q,AAPL,")]
    assert lines
    control.status()
    histogram = control.counters("stalled").lateness_us
    assert histogram.get_max_value() >= 1_000_000  # >= 1 s late: the stalled slots
    now_ns = time.time_ns()
    times = [_intended(q, now_ns) for q in lines]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < 1.5e9 / RATE  # slots keep their intended times: no gap in the schedule


def test_burst_raises_the_rate(
    controlled: tuple[RunningServer, FeedSimControl], connect: Connect
) -> None:
    feed, control = controlled
    client = _watch(feed, connect, "AAPL")
    now_ns = time.time_ns()
    normal = [_intended(TIMED.parse(s), now_ns) for s in client.collect(1.0) if s[:2] == "Q,"]
    normal_gaps = [b - a for a, b in itertools.pairwise(normal)]
    assert min(normal_gaps) > 0.9e9 / RATE
    control.fault("burst", factor=4, seconds=1.5)
    burst = [_intended(TIMED.parse(s), now_ns) for s in client.collect(1.2) if s[:2] == "Q,"]
    burst_gaps = [b - a for a, b in itertools.pairwise(burst)]
    fast = [g for g in burst_gaps if g < 0.3e9 / RATE]
    assert len(fast) >= 10


def test_malformed_lines_reach_the_client(
    controlled: tuple[RunningServer, FeedSimControl], connect: Connect
) -> None:
    feed, control = controlled
    client = connect(feed.port("level1"))
    client.sync()
    reply = control.fault("malformed", count=len(MALFORMED_LINES), port="level1")
    assert reply["sent"] == len(MALFORMED_LINES)
    got: list[bytes] = []
    while len(got) < len(MALFORMED_LINES):
        raw = client.raw_line()
        assert raw is not None
        if not raw.startswith(b"T,"):
            got.append(raw)
    assert got == list(MALFORMED_LINES)
    assert control.counters().malformed_lines == len(MALFORMED_LINES)


def test_drop_cuts_only_the_named_port(
    controlled: tuple[RunningServer, FeedSimControl], connect: Connect
) -> None:
    feed, control = controlled
    level1 = _watch(feed, connect, "AAPL")
    level2 = connect(feed.port("level2"))
    level2.expect()
    assert control.fault("drop", port="level1") == {"dropped": 1}
    level1.collect(2.0)
    assert level1.closed_by_peer
    level2.send("S,REQUEST WATCHES")
    assert level2.expect().startswith("S,WATCHES")
    assert not level2.closed_by_peer


def test_server_disconnect_silences_level1(
    controlled: tuple[RunningServer, FeedSimControl], connect: Connect
) -> None:
    feed, control = controlled
    client = _watch(feed, connect, "AAPL")
    before = client.collect(0.5)
    control.fault("disconnect", ms=1000)
    _, more = client.until(lambda s: s == "S,SERVER DISCONNECTED")
    before += more
    _, during = client.until(lambda s: s == "S,SERVER CONNECTED", timeout=5)
    assert not [s for s in during if s.startswith("Q,")]
    after = [TIMED.parse(s) for s in client.collect(1.0) if s.startswith("Q,")]
    assert after
    now_ns = time.time_ns()
    last_before = max(_intended(TIMED.parse(s), now_ns) for s in before if s[:2] == "Q,")
    assert _intended(after[0], now_ns) - last_before >= 0.8e9  # those slots were never sent
    assert control.status()["dropped_during_disconnect"] >= 10


def test_ring_rendering_keeps_ticks_counts_and_intended_times(
    controlled: tuple[RunningServer, FeedSimControl], connect: Connect
) -> None:
    """render "ring": lines come from pre-rendered rings, yet TickIDs continue consecutively
    from live rendering, every message carries its own intended time, the counters match, and
    switching back to live keeps the TickIDs monotonic."""
    feed, control = controlled
    client = _watch(feed, connect, "AAPL", "IBM")
    live_lines = client.collect(1.0)
    # A sparse schedule builds rings only in idle windows longer than a build: 5 msg/s per
    # symbol leaves ~60 ms windows even on a slow CI machine.
    status = control.set_rate("fixed", rate_hz=RING_RATE, render="ring")
    assert status["render"] == "ring"
    deadline = time.monotonic() + 60
    while control.status()["ring_symbols"] < 2:  # rings are built as the symbols are sent
        assert time.monotonic() < deadline, "rings were not built"
        time.sleep(0.05)
    control.pause()
    control.stage("ring-test")
    live_lines += client.sync()
    control.resume()
    t0 = time.time_ns()
    lines = client.collect(4.0)
    control.pause()
    lines += client.sync()
    t1 = time.time_ns()
    counters = control.counters("ring-test")
    for symbol in ("AAPL", "IBM"):
        quotes = [TIMED.parse(s) for s in lines if s.startswith(f"Q,{symbol},")]
        ticks = [int(q["TickID"]) for q in quotes]
        before = [int(TIMED.parse(s)["TickID"]) for s in live_lines if s.startswith(f"Q,{symbol},")]
        assert len(ticks) > 10
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))  # consecutive
        assert not before or ticks[0] > before[-1]  # continue after the live ones
        count = counters.level1[symbol]
        assert (count.sent, count.first_seq, count.last_seq) == (len(ticks), ticks[0], ticks[-1])
        intended = [_intended(q, t0) for q in quotes]
        assert intended == sorted(intended)
        assert all(t0 - 1_000_000_000 < t < t1 for t in intended)
        assert len(set(intended)) > len(intended) // 2  # each message its own time
    control.set_rate("fixed", rate_hz=RING_RATE, render="live")
    assert control.status()["ring_symbols"] == 0
    control.resume()
    after = client.collect(1.5)
    last_ring = max(int(TIMED.parse(s)["TickID"]) for s in lines if s.startswith("Q,AAPL,"))
    next_live = [int(TIMED.parse(s)["TickID"]) for s in after if s.startswith("Q,AAPL,")]
    assert next_live and next_live[0] > last_ring
