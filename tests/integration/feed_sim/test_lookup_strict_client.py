"""Every lookup table (SLM, SST, STC, SSC, SNC), symbol search (SBF, SBS, SBN) and history
request (HTX/HTD/HTT, HIX/HID/HIT, HDX/HDT, HWX, HMX) over a real socket, at protocols 6.1 and
6.2, with and without request ids, read by a client as strict as third-party ones
(`strict_lookup`; iqfeed-protocol.md §4.2, §6.2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.feed_sim_server import RunningServer, serve

from .conftest import LineClient
from .strict_lookup import (
    Reply,
    StrictLookupClient,
    code_description,
    coded_symbol_row,
    daily_row,
    id_short_long,
    interval_row,
    listed_market,
    symbol_row,
    tick_row,
)

pytestmark = pytest.mark.integration

PROTOCOLS = ("6.1", "6.2")
REQUEST_IDS = ("", "R7", "LS")
"""No id, an id, and an id that looks like a data tag (trade-frame's `LM,LS,...`)."""
SECTOR_CODES = {"MSFT": (7372, 511210), "IBM": (3570, None)}
"""SIC and NAICS codes given to the tape's symbols for SBS/SBN (MSFT's are the C# F fixture's)."""


@pytest.fixture(scope="module")
def lookup_feed(small_tape: Path) -> Iterator[RunningServer]:
    """The small tape served without pacing (lookups answer from the tapes alone)."""
    with serve([small_tape], start=False) as feed:

        def give_codes() -> None:
            for symbol, (sic, naics) in SECTOR_CODES.items():
                market = feed.engine.markets[symbol]
                market.fundamentals = dataclasses.replace(market.fundamentals, sic=sic, naics=naics)

        feed.call(give_codes)
        yield feed


@pytest.fixture(params=PROTOCOLS)
def strict(
    request: pytest.FixtureRequest, lookup_feed: RunningServer, connect: Callable[..., LineClient]
) -> Iterator[StrictLookupClient]:
    client = StrictLookupClient(connect(lookup_feed.port("lookup")), request.param)
    yield client
    client.nothing_left()


def _with_id(command: str, request_id: str) -> str:
    """A table or search command with its request id as the last parameter."""
    return f"{command},{request_id}" if request_id else command


@pytest.mark.parametrize("rid", REQUEST_IDS)
def test_tables(strict: StrictLookupClient, rid: str) -> None:
    markets = strict.request(_with_id("SLM", rid), listed_market, rid)
    ids = [row[0] for row in markets.rows]
    assert len(ids) > 100 and len(set(ids)) == len(ids)
    assert markets.rows[ids.index(5)][:2] == [5, "NASDAQ"]
    types = strict.request(_with_id("SST", rid), id_short_long, rid)
    assert [1, "EQUITY", "Equity"] in types.rows
    conditions = strict.request(_with_id("STC", rid), id_short_long, rid)
    by_id = {row[0]: row[1] for row in conditions.rows}
    assert len(by_id) == len(conditions.rows) == 155
    assert (by_id[1], by_id[10], by_id[61], by_id[135]) == (
        "REGULAR",
        "BUNCHEDSOLD",  # 0x0A
        "INTRMRK_SWEEP",  # 0x3D
        "ODDLOT",  # 0x87
    )
    sic = strict.request(_with_id("SSC", rid), code_description, rid)
    titles = {row[0]: row[1] for row in sic.rows}
    assert len(titles) == len(sic.rows) == 1005  # the SIC 1987 industries
    assert (titles[111], titles[3571], titles[7372]) == (
        "WHEAT",
        "ELECTRONIC COMPUTERS",
        "PREPACKAGED SOFTWARE",
    )
    assert titles[119] == "CASH GRAINS, NOT ELSEWHERE CLASSIFIED"  # a title with a comma
    naics = strict.request(_with_id("SNC", rid), code_description, rid)
    titles = {row[0]: row[1] for row in naics.rows}
    assert len(titles) == len(naics.rows) == 1012  # the NAICS 2022 national industries
    assert (titles[334111], titles[513210]) == (
        "Electronic Computer Manufacturing",
        "Software Publishers",
    )


@pytest.mark.parametrize("rid", REQUEST_IDS)
def test_symbol_searches(strict: StrictLookupClient, rid: str) -> None:
    by_symbol = strict.request(f"SBF,s,AAPL,,,{rid}", symbol_row, rid)
    assert by_symbol.rows == [["AAPL", 5, 1, "APPLE INC"]]
    by_name = strict.request(f"SBF,d,MICRO,,,{rid}", symbol_row, rid)
    assert by_name.rows == [["MSFT", 5, 1, "MICROSOFT CORP"]]
    in_market = strict.request(f"SBF,s,M,e,5 7,{rid}", symbol_row, rid)
    assert [row[0] for row in in_market.rows] == ["IBM", "MSFT"]
    of_type = strict.request(f"SBF,s,A,t,1,{rid}", symbol_row, rid)
    assert [row[0] for row in of_type.rows] == ["AAPL"]
    nothing = strict.request(f"SBF,s,NOSUCHTHING,,,{rid}", symbol_row, rid)
    assert nothing == Reply(error="!NO_DATA!")
    by_sic = strict.request(_with_id("SBS,7372", rid), coded_symbol_row, rid)
    assert by_sic.rows == [[7372, "MSFT", 5, 1, "MICROSOFT CORP"]]
    sic_prefix = strict.request(_with_id("SBS,3", rid), coded_symbol_row, rid)
    assert sic_prefix.rows == [[3570, "IBM", 5, 1, "INTL BUSINESS MACHINES"]]
    by_naics = strict.request(_with_id("SBN,5112", rid), coded_symbol_row, rid)
    assert by_naics.rows == [[511210, "MSFT", 5, 1, "MICROSOFT CORP"]]
    assert strict.request(_with_id("SBN,99", rid), coded_symbol_row, rid).error == "!NO_DATA!"


def _times(reply: Reply) -> list[str]:
    assert reply.error is None and reply.rows, reply
    return [str(row[0]) for row in reply.rows]


@pytest.mark.parametrize("rid", REQUEST_IDS)
def test_tick_history(strict: StrictLookupClient, rid: str) -> None:
    ticks = tick_row(strict.protocol)
    oldest_first = strict.request(f"HTX,AAPL,25,1,{rid}", ticks, rid)
    newest_first = strict.request(f"HTX,AAPL,25,0,{rid}", ticks, rid)
    assert len(oldest_first.rows) == 25 and _times(oldest_first) == sorted(_times(oldest_first))
    assert newest_first.rows == oldest_first.rows[::-1]
    days = strict.request(f"HTD,MSFT,1,10,,,1,{rid}", ticks, rid)
    assert len(days.rows) == 10
    ranged = strict.request(f"HTT,AAPL,20240304 093001,20240304 093002,,,,1,{rid}", ticks, rid)
    assert all("2024-03-04 09:30:01" <= t <= "2024-03-04 09:30:02" for t in _times(ranged))
    filtered = strict.request(f"HTT,IBM,20240304,20240304,,093001,093001,0,{rid}", ticks, rid)
    assert all(t.startswith("2024-03-04 09:30:01.") for t in _times(filtered))
    assert _times(filtered) == sorted(_times(filtered), reverse=True)
    conditions = strict.request(_with_id("STC", rid), id_short_long, rid)
    named = {row[0] for row in conditions.rows}
    for row in oldest_first.rows + days.rows:
        pairs = str(row[9])  # hex pairs on the wire, decimal IDs in the table that names them
        assert {int(pairs[i : i + 2], 16) for i in range(0, len(pairs), 2)} <= named


@pytest.mark.parametrize("rid", REQUEST_IDS)
def test_bar_history(strict: StrictLookupClient, rid: str) -> None:
    seconds = strict.request(f"HIX,AAPL,1,5,1,{rid},,s", interval_row, rid)
    assert len(seconds.rows) == 5 and _times(seconds) == sorted(_times(seconds))
    days_back = strict.request(f"HID,AAPL,1,1,5,,,1,{rid},,s,0", interval_row, rid)
    assert days_back.rows == seconds.rows
    ranged = strict.request(
        f"HIT,AAPL,2,20240304 093000,20240304 093004,,,,1,{rid},,s,1", interval_row, rid
    )
    assert all("2024-03-04 09:30:00" <= t <= "2024-03-04 09:30:04" for t in _times(ranged))
    by_volume = strict.request(
        f"HIT,MSFT,1000,20240304 093000,20240304 093010,,,,1,{rid},,v", interval_row, rid
    )
    assert all(row[7] == 0 for row in by_volume.rows)
    by_ticks = strict.request(
        f"HIT,AAPL,10,20240304 093000,20240304 093010,,,,1,{rid},,t", interval_row, rid
    )
    assert [row[7] for row in by_ticks.rows[:-1]] == [10] * (len(by_ticks.rows) - 1)
    daily = strict.request(f"HDX,IBM,10,0,{rid}", daily_row, rid)
    assert _times(daily) == ["2024-03-04"]
    one_day = strict.request(f"HDT,IBM,20240304,20240304,,1,{rid}", daily_row, rid)
    assert one_day.rows == daily.rows
    weekly = strict.request(f"HWX,IBM,5,1,{rid}", daily_row, rid)
    monthly = strict.request(f"HMX,IBM,5,1,{rid}", daily_row, rid)
    assert weekly.rows == monthly.rows == daily.rows  # one session: one week, one month


@pytest.mark.parametrize("rid", REQUEST_IDS)
def test_history_errors(strict: StrictLookupClient, rid: str) -> None:
    ticks = tick_row(strict.protocol)
    unknown = strict.request(f"HTX,BOGUS,10,1,{rid}", ticks, rid)
    assert unknown == Reply(error="Invalid symbol.")
    no_data = strict.request(f"HTT,AAPL,20200101 000000,20200102 000000,,,,1,{rid}", ticks, rid)
    assert no_data == Reply(error="!NO_DATA!")
    upper_case_type = strict.request(f"HIX,AAPL,60,10,1,{rid},,S", interval_row, rid)
    assert upper_case_type == Reply(error="!SYNTAX_ERROR!")
    before_the_tape = strict.request(f"HDT,IBM,20240301,20240301,,1,{rid}", daily_row, rid)
    assert before_the_tape == Reply(error="!NO_DATA!")
