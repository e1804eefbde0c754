"""The scenario format: shipped files load, defaults are the production targets, and every
invalid scenario names the file, the key path, the line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import defaults
from harness.paths import repo_root
from harness.scenario import CommandSut, ReferenceSut, Scenario, TapeTimingRate
from harness.scenario_loading import ScenarioError, load_scenario

SCENARIOS = repo_root() / "scenarios"
REQUIRED = (
    "ramp_495",
    "smoke",
    "stage_50",
    "stage_100",
    "stage_200",
    "stage_495",
    "ci_nightly",
)


def write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


@pytest.mark.parametrize("name", REQUIRED)
def test_required_scenarios_ship(name: str) -> None:
    assert (SCENARIOS / f"{name}.yaml").is_file()


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert [s.symbols for s in scenario.stages] == sorted({s.symbols for s in scenario.stages})


def test_ramp_495_is_the_schema_defaults_and_the_production_targets() -> None:
    ramp = load_scenario(SCENARIOS / "ramp_495.yaml")
    default = Scenario(name="ramp_495", description=ramp.description)
    # Apart from the Level 2 share of the 100 msg/s, Redis and the storage hop, the defaults.
    plain = {
        "feed": default.feed,
        "infra": default.infra,
        "storage": default.storage,
        "thresholds": ramp.thresholds.model_copy(
            update={"storage_lag_p99_ms": None, "storage_rows_mismatch_max": 0}
        ),
    }
    assert ramp.model_copy(update=plain) == default
    assert ramp.infra.redis and ramp.infra.model_copy(update={"redis": False}) == default.infra
    assert ramp.storage.clickhouse == "embedded" and ramp.thresholds.storage_lag_p99_ms == 1000
    assert ramp.feed.level2_tier_weights == {1: 2.0, 2: 1.0, 3: 0.5}
    assert tuple(s.symbols for s in ramp.stages) == defaults.STAGES
    assert ramp.thresholds.total_lag_p95_ms == defaults.TARGET_P95_MS
    assert ramp.thresholds.total_lag_p99_ms == defaults.TARGET_P99_MS
    assert ramp.thresholds.sut_rss_gb == defaults.TARGET_MEMORY_GB
    assert ramp.stage_rate_hz(3) + ramp.feed.level2_rate_per_symbol_hz == 100.0
    assert 100.0 * defaults.STAGES[-1] == pytest.approx(defaults.TARGET_MSG_RATE, rel=0.02)
    assert isinstance(ramp.sut, ReferenceSut) and ramp.sut.connections == 5
    assert ramp.infra.mode == "local" and ramp.infra.brokers == 1
    assert ramp.rollback.policy == "step_back"
    assert ramp.thresholds.network_mbps_max is None  # the ~50 Mbps is load, not a ceiling


def test_smoke_is_seconds_long() -> None:
    smoke = load_scenario(SCENARIOS / "smoke.yaml")
    assert sum(s.warmup_s + s.hold_s for s in smoke.stages) <= 30


def test_stage_files_have_one_stage_each() -> None:
    for n in (50, 100, 200, 495):
        stages = load_scenario(SCENARIOS / f"stage_{n}.yaml").stages
        assert [s.symbols for s in stages] == [n]


def test_hash_ignores_formatting_and_key_order_but_not_values(tmp_path: Path) -> None:
    a = write(tmp_path, "name: h\nstages:\n  - {symbols: 5, hold_s: 5}\n", "a.yaml")
    b = write(tmp_path, "stages:\n- hold_s: 5.0\n  symbols: 5\n\nname: h  # same\n", "b.yaml")
    c = write(tmp_path, "name: h\nstages:\n  - {symbols: 5, hold_s: 6}\n", "c.yaml")
    ha, hb, hc = (load_scenario(p).scenario_hash() for p in (a, b, c))
    assert ha == hb != hc
    assert len(ha) == 64


def test_rate_models_and_stage_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: r\nfeed: {rate: {model: tape_timing, speed: 2}}\n"
        "stages: [{symbols: 5}, {symbols: 10, rate_per_symbol_hz: 7}]\n",
    )
    scenario = load_scenario(path)
    assert isinstance(scenario.feed.rate, TapeTimingRate) and scenario.feed.rate.speed == 2
    assert scenario.stage_rate_hz(0) is None
    assert scenario.stage_rate_hz(1) == 7
    weighted = write(tmp_path, "name: w\nfeed: {rate: {model: tier_weighted}}\n", "w.yaml")
    assert load_scenario(weighted).stage_rate_hz(0) == 100.0


def test_command_sut_and_record_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
name: mine
sut:
  kind: command
  command: "mycore --iqfeed {feed_host}:{level1_port} --kafka {bootstrap} --symbols {symbols_file}"
  reload: {method: signal, signal: SIGHUP}
  record_mapping: {seq: meta.seq, recv_ns: null, time_unit_ns: 1000, topics: [ticks]}
""",
    )
    sut = load_scenario(path).sut
    assert isinstance(sut, CommandSut)
    mapping = sut.record_mapping.field_mapping()
    assert (mapping.seq, mapping.recv_ns, mapping.time_unit_ns) == ("meta.seq", None, 1000)
    assert sut.record_mapping.topics == ["ticks"]


