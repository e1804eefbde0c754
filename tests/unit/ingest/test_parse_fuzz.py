"""The parser and the processor never raise: random text, random bytes, truncations, floods."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feed_sim.protocol.timefmt import et_wall_ns
from ingest.feed.fieldset import INGEST_FIELDS
from ingest.feed.messages import MALFORMED_REASONS, Malformed
from ingest.feed.parse import LineParser
from ingest.feed.state import SymbolStates
from ingest.process import Processor

RECV = et_wall_ns(2025, 11, 24, 10, 0)
FIELDNAMES = "S,CURRENT UPDATE FIELDNAMES," + ",".join(INGEST_FIELDS)
VALID_LINES = (
    "Q,ATVI,48.5100,135,11:13:25.175857,18,1394955,48.5000,6400,48.5100,900,48.1200,48.6450,"
    "48.0000,48.0600,ba,01,",
    "P,AAPL,188.3500,52500,19:59:14.503633,19,0,188.2500,100,188.3600,100,,,,187.9700,Cbacv,8801,",
    "6,QQQ,,AMEX,A,408.8400,100,,4,17:52:38.059128,2022-04-01,",
    "4,SPY,,NSDQ,B,451.4400,300,,4,11:33:27.030724,2022-04-01,",
    "5,TSLA,,CHXE,B,,2022-04-01,",
    "5,@ESZ21,648907593934,,A,20:32:47.333543,2021-10-24,",
    "3,@ESZ21,649948133402,,B,4411.50,2,12440218202,2,20:32:47.333543,2021-10-24,",
    "7,@ESM22,B,4101.25,37,12,2,09:30:00.000100,2022-04-01,",
    "8,@ESM22,A,4101.5,9,3,2,09:30:00.000200,2022-04-01,",
    "9,@ESM22,A,4101.5,09:30:00.000300,2022-04-01,",
    "S,SYMBOL LIMIT REACHED,AAPL",
    "S,CLEAR DEPTH,@ESZ22,B,",
    "S,CUST,real_time,66.112.156.224,60002,73QEupj,4.7.2.0,0,INDEX NYSE,,500,QT_API,,",
    "S,CURRENT PROTOCOL,6.2",
    FIELDNAMES,
    "T,20230530 05:58:26",
    "n,ZZZZ",
    "q,ZZZZ",
    "E,!SYNTAX_ERROR!,",
    "F,MSFT,5,65.6,28624000,97.9500,67.1400,97.9500,83.8300,,,,,,1.49,",
)
INGEST_Q = (
    "Q,AAPL,225.1200,37,09:59:57.123456,11/24/2025,19,873D17,123456,225.1000,300,"
    "09:59:59.000100,11,225.1400,500,09:59:58.000200,19,Cbav,7,"
)

FUZZ = settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])


def check(processor: Processor, line: str) -> None:
    """handle() returns records or nothing; a Malformed carries a known reason."""
    before = processor.stats.malformed_total
    records = processor.handle(line, RECV)
    assert isinstance(records, list)
    for record in records:
        record.to_value()  # serialisable
    message = processor.parser.parse(line, RECV)
    if isinstance(message, Malformed):
        assert message.reason in MALFORMED_REASONS
        assert processor.stats.malformed_total == before + 1
    assert sum(processor.stats.malformed.values()) == processor.stats.malformed_total


def fresh(with_ingest_fields: bool) -> Processor:
    processor = Processor(SymbolStates())
    if with_ingest_fields:
        processor.handle(FIELDNAMES, RECV)
    return processor


@FUZZ
@given(st.text(max_size=300), st.booleans())
@example("", False)
@example(",,,,,,,,,,,,,,,,,,,,", False)
@example("S,", False)
@example("S,CLEAR DEPTH", False)
@example("S,CURRENT UPDATE FIELDNAMES,Symbol,Bid,Bid", False)
@example("Q,X," + "," * 17, True)
@example("Q,X,1e999,,,,,,,,,,,,,,,,", True)
@example("Q,X,,,,,,,,,,,,,,,,," + "9" * 5000 + ",", True)
def test_random_text_never_raises(line: str, with_ingest_fields: bool) -> None:
    check(fresh(with_ingest_fields), line)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(raw: bytes) -> None:
    check(fresh(True), raw.decode("latin-1"))


@FUZZ
@given(st.sampled_from((*VALID_LINES, INGEST_Q)), st.data())
def test_truncations_of_valid_lines(line: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(line)))
    processor = fresh(line is INGEST_Q)
    check(processor, line[:cut])
    check(processor, line[cut:])


@FUZZ
@given(st.sampled_from((*VALID_LINES, INGEST_Q)), st.data())
def test_mutations_of_valid_lines(line: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(line)))
    junk = data.draw(st.text(max_size=8))
    check(fresh(line is INGEST_Q), line[:at] + junk + line[at:])


@settings(deadline=None, max_examples=25)
@given(st.integers(min_value=16_385, max_value=200_000), st.sampled_from("Q,S6E"))
def test_over_long_lines(length: int, first: str) -> None:
    processor = fresh(True)
    line = (first + ",") * (length // 2 + 1)
    assert processor.handle(line, RECV) == []
    assert processor.stats.malformed == {"too_long": 1}


def test_every_valid_line_parses() -> None:
    parser = LineParser()
    for line in VALID_LINES:
        assert not isinstance(parser.parse(line, RECV), Malformed), line
    assert not isinstance(parser.parse(INGEST_Q, RECV), Malformed)
    processor = fresh(False)
    for line in VALID_LINES:
        processor.handle(line, RECV)
    assert processor.stats.malformed_total == 0


def test_malformed_counted_by_reason() -> None:
    processor = fresh(True)
    lines = ["", "x" * 20_000, "\x00\x01\x02", "Zzz,1", "Q,AAPL,1", "Q,AAPL,1", INGEST_Q]
    for line in lines:
        processor.handle(line, RECV)
    assert processor.stats.malformed == {
        "empty": 1,
        "too_long": 1,
        "binary": 1,
        "unknown_type": 1,
        "bad_field_count": 2,
    }
    assert processor.stats.records["trade"] == 1
