"""Code tables loaded from feed_sim/data."""

from __future__ import annotations

from feed_sim.protocol.codes import (
    EXCHANGE_MPIDS,
    listed_markets,
    market_participants,
    mpid_activity,
    split_conditions,
    trade_conditions,
)


def test_listed_markets_with_inferred_ids() -> None:
    markets = listed_markets()
    assert markets[5].short_name == "NASDAQ" and markets[19].short_name == "NTRF"
    assert markets[153].short_name == "IEX"
    assert markets[187].inferred and markets[164].inferred
    assert list(markets) == sorted(markets)
    assert listed_markets() is markets  # cached


def test_trade_conditions() -> None:
    conditions = trade_conditions()
    assert conditions["17"].short_name == "FORMT"
    assert conditions["3D"].short_name == "INTRMRK_SWEEP"
    assert conditions["87"].short_name == "ODDLOT"
    assert split_conditions("873D17") == ["87", "3D", "17"]
    assert all(code in conditions for code in split_conditions("873D17"))
    assert [conditions[c].condition_id for c in ("01", "0A", "10", "3D", "87")] == [
        1,
        10,
        16,
        61,
        135,
    ]
    ids = [c.condition_id for c in conditions.values()]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)


def test_mpids() -> None:
    participants = market_participants()
    assert participants["GSCO"].mp_type == "M"
    assert "File Creation Time: 1202202521:31" not in participants
    assert all(m in participants for m in ("NSDQ", "ARCX", "MEMX"))
    activity = mpid_activity()
    assert activity[0].mpid == "VIRT" and len(activity) == 91
    assert activity[4].mpid == "WBPX" and activity[4].name == "SUMMIT SECURITIES GROUP, LLC"
    assert "NSDQ" in EXCHANGE_MPIDS
