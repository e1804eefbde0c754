"""The C hot path (`ingest.feed._fastparse`) against the Python reference, line by line.

Each test feeds the same sequence of lines, with the same receive times, to a parser on the C
path and to one kept on the Python path (`accelerated=False`); every message must be equal
(values, None where the Python path has None, the same `Malformed` reason and detail). The
lines are valid renders, mutations of every field with texts each number and time conversion
treats specially, wrong field counts, and times near the +-12 h window and DST changes."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feed_sim.protocol.timefmt import et_wall_ns
from ingest.feed.fieldset import DEFAULT_FIELDS, INGEST_FIELDS
from ingest.feed.messages import Level1Update, Malformed
from ingest.feed.parse import LineParser

FIELDNAMES = "S,CURRENT UPDATE FIELDNAMES," + ",".join(INGEST_FIELDS)
RECV = et_wall_ns(2025, 11, 24, 10, 0)
BASE = (
    "Q,AAPL,225.1200,37,09:59:57.123456,11/24/2025,19,873D17,123456,225.1000,300,"
    "09:59:59.000100,11,225.1400,500,09:59:58.000200,19,Cbav,7,"
)
ODD_TEXTS = (
    "",
    "0",
    "00",
    "7",
    "0100",
    "123456789012345678",
    "1234567890123456789012",
    "-5",
    "+5",
    " 5",
    "5 ",
    "1_000",
    "5.",
    ".5",
    "0.1",
    "225.1200",
    "12345678901234.5",
    "1234567890123456.5",
    "0.000000000000000001",
    "1e5",
    "nan",
    "inf",
    "-inf",
    "1.2.3",
    "abc",
    "09:59:59.000100",
    "23:59:59.999999",
    "00:00:00.000000",
    "12:00:00.000000",
    "09:59:59.00010x",
    "09:59:59",
    "9:59:59.000100",
    "25:00:00.000000",
    "11/24/2025",
    "03/09/2025",
    "13/45/2025",
    "ba",
    "C",
    "\x01",
    "\x7f",
)

SETTINGS = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def pair(fields: tuple[str, ...] | None = INGEST_FIELDS) -> tuple[LineParser, LineParser]:
    fast, slow = LineParser(), LineParser(accelerated=False)
    assert fast._fast is not None and slow._fast is None
    if fields is not None:
        line = "S,CURRENT UPDATE FIELDNAMES," + ",".join(fields)
        assert fast.parse(line, RECV) == slow.parse(line, RECV)
    return fast, slow


def same(a: object, b: object) -> bool:
    """Equal messages; NaN-free by construction, but compare floats exactly anyway."""
    if isinstance(a, Level1Update) and isinstance(b, Level1Update):
        return all(
            (isinstance(x, float) and isinstance(y, float) and (x == y or math.isnan(x)))
            or (type(x) is type(y) and x == y)
            for x, y in zip(a, b, strict=True)
        )
    return type(a) is type(b) and a == b


def check(fast: LineParser, slow: LineParser, lines: list[tuple[str, int]]) -> None:
    for line, recv in lines:
        a, b = fast.parse(line, recv), slow.parse(line, recv)
        assert same(a, b), (line, a, b)


def mutate(line: str, field: int, text: str) -> str:
    parts = line.split(",")
    parts[field % len(parts)] = text
    return ",".join(parts)


def test_the_c_path_is_used_and_agrees_on_a_real_line() -> None:
    fast, slow = pair()
    message = fast.parse(BASE, RECV)
    assert isinstance(message, Level1Update)
    assert message == slow.parse(BASE, RECV)
    assert message.trade_price == 225.12 and message.tick_id == 7 and message.bid_mc == 11


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=18),
            st.sampled_from(ODD_TEXTS) | st.text(alphabet="0123456789.:/ -+_eE", max_size=20),
            st.integers(min_value=-2 * 86_400, max_value=2 * 86_400),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_mutated_fields_agree(mutations: list[tuple[int, str, int]]) -> None:
    fast, slow = pair()
    lines = [(BASE, RECV)]
    for field, text, shift_s in mutations:
        lines.append((mutate(BASE, field, text), RECV + shift_s * 1_000_000_000))
        lines.append((BASE, RECV + shift_s * 1_000_000_000))  # the caches after the mutation
    check(fast, slow, lines)


@SETTINGS
@given(st.lists(st.sampled_from(ODD_TEXTS), min_size=0, max_size=25), st.booleans())
def test_any_field_count_agrees(fields: list[str], ingest_layout: bool) -> None:
    fast, slow = pair(INGEST_FIELDS if ingest_layout else None)
    check(fast, slow, [("Q," + ",".join(fields), RECV), ("Q," + ",".join(fields) + ",", RECV)])


@SETTINGS
@given(st.text(max_size=200))
def test_random_q_lines_agree(rest: str) -> None:
    fast, slow = pair()
    check(fast, slow, [("Q," + rest, RECV)])


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=86_399_999_999),
            st.integers(min_value=-13 * 3_600, max_value=13 * 3_600),
            st.sampled_from(((2025, 3, 9), (2025, 11, 2), (2025, 11, 24), (2025, 7, 1))),
            st.booleans(),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_times_near_the_window_and_dst_agree(
    times: list[tuple[int, int, tuple[int, int, int], bool]],
) -> None:
    """Bid/Ask and trade times of any microsecond of a day, received up to 13 h away, on DST
    change days: the caches' window (+-12 h) and the ambiguous hour decide the same way."""
    fast, slow = pair()
    lines = []
    for tod_us, shift_s, (y, m, d), dated in times:
        clock = (
            f"{tod_us // 3_600_000_000:02d}:{tod_us // 60_000_000 % 60:02d}:"
            f"{tod_us // 1_000_000 % 60:02d}.{tod_us % 1_000_000:06d}"
        )
        recv = et_wall_ns(y, m, d, 12, 0) + shift_s * 1_000_000_000
        line = mutate(mutate(BASE, 11, clock), 15, clock)
        line = mutate(line, 4, clock)
        line = mutate(line, 5, f"{m:02d}/{d:02d}/{y}" if dated else "")
        lines.append((line, recv))
        lines.append((mutate(line, 15, clock[:-1] + "7"), recv))  # ask in the same second
    check(fast, slow, lines)


