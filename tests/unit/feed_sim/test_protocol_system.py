"""System lines byte-exact against the captures, and protocol version handling."""

from __future__ import annotations

import pytest

from feed_sim.protocol.fields import DEFAULT_FIELDSET_NAMES, fundamental_field_names
from feed_sim.protocol.system import (
    DEFAULT_PROTOCOL,
    ClientStats,
    ClientType,
    ConnectionStats,
    CustomerInfo,
    Protocol,
    parse_protocol,
    render_autoconnect,
    render_client_stats,
    render_current_loginid,
    render_current_password,
    render_current_protocol,
    render_current_update_fieldnames,
    render_cust,
    render_fundamental_fieldnames,
    render_invalid_protocol,
    render_ip,
    render_key,
    render_login_info_saved,
    render_register_client_app_completed,
    render_remove_client_app_completed,
    render_server_connected,
    render_server_disconnected,
    render_server_reconnect_failed,
    render_stats,
    render_symbol_limit_reached,
    render_timestamp,
    render_watches,
)
from feed_sim.protocol.timefmt import et_wall_ns as et_ns


def test_protocol_versions() -> None:
    assert [p.value for p in Protocol] == ["5.0", "5.1", "5.2", "6.0", "6.1", "6.2"]
    assert parse_protocol("6.2") is Protocol.V6_2 and parse_protocol(" 5.1 ") is Protocol.V5_1
    assert parse_protocol("6.3") is None and parse_protocol("4.9") is None
    assert Protocol.V6_2.at_least(Protocol.V6_1) and not Protocol.V6_0.at_least(Protocol.V6_1)
    assert DEFAULT_PROTOCOL is Protocol.V6_2


def test_protocol_replies() -> None:
    assert render_current_protocol(Protocol.V6_2) == b"S,CURRENT PROTOCOL,6.2\r\n"
    assert render_invalid_protocol("6.2") == b"E,6.2 is not a valid protocol.,\r\n"


def test_connect_sequence_lines() -> None:
    assert render_key() == b"S,KEY,99999\r\n"
    assert render_server_connected() == b"S,SERVER CONNECTED\r\n"
    assert render_server_disconnected() == b"S,SERVER DISCONNECTED\r\n"
    assert render_server_reconnect_failed() == b"S,SERVER RECONNECT FAILED\r\n"
    assert render_ip("66.112.156.181", 60004) == b"S,IP,66.112.156.181 60004\r\n"
    assert render_timestamp(et_ns(2017, 3, 8, 11, 13, 30)) == b"T,20170308 11:13:30\r\n"


def test_cust_matches_moscona_capture_layout() -> None:
    line = render_cust(CustomerInfo(version="4.7.2.0"))
    assert line == (
        b"S,CUST,real_time,66.112.156.224,60002,73QEupj,4.7.2.0,0,INDEX DTNNEWS RT_TRADER COMTEX "
        b"PRIMEZONE INTERNET_WIRE AMEX NASDAQ NYSE APCMB,,500,QT_API,,\r\n"
    )
    fields = render_cust(CustomerInfo(max_symbols=1300)).decode().split(",")
    assert fields[2 + 8] == "1300" and fields[2 + 4] == "6.2.0.25"


def test_stats_matches_docker_iqfeed_capture() -> None:
    stats = ConnectionStats(
        max_symbols=0,
        symbols=0,
        clients=1,
        connected=False,
        kb_sent=0.08,
        kbps_sent=0.08,
        avg_kbps_sent=0.08,
    )
    assert render_stats(stats) == (
        b'S,STATS,,,0,0,1,0,0,0,,,Not Connected,6.2.0.25,"490914",0,0.0,0.0,0.08,0.08,0.08,\r\n'
    )
    connected = ConnectionStats(
        server_ip="66.112.148.224",
        server_port=60002,
        symbols=20,
        start_ns=et_ns(2010, 5, 13, 20, 41),
        market_ns=et_ns(2010, 5, 13, 20, 41),
    )
    fields = render_stats(connected).decode().rstrip("\r\n").split(",")
    assert len(fields) == 2 + 19 + 1 and fields[-1] == ""
    assert fields[2:13] == [
        "66.112.148.224",
        "60002",
        "500",
        "20",
        "1",
        "0",
        "0",
        "0",
        "May 13 8:41PM",
        "May 13 8:41PM",
        "Connected",
    ]


def test_client_stats() -> None:
    row = ClientStats(
        ClientType.LEVEL1, 3, "ingest", et_ns(2024, 7, 1, 9, 30, 5), 495, 0, 12.5, 1.25
    )
    assert render_client_stats(row) == (
        b"S,CLIENTSTATS,1,3,ingest,20240701 093005,495,0,12.50,1.25,0.00,\r\n"
    )


def test_fieldname_and_watch_lists() -> None:
    line = render_current_update_fieldnames(DEFAULT_FIELDSET_NAMES)
    assert line.startswith(b"S,CURRENT UPDATE FIELDNAMES,Symbol,Most Recent Trade,")
    assert line.endswith(b",Message Contents,Most Recent Trade Conditions\r\n")
    line = render_fundamental_fieldnames(fundamental_field_names("6.2"))
    assert line.endswith(b",FIGI,Security SubType\r\n")
    assert render_watches(["AAPL", "MSFT"]) == b"S,WATCHES,AAPL,MSFT,\r\n"
    assert render_symbol_limit_reached("ZZZ").split(b",")[2] == b"ZZZ\r\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (render_register_client_app_completed(), b"S,REGISTER CLIENT APP COMPLETED\r\n"),
        (render_remove_client_app_completed(), b"S,REMOVE CLIENT APP COMPLETED\r\n"),
        (render_current_loginid("490914"), b"S,CURRENT LOGINID,490914\r\n"),
        (render_current_password("pw"), b"S,CURRENT PASSWORD,pw\r\n"),
        (render_login_info_saved(True), b"S,LOGIN INFO SAVED\r\n"),
        (render_login_info_saved(False), b"S,LOGIN INFO NOT SAVED\r\n"),
        (render_autoconnect(True), b"S,AUTOCONNECT ON\r\n"),
        (render_autoconnect(False), b"S,AUTOCONNECT OFF\r\n"),
    ],
)
def test_admin_replies(line: bytes, expected: bytes) -> None:
    assert line == expected
