"""Level 1 fundamentals: a symbol's `F` message (`FundamentalInfo`, `render_fundamental`),
in the field order of the connection's protocol (iqfeed-protocol.md §2.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from feed_sim.protocol.fields import (
    fundamental_field_names,
)


@dataclass(frozen=True, slots=True)
class FundamentalInfo:
    """Data of a symbol's `F` message. None/"" render as empty fields.

    Formats follow the MSFT fixtures: prices use `precision` decimals, PE/ratios compact
    ('65.6'), EPS/yields/beta/volatility two decimals, institutions three, balance-sheet
    amounts one; dates MM/DD/YYYY; session times HH:MM:SS.
    """

    symbol: str
    company_name: str = ""
    exchange_id: int = 5
    listed_market: int = 5
    security_type: int = 1
    precision: int = 4
    format_code: str = "14"
    pe: float | None = None
    average_volume: int | None = None
    high_52w: float | None = None
    low_52w: float | None = None
    calendar_year_high: float | None = None
    calendar_year_low: float | None = None
    dividend_yield: float | None = None
    dividend_amount: float | None = None
    dividend_rate: float | None = None
    pay_date: date | None = None
    ex_dividend_date: date | None = None
    current_year_eps: float | None = None
    next_year_eps: float | None = None
    five_year_growth_pct: float | None = None
    fiscal_year_end: int | None = None
    root_option_symbols: str = ""
    percent_held_by_institutions: float | None = None
    beta: float | None = None
    leaps: str = ""
    current_assets: float | None = None
    current_liabilities: float | None = None
    balance_sheet_date: date | None = None
    long_term_debt: float | None = None
    common_shares_outstanding: int | None = None
    split_factor_1: str = ""
    split_factor_2: str = ""
    sic: int | None = None
    historical_volatility: float | None = None
    high_52w_date: date | None = None
    low_52w_date: date | None = None
    calendar_year_high_date: date | None = None
    calendar_year_low_date: date | None = None
    year_end_close: float | None = None
    maturity_date: date | None = None
    coupon_rate: float | None = None
    expiration_date: date | None = None
    strike_price: float | None = None
    naics: int | None = None
    exchange_root: str = ""
    option_premium_multiplier: float | None = None
    option_multiple_deliverable: int | None = None
    session_open_time: time | None = None
    session_close_time: time | None = None
    base_currency: str = ""
    contract_size: float | None = None
    contract_months: str = ""
    minimum_tick_size: float | None = None
    first_delivery_date: date | None = None
    figi: str = ""
    security_subtype: int | None = None
    short_interest: int | None = None  # 6.0 layout only
    market_center: int | None = None  # 6.0 layout only

    def wire_values(self) -> dict[str, str]:
        """Field name -> wire text, for every name of both layouts."""
        price = f"%.{self.precision}f"

        def p(x: float | None) -> str:
            return "" if x is None else price % x

        def fixed(x: float | None, digits: int) -> str:
            return "" if x is None else f"{x:.{digits}f}"

        def compact(x: float | None) -> str:
            return "" if x is None else f"{x:.6f}".rstrip("0").rstrip(".")

        def i(x: int | None) -> str:
            return "" if x is None else str(x)

        def d(x: date | None) -> str:
            return "" if x is None else f"{x.month:02d}/{x.day:02d}/{x.year:04d}"

        def t(x: time | None) -> str:
            return "" if x is None else x.strftime("%H:%M:%S")

        fiscal = "" if self.fiscal_year_end is None else f"{self.fiscal_year_end:02d}"
        return {
            "Symbol": self.symbol,
            "Exchange ID": format(self.exchange_id, "X"),
            "PE": compact(self.pe),
            "Average Volume": i(self.average_volume),
            "52 Week High": p(self.high_52w),
            "52 Week Low": p(self.low_52w),
            "Calendar Year High": p(self.calendar_year_high),
            "Calendar Year Low": p(self.calendar_year_low),
            "Dividend Yield": fixed(self.dividend_yield, 2),
            "Dividend Amount": fixed(self.dividend_amount, 2),
            "Dividend Rate": fixed(self.dividend_rate, 2),
            "Pay Date": d(self.pay_date),
            "Ex-dividend Date": d(self.ex_dividend_date),
            "Short Interest": i(self.short_interest),
            "Current Year EPS": fixed(self.current_year_eps, 2),
            "Next Year EPS": fixed(self.next_year_eps, 2),
            "Five-year Growth Percentage": fixed(self.five_year_growth_pct, 2),
            "Fiscal Year End": fiscal,
            "Company Name": self.company_name,
            "Root Option Symbol": self.root_option_symbols,
            "Percent Held By Institutions": fixed(self.percent_held_by_institutions, 3),
            "Beta": fixed(self.beta, 2),
            "Leaps": self.leaps,
            "Current Assets": fixed(self.current_assets, 1),
            "Current Liabilities": fixed(self.current_liabilities, 1),
            "Balance Sheet Date": d(self.balance_sheet_date),
            "Long-term Debt": fixed(self.long_term_debt, 1),
            "Common Shares Outstanding": i(self.common_shares_outstanding),
            "Split Factor 1": self.split_factor_1,
            "Split Factor 2": self.split_factor_2,
            "Market Center": i(self.market_center),
            "Format Code": self.format_code,
            "Precision": str(self.precision),
            "SIC": i(self.sic),
            "Historical Volatility": fixed(self.historical_volatility, 2),
            "Security Type": str(self.security_type),
            "Listed Market": str(self.listed_market),
            "52 Week High Date": d(self.high_52w_date),
            "52 Week Low Date": d(self.low_52w_date),
            "Calendar Year High Date": d(self.calendar_year_high_date),
            "Calendar Year Low Date": d(self.calendar_year_low_date),
            "Year End Close": p(self.year_end_close),
            "Maturity Date": d(self.maturity_date),
            "Coupon Rate": compact(self.coupon_rate),
            "Expiration Date": d(self.expiration_date),
            "Strike Price": p(self.strike_price),
            "NAICS": i(self.naics),
            "Exchange Root": self.exchange_root,
            "Option Premium Multiplier": compact(self.option_premium_multiplier),
            "Option Multiple Deliverable": i(self.option_multiple_deliverable),
            "Session Open Time": t(self.session_open_time),
            "Session Close Time": t(self.session_close_time),
            "Base Currency": self.base_currency,
            "Contract Size": compact(self.contract_size),
            "Contract Months": self.contract_months,
            "Minimum Tick Size": compact(self.minimum_tick_size),
            "First Delivery Date": d(self.first_delivery_date),
            "FIGI": self.figi,
            "Security SubType": i(self.security_subtype),
        }


def render_fundamental(info: FundamentalInfo, protocol: str) -> bytes:
    """`F,<57 fields>,` in the protocol's layout ('(Reserved)' columns empty before 6.1)."""
    values = info.wire_values()
    row = ",".join(values.get(name, "") for name in fundamental_field_names(protocol))
    return f"F,{row},\r\n".encode("latin-1", "replace")
