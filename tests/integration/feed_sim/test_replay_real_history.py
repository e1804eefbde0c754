"""The real IQFeed tick history (../shared/data/iqfeed_history_ticks_2021-03.zip) converts and
replays: a client receives the tape's trades in order (price, size, market center, conditions)
and the Most Recent Trade Time of consecutive trades (their intended send times, contract 2)
differ by exactly the tape gap / speed. The schedule is checked from the message contents, so
the test does not depend on how fast anything ran."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from feed_sim.protocol.timefmt import et_wall_ns, parse_et_time_of_day
from feed_sim.server.engine import RateSettings
from feed_sim.tape.format import load_tape, read_header, write_tape
from feed_sim.tape.model import TapeEvent
from tests.feed_sim_server import serve

from .conftest import Layout, LineClient, close_enough, fields_of

pytestmark = pytest.mark.integration

Connect = Callable[..., LineClient]
SPEED = 50.0
WINDOW = 300
"""Trades replayed: the first 300 of the regular session of 2021-03-01 (88 s of tape)."""
LAYOUT = Layout(
    (
        "Symbol",
        "TickID",
        "Message Contents",
        "Most Recent Trade",
        "Most Recent Trade Size",
        "Most Recent Trade Time",
        "Most Recent Trade Market Center",
        "Most Recent Trade Conditions",
        "Total Volume",
    )
)
REAL_LAST_ROW = "2021-03-03 19:58:32.254017,1.5400,238,4813134,1.5100,1.5400,597,E,11,17,0,3,"
"""The newest row of the real reply, quoted in iqfeed-protocol.md §4.2."""


@pytest.fixture(scope="module")
def real_events(real_tape: Path) -> list[TapeEvent]:
    _, events = load_tape(real_tape)
    return events


@pytest.fixture(scope="module")
def window_tape(tmp_path_factory: pytest.TempPathFactory, real_events: list[TapeEvent]) -> Path:
    """The first WINDOW regular-session trades of the converted real tape, unchanged."""
    open_ns = et_wall_ns(2021, 3, 1, 9, 30)
    first = next(i for i, e in enumerate(real_events) if e.ts_ns >= open_ns)
    path = tmp_path_factory.mktemp("real") / "smcp_window.tape.zst"
    write_tape(path, real_events[first : first + WINDOW], source="converted:window")
    return path


def test_real_history_converts(real_tape: Path, real_events: list[TapeEvent]) -> None:
    header = read_header(real_tape)
    assert header.event_count == len(real_events) == 32_627
    assert header.meta["skipped"] == 0
    assert header.meta["source_order"] == "newest_first"
    assert header.symbols == ("SMCP",)
    first, last = real_events[0], real_events[-1]
    assert first.ts_ns == 1614589200028010000  # 2021-03-01 04:00:00.028010 ET
    assert dict(first.fields)["price"] == 1.52 and first.fields["conditions"] == "1747"
    assert last.ts_ns == 1614819512254017000
    assert (last.fields["price"], last.fields["size"], last.fields["market_center"]) == (
        1.54,
        238,
        11,
    )
    assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(real_events))


def test_real_history_served_back_on_the_lookup_port(real_tape: Path, connect: Connect) -> None:
    """HTX of the converted tape on a 6.1 connection gives back the real newest row (the
    TickID column is the simulator's own count: real TickIDs count per market center)."""
    with serve([real_tape], start=False) as feed:
        client = connect(feed.port("lookup"))
        client.send("S,SET PROTOCOL,6.1")
        assert client.expect() == "S,CURRENT PROTOCOL,6.1"
        client.send("HTX,SMCP,1,0")
        row = fields_of(client.expect())
        assert client.expect() == "!ENDMSG!,"
        expected = fields_of(REAL_LAST_ROW)
        assert row[:6] + row[7:] == expected[:6] + expected[7:]


def test_replay_keeps_trades_order_and_scaled_gaps(window_tape: Path, connect: Connect) -> None:
    _, tape = load_tape(window_tape)
    with serve([window_tape], rate=RateSettings(mode="tape", speed=SPEED)) as feed:
        time.sleep(0.5)  # the replay is under way before the client watches
        client = connect(feed.port("level1"))
        client.handshake()
        client.send("S,SELECT UPDATE FIELDS," + ",".join(LAYOUT.names[1:]))
        client.until(lambda s: s.startswith("S,CURRENT UPDATE FIELDNAMES,"))
        client.send("wSMCP")
        client.until(lambda s: s.startswith("P,SMCP,"))
        received = [
            LAYOUT.parse(s) for s in client.collect(4.0, skip_timestamps=True) if s[:2] == "Q,"
        ]
    assert len(received) >= 100

    def matches(q: dict[str, str], event: TapeEvent) -> bool:
        f = event.fields
        return (
            close_enough(float(q["Most Recent Trade"]), float(f["price"]))
            and int(q["Most Recent Trade Size"]) == f["size"]
            and int(q["Most Recent Trade Market Center"]) == f["market_center"]
            and q["Most Recent Trade Conditions"] == f["conditions"]
            and q["Message Contents"][:1] == f["basis"]
        )

    # Where in the tape the client came in: the first position that matches 20 trades on.
    start = next(
        i
        for i in range(len(tape))
        if all(matches(received[m], tape[(i + m) % len(tape)]) for m in range(20))
    )
    now_ns = time.time_ns()
    checked_gaps = 0
    for m in range(1, len(received)):
        i = (start + m) % len(tape)
        event, q = tape[i], received[m]
        assert matches(q, event), (m, q, event)
        assert int(q["TickID"]) == int(received[m - 1]["TickID"]) + 1
        if i == 0:
            continue  # the tape wrapped around: no gap to compare
        t_prev = parse_et_time_of_day(now_ns, received[m - 1]["Most Recent Trade Time"])
        t_this = parse_et_time_of_day(now_ns, q["Most Recent Trade Time"])
        t0 = tape[0].ts_ns
        expected = int((event.ts_ns - t0) / SPEED) - int((tape[i - 1].ts_ns - t0) / SPEED)
        assert abs((t_this - t_prev) - expected) <= 2_000, (m, t_this - t_prev, expected)
        checked_gaps += 1
    assert checked_gaps >= 100
    first_intended = parse_et_time_of_day(now_ns, received[0]["Most Recent Trade Time"])
    assert abs(first_intended - now_ns) < 30 * 1_000_000_000