BAD_CASES = [
    # (id, yaml, key path, words in the message, line)
    ("unknown-top-key", "name: x\nstagez: []\n", "stagez", "unknown key", 2),
    (
        "hold-not-positive",
        "name: x\nstages:\n  - {symbols: 5}\n  - {symbols: 6}\n  - symbols: 7\n    hold_s: 0\n",
        "stages[2].hold_s",
        "greater than 0",
        6,
    ),
    (
        "not-increasing",
        "name: x\nstages:\n  - {symbols: 50}\n  - {symbols: 50}\n",
        "stages[1].symbols",
        "strictly increasing",
        4,
    ),
    (
        "beyond-universe",
        "name: x\nstages:\n  - {symbols: 50}\n  - {symbols: 600}\n",
        "stages[1].symbols",
        "exceeds the 495 symbols",
        4,
    ),
    ("missing-name", "stages:\n  - {symbols: 5}\n", "name", "required key is missing", None),
    ("missing-symbols", "name: x\nstages:\n  - {hold_s: 5}\n", "stages[0].symbols", "missing", 3),
    ("empty-stages", "name: x\nstages: []\n", "stages", "at least 1", 2),
    ("bad-name", "name: 'a b/c'\n", "name", "pattern", 1),
    (
        "rate-model",
        "name: x\nfeed:\n  rate:\n    model: warp\n",
        "feed.rate.model",
        "model must be one of",
        4,
    ),
    (
        "rate-value",
        "name: x\nfeed:\n  rate:\n    model: fixed\n    rate_per_symbol_hz: -3\n",
        "feed.rate.rate_per_symbol_hz",
        "greater than 0",
        5,
    ),
    (
        "rate-extra-key",
        "name: x\nfeed:\n  rate: {model: tape_timing, rate_per_symbol_hz: 5}\n",
        "feed.rate.rate_per_symbol_hz",
        "unknown key",
        3,
    ),
    ("sut-kind", "name: x\nsut:\n  kind: magic\n", "sut.kind", "kind must be one of", 3),
    ("sut-no-kind", "name: x\nsut:\n  image: x\n", "sut.kind", "kind must be one of", 2),
    (
        "placeholder",
        "name: x\nsut:\n  kind: command\n  command: 'core --port {level3_port}'\n",
        "sut.command",
        "{level3_port}",
        4,
    ),
    (
        "malformed-template",
        "name: x\nsut:\n  kind: command\n  command: 'core --x {bootstrap'\n",
        "sut.command",
        "malformed template",
        4,
    ),
    (
        "command-missing",
        "name: x\nsut:\n  kind: command\n",
        "sut.command",
        "missing",
        2,
    ),
    (
        "hook-placeholder",
        "name: x\nrollback:\n  hook: 'notify {who}'\n",
        "rollback.hook",
        "{who}",
        3,
    ),
    ("policy", "name: x\nrollback:\n  policy: retry\n", "rollback.policy", "step_back", 3),
    ("brokers", "name: x\ninfra:\n  brokers: 2\n", "infra.brokers", "1 or 3", 3),
    ("bootstrap", "name: x\ninfra:\n  mode: external\n", "infra.bootstrap", "needs", 2),
    (
        "bootstrap-local",
        "name: x\ninfra:\n  bootstrap: h:9092\n",
        "infra.bootstrap",
        "only used with mode external",
        3,
    ),
    ("tapes", "name: x\nfeed:\n  source: tape\n", "feed.tapes", "at least one tape", 2),
    (
        "tape-missing",
        "name: x\nfeed:\n  source: tape\n  tapes: [/nonexistent/t.tape]\n",
        "feed.tapes[0]",
        "no such tape",
        4,
    ),
    (
        "hop-needs-stamp",
        "name: x\nsut:\n  kind: external\n  record_mapping: {recv_ns: null}\n"
        "thresholds:\n  network_lag_p99_ms: 20\n",
        "thresholds.network_lag_p99_ms",
        "recv_ns",
        6,
    ),
    (
        "http-reload-url",
        "name: x\nsut:\n  kind: command\n  command: core\n  reload: {method: http}\n",
        "sut.reload.url",
        "needs a url",
        5,
    ),
    (
        "signal-name",
        "name: x\nsut:\n  kind: command\n  command: core\n  reload: {signal: SIGFOO}\n",
        "sut.reload.signal",
        "unknown signal",
        5,
    ),
    (
        "threshold-type",
        "name: x\nthresholds:\n  total_lag_p99_ms: fast\n",
        "thresholds.total_lag_p99_ms",
        "valid number",
        3,
    ),
    (
        "symbols-file",
        "name: x\nsymbols_file: /nonexistent/symbols.json\n",
        "symbols_file",
        "cannot read",
        2,
    ),
    (
        "yaml-syntax",
        "name: x\nstages:\n  - symbols: 5\n    hold_s: [1\n  - symbols: 6\n",
        "stages[0].hold_s",
        "YAML error",
        5,
    ),
    (
        "remote-workers-port",
        "name: x\ncollector:\n  workers: 2\n  local_workers: false\n",
        "collector.master_port",
        "must be set when the workers are not local",
        2,
    ),
    ("duplicate-key", "name: x\nstages: [{symbols: 5}]\nname: y\n", "name", "duplicate key", 3),
    ("empty-file", "", "(document)", "empty", None),
    ("not-a-mapping", "- 1\n- 2\n", "(document)", "not a mapping", None),
]


@pytest.mark.parametrize(
    ("text", "key", "words", "line"),
    [case[1:] for case in BAD_CASES],
    ids=[case[0] for case in BAD_CASES],
)
def test_bad_scenarios_name_file_key_path_line_and_problem(
    tmp_path: Path, text: str, key: str, words: str, line: int | None
) -> None:
    path = write(tmp_path, text)
    error = error_of(path)
    message = str(error)
    assert error.file == path
    assert str(path) in message
    matching = [p for p in error.problems if (p.path or "(document)") == key]
    assert matching, f"no problem at {key!r} in: {message}"
    rendered = matching[0].render(path)
    assert f": {key}: " in rendered
    assert words in rendered, rendered
    if line is not None:
        assert rendered.startswith(f"{path}:{line}: "), rendered


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    error = error_of(tmp_path / "nope.yaml")
    assert "cannot read the scenario file" in str(error)


def test_several_problems_are_all_reported_in_line_order(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbogus: 1\nstages:\n  - {symbols: 5, hold_s: -1}\n")
    error = error_of(path)
    assert [p.path for p in error.problems] == ["bogus", "stages[0].hold_s"]
    assert str(error).startswith(f"{path}: 2 problems")