def test_default_fieldset_and_a_fieldset_change_midstream() -> None:
    fast, slow = pair(None)
    assert fast.fields == DEFAULT_FIELDS
    default_q = (
        "Q,ATVI,48.5100,135,11:13:25.175857,18,1394955,48.5000,6400,48.5100,900,48.1200,"
        "48.6450,48.0000,48.0600,ba,01,"
    )
    check(fast, slow, [(default_q, RECV), (FIELDNAMES, RECV), (BASE, RECV), (default_q, RECV)])
    assert isinstance(fast.parse(default_q, RECV), Malformed)  # the old layout is gone


def test_numbers_convert_like_python() -> None:
    """Prices up to 15 digits take the C fast path: the same double as float(text)."""
    fast, _ = pair()
    for text in ("0.1", "0.3", "225.1200", "99999999999.9999", "1.000000000000001", "7"):
        message = fast.parse(mutate(BASE, 2, text), RECV)
        assert isinstance(message, Level1Update) and message.trade_price == float(text), text
    bad = fast.parse(mutate(BASE, 3, "-5"), RECV)
    assert bad == Malformed("bad_number", "negative number '-5'")
    bad = fast.parse(mutate(BASE, 2, "inf"), RECV)
    assert bad == Malformed("bad_number", "non-finite number 'inf'")
    assert fast.parse(mutate(BASE, 18, "-1"), RECV) == Malformed(
        "bad_number", "negative volume or TickID"
    )
