"""Field catalogues and fieldset validation."""

from __future__ import annotations

import pickle

import pytest

from feed_sim.protocol.fields import (
    DEFAULT_FIELDSET,
    FUNDAMENTAL_FIELD_NAMES_60,
    FUNDAMENTAL_FIELD_NAMES_61,
    RESERVED,
    UPDATE_FIELD_NAMES,
    Fieldset,
    UnknownFieldError,
    fundamental_field_names,
    update_field_names,
)


def test_catalogue_sizes_and_spellings() -> None:
    assert len(UPDATE_FIELD_NAMES) == 70 and len(set(UPDATE_FIELD_NAMES)) == 70
    assert UPDATE_FIELD_NAMES[0] == "Symbol" and UPDATE_FIELD_NAMES[23] == "7 Day Yield"
    assert UPDATE_FIELD_NAMES[26] == "Price-Earnings Ratio"
    assert UPDATE_FIELD_NAMES[-2:] == ("Most Recent Trade Aggressor", "Most Recent Trade Day Code")
    assert len(update_field_names("6.0")) == 68
    assert len(FUNDAMENTAL_FIELD_NAMES_61) == 57 and len(FUNDAMENTAL_FIELD_NAMES_60) == 57
    assert FUNDAMENTAL_FIELD_NAMES_60.count(RESERVED) == 7
    assert FUNDAMENTAL_FIELD_NAMES_60[37] == "Market Center"
    assert fundamental_field_names("6.2")[-1] == "Security SubType"
    assert len(DEFAULT_FIELDSET.names) == 16


def test_symbol_prepended_case_insensitive_duplicates_kept() -> None:
    fs = Fieldset(["bid", "ASK", "Bid"])
    assert fs.names == ("Symbol", "Bid", "Ask", "Bid")
    assert fs == Fieldset(["Symbol", "Bid", "Ask", "Bid"])
    assert hash(fs) == hash(Fieldset(["Symbol", "Bid", "Ask", "Bid"]))
    assert fs is Fieldset(["symbol", "bid", "ask", "bid"])  # interned: identity = equality
    assert fs != Fieldset(["Bid", "Ask"]) and fs is not Fieldset(["Bid", "Ask"])
    assert pickle.loads(pickle.dumps(fs)) is fs


def test_unknown_field_reports_error_text() -> None:
    with pytest.raises(UnknownFieldError) as info:
        Fieldset(["Symbol", "Seven Day Yield"])
    assert info.value.error_text == "Invalid field name: Seven Day Yield"
    with pytest.raises(UnknownFieldError):
        Fieldset(["Most Recent Trade Aggressor"], protocol="6.0")


def test_render_plan_picks_values_in_order() -> None:
    values = [str(i) for i in range(70)]
    assert Fieldset(["Ask", "Bid"]).render("Q", values) == b"Q,0,9,8,\r\n"
