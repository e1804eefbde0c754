"""The command adapter's template expansion and the SUT factory (no processes started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.scenario import COMMAND_PLACEHOLDERS, Scenario
from harness.sut import FeedEndpoints, KafkaEndpoints, SutError, make_sut
from harness.sut.base import write_symbols_file
from harness.sut.command import CommandCore, command_values, expand_command, expand_text
from harness.sut.container import ContainerCore
from harness.sut.external import ExternalCore
from harness.sut.reference import ReferenceCore
from harness.symbols import load_universe

FEED = FeedEndpoints("127.0.0.1", 15009, 19200, 19300, 19100, 18765)
KAFKA = KafkaEndpoints("127.0.0.1:19092")


def _values(tmp_path: Path, admin_url: str | None = "http://127.0.0.1:9999") -> dict[str, str]:
    return command_values(
        feed=FEED,
        kafka=KAFKA,
        symbols_file=tmp_path / "run dir" / "sut" / "symbols.json",
        universe_file=Path("/cfg/production_symbols.json"),
        symbol_count=2,
        admin_url=admin_url,
        topics=["iqfeed.trades", "iqfeed.quotes"],
        run_dir=tmp_path / "run dir",
    )


def test_values_cover_exactly_the_scenario_placeholders(tmp_path: Path) -> None:
    assert set(_values(tmp_path)) == COMMAND_PLACEHOLDERS


def test_expand_command_every_placeholder(tmp_path: Path) -> None:
    template = " ".join(f"--{name} {{{name}}}" for name in sorted(COMMAND_PLACEHOLDERS))
    argv = expand_command("core " + template, _values(tmp_path))
    pairs = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert argv[0] == "core"
    assert pairs["--feed_host"] == "127.0.0.1"
    assert pairs["--level1_port"] == "15009"
    assert pairs["--level2_port"] == "19200"
    assert pairs["--admin_port"] == "19300"
    assert pairs["--lookup_port"] == "19100"
    assert pairs["--bootstrap"] == "127.0.0.1:19092"
    assert pairs["--symbols_file"] == str(tmp_path / "run dir" / "sut" / "symbols.json")
    assert pairs["--universe_file"] == "/cfg/production_symbols.json"
    assert pairs["--symbol_count"] == "2"
    assert pairs["--admin_url"] == "http://127.0.0.1:9999"
    assert pairs["--topics"] == "iqfeed.trades,iqfeed.quotes"
    assert pairs["--run_dir"] == str(tmp_path / "run dir")


def test_values_with_spaces_stay_one_argument_and_literal_braces_survive(tmp_path: Path) -> None:
    argv = expand_command(
        "core --symbols={symbols_file} 'quoted {feed_host}' --json '{{\"a\": 1}}'",
        _values(tmp_path),
    )
    assert argv == [
        "core",
        f"--symbols={tmp_path / 'run dir' / 'sut' / 'symbols.json'}",
        "quoted 127.0.0.1",
        "--json",
        '{"a": 1}',
    ]


def test_missing_admin_url_expands_to_empty(tmp_path: Path) -> None:
    assert expand_command("core {admin_url}", _values(tmp_path, admin_url=None)) == ["core", ""]


def test_unknown_placeholder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SutError, match=r"unknown placeholder \{level3_port\}") as info:
        expand_command("core --port {level3_port}", _values(tmp_path))
    assert "{level1_port}" in str(info.value)  # and the known ones are listed


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("core {feed_host:>20}", "format spec"),
        ("core {feed_host!r}", "format spec or conversion"),
        ("core {}", r"unknown placeholder \{\}"),
        ("core {feed_host", "malformed"),
        ("core 'unclosed", "cannot split"),
        ("   ", "empty"),
    ],
)
def test_bad_templates(tmp_path: Path, template: str, problem: str) -> None:
    with pytest.raises(SutError, match=problem):
        expand_command(template, _values(tmp_path))


def test_expand_text_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(SutError, match=r"^rollback\.hook: unknown placeholder \{nope\}"):
        expand_text("{nope}", _values(tmp_path), what="rollback.hook")


def test_write_symbols_file_is_a_json_list(tmp_path: Path) -> None:
    path = write_symbols_file(tmp_path / "a" / "symbols.json", ["AAPL", "MSFT"])
    assert path.read_text().strip() == '["AAPL", "MSFT"]'
    write_symbols_file(path, ["IBM"])
    assert path.read_text().strip() == '["IBM"]'
    assert [p.name for p in path.parent.iterdir()] == ["symbols.json"]


@pytest.mark.parametrize(
    ("sut", "adapter"),
    [
        ({"kind": "reference"}, ReferenceCore),
        ({"kind": "command", "command": "core {symbols_file}"}, CommandCore),
        ({"kind": "container", "image": "example/core:1"}, ContainerCore),
        ({"kind": "external", "admin_url": "http://127.0.0.1:1/"}, ExternalCore),
    ],
)
def test_factory_picks_the_adapter(tmp_path: Path, sut: dict[str, str], adapter: type) -> None:
    scenario = Scenario.model_validate({"name": "t", "sut": sut})
    made = make_sut(scenario, tmp_path)
    assert type(made) is adapter
    assert made.kind == sut["kind"]
    assert made.topics() == ["iqfeed.trades", "iqfeed.quotes", "iqfeed.depth"]
    assert made.record_mapping().seq == "seq"
    assert made.pids() == []
    assert made.container_id() is None
    assert not made.alive()  # not started (the external one's URL does not answer)
    assert made.describe()["kind"] == sut["kind"]


def test_factory_resolves_command_cwd(tmp_path: Path) -> None:
    scenario = Scenario.model_validate(
        {"name": "t", "sut": {"kind": "command", "command": "core", "cwd": "scripts"}}
    )
    made = make_sut(scenario, tmp_path)
    assert isinstance(made, CommandCore)
    assert made.cwd == scenario.resolve(Path("scripts"))
    assert made.symbols_file == tmp_path / "sut" / "symbols.json"


@pytest.mark.parametrize("mapping", ["all", "universe"])
def test_partitions_known_for_the_reference_core_and_a_universe_mapped_user_core(
    tmp_path: Path, mapping: str
) -> None:
    universe = load_universe()
    symbols = [universe.symbols[0].symbol, universe.symbols[7].symbol, "NOT-LISTED"]
    expected = sorted({universe.symbols[0].partition, universe.symbols[7].partition})
    reference = make_sut(Scenario.model_validate({"name": "t"}), tmp_path)
    assert reference.partitions_for(symbols) == expected
    user = make_sut(
        Scenario.model_validate(
            {"name": "t", "sut": {"kind": "command", "command": "core",
                                  "record_mapping": {"partitions": mapping}}}
        ),
        tmp_path,
    )  # fmt: skip
    assert user.partitions_for(symbols) == (expected if mapping == "universe" else None)


def test_reference_core_config_carries_the_kafka_settings_and_layout(tmp_path: Path) -> None:
    plain = make_sut(Scenario.model_validate({"name": "t"}), tmp_path / "a")
    sut = {
        "kind": "reference",
        "kafka_producers": 3,
        "kafka_linger_ms": 7,
        "kafka_producer": {"batch.num.messages": 500},
        "record_mapping": {"topic_partitions": 48},
    }
    tuned = make_sut(Scenario.model_validate({"name": "t", "sut": sut}), tmp_path / "b")
    assert isinstance(plain, ReferenceCore) and isinstance(tuned, ReferenceCore)
    plain._write_config()
    tuned._write_config()
    assert json.loads(plain.config_file.read_text())["kafka"] == {"partitions": 495}
    assert "redis" not in json.loads(plain.config_file.read_text())
    plain.redis_url = "redis://127.0.0.1:6390/0"  # infra.redis: the run sets it before start
    plain._write_config()
    assert json.loads(plain.config_file.read_text())["redis"] == {
        "enabled": True,
        "url": "redis://127.0.0.1:6390/0",
        "interval_s": 5.0,
    }
    assert json.loads(tuned.config_file.read_text())["kafka"] == {
        "partitions": 48,
        "producers": 3,
        "linger_ms": 7,
        "producer": {"batch.num.messages": 500},
    }
    # The collector reads the folded partitions of the stage's symbols.
    universe = load_universe()
    symbols = [info.symbol for info in universe.symbols[:60]]
    expected = sorted({info.partition % 48 for info in universe.symbols[:60]})
    assert tuned.partitions_for(symbols) == expected
    assert len(expected) == 48
