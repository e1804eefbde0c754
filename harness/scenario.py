"""The scenario format of `harness run` (see scenarios/README.md): its schema and hashing.

Owns the pydantic schema of a scenario YAML file (extra keys forbidden everywhere), its
defaults (the readiness review's production targets, from `harness.defaults`) and the checks
of single keys (known command placeholders, storage targets...). The checks that need more
than one key are `harness.scenario_checks`; reading a file, with errors that name the file,
key path, line and problem, is `harness.scenario_loading.load_scenario`.

Relative paths in a scenario (symbols_file, tapes, outputs.dir) are relative to the project
checkout (`harness.paths.repo_root()`); `Scenario.resolve()` makes them absolute.
"""

from __future__ import annotations

import copy
import hashlib
import json
import string
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveFloat,
    Tag,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from contracts.endpoints import DEFAULT_CONTROL_PORT, FEED_PORTS
from contracts.records import REFERENCE_CORE, FieldMapping
from contracts.topics import FEED_TOPICS
from harness.defaults import (
    STAGES,
    TARGET_MEMORY_GB,
    TARGET_P95_MS,
    TARGET_P99_MS,
)
from harness.paths import repo_root

DEFAULT_SYMBOLS_FILE: Final = Path("config/production_symbols.json")
DEFAULT_RATE_PER_SYMBOL_HZ: Final = 100.0
"""The review's assumption: 100 msg/s per symbol, 100 x 495 = 49,500 ~ TARGET_MSG_RATE."""
DEFAULT_WARMUP_S: Final = 30.0
DEFAULT_HOLD_S: Final = 120.0

COMMAND_PLACEHOLDERS: Final[frozenset[str]] = frozenset(
    {
        "feed_host",  # feed_sim's interface (IQConnect host)
        "level1_port",
        "level2_port",
        "admin_port",
        "lookup_port",
        "bootstrap",  # Kafka bootstrap servers
        "symbols_file",  # JSON list of the current stage's tickers, rewritten before each reload
        "universe_file",  # the scenario's symbols_file (all symbols, tiers, partitions)
        "symbol_count",
        "admin_url",  # the SUT's admin URL (sut.admin_url), if any
        "topics",  # comma-separated topics the collector reads
        "redis_url",  # the run's redis-server (infra.redis), empty without one
        "run_dir",  # results/<run>/ of this run
    }
)
"""Placeholders a `sut.command` template may use."""

HOOK_PLACEHOLDERS: Final[frozenset[str]] = COMMAND_PLACEHOLDERS | {
    "failed_stage",  # label of the stage that broke a threshold
    "good_stage",  # label of the stage rolled back to ("" if none)
    "outcome",  # "pending" at rollback_started; "held" / "not_restored" at verify_done
}
"""Placeholders a `rollback.hook` template may use."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- feed ---------------------------------------------------------------------------------


class FixedRate(_Strict):
    """Every active symbol at the same Level 1 rate."""

    model: Literal["fixed"] = "fixed"
    rate_per_symbol_hz: float = Field(default=DEFAULT_RATE_PER_SYMBOL_HZ, gt=0)
    render: Literal["ring", "live"] = "ring"
    """How feed_sim renders each message: "ring" (pre-rendered per-symbol lines, the intended
    time patched in: keeps 50k msg/s on schedule on a small machine) or "live" (every message
    applied to the symbol's state and rendered: the faithful replay, ~15 us a message).
    See feed_sim/server/paced_rings.py."""


class TierWeightedRate(_Strict):
    """Symbol i at rate_per_symbol_hz x weight_i (weights from the symbols file, mean 1.0)."""

    model: Literal["tier_weighted"] = "tier_weighted"
    rate_per_symbol_hz: float = Field(default=DEFAULT_RATE_PER_SYMBOL_HZ, gt=0)
    render: Literal["ring", "live"] = "ring"
    """As FixedRate.render."""


class TapeTimingRate(_Strict):
    """The tape's own inter-arrival times, sped up (or slowed down) by `speed`."""

    model: Literal["tape_timing"] = "tape_timing"
    speed: float = Field(default=1.0, gt=0)


def _rate_tag(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("model", "fixed"))
    return str(getattr(value, "model", "fixed"))


RateModel = Annotated[
    Annotated[FixedRate, Tag("fixed")]
    | Annotated[TierWeightedRate, Tag("tier_weighted")]
    | Annotated[TapeTimingRate, Tag("tape_timing")],
    Discriminator(
        _rate_tag,
        custom_error_type="rate_model",
        custom_error_message="model must be one of fixed, tier_weighted, tape_timing",
    ),
]


class GeneratedFeed(_Strict):
    """The generated session feed_sim replays when `source: generated`."""

    minutes: float = Field(default=30.0, ge=1, le=390)
    seed: int = 20261125


class FeedPorts(_Strict):
    """feed_sim's IQConnect ports and its HTTP control port."""

    level1: int = Field(default=FEED_PORTS["level1"], ge=1, le=65535)
    level2: int = Field(default=FEED_PORTS["level2"], ge=1, le=65535)
    admin: int = Field(default=FEED_PORTS["admin"], ge=1, le=65535)
    lookup: int = Field(default=FEED_PORTS["lookup"], ge=1, le=65535)
    control: int = Field(default=DEFAULT_CONTROL_PORT, ge=1, le=65535)


class FeedConfig(_Strict):
    """What feed_sim sends and how fast."""

    source: Literal["generated", "tape", "amplified"] = "generated"
    tapes: list[Path] = Field(default_factory=list)
    generated: GeneratedFeed = GeneratedFeed()
    rate: RateModel = FixedRate()
    level2_rate_per_symbol_hz: float = Field(default=0.0, ge=0)
    level2_tier_weights: dict[int, PositiveFloat] = Field(default_factory=dict)
    """Level 2 rate of a symbol's liquidity tier relative to the others (e.g. {1: 2, 2: 1,
    3: 0.5}); the mean over the stage's symbols stays `level2_rate_per_symbol_hz`. Empty: the
    same for every symbol."""
    host: str = "127.0.0.1"
    ports: FeedPorts = FeedPorts()


# --- system under test --------------------------------------------------------------------


class _RecordPlacement(_Strict):
    """Where the SUT's records are (topics, partitions); `RecordMapping` adds the keys of
    `contracts.records.FieldMapping` (where the collector finds its fields in a record value,
    contract 4) beside them, so a scenario writes `record_mapping: {seq: meta.seq, topics:
    [ticks]}` and the field keys are listed once, in the contract."""

    topics: list[str] = Field(default_factory=lambda: list(FEED_TOPICS), min_length=1)
    partitions: Literal["all", "universe"] = "all"
    """"universe": the core writes each symbol to its partition from the symbols file (as the
    reference core does), so the collector reads only the stage's symbols' partitions; "all":
    unknown, read every partition of `topics` (each fetch then covers all of them)."""
    topic_partitions: int | None = Field(default=None, ge=1)
    """Partitions of each of `topics` when the harness creates them (local and compose modes,
    or `infra.create_topics` in external mode); None = one per symbol of the universe."""

    def field_mapping(self) -> FieldMapping:
        """The collector's FieldMapping: this table's keys but the placement ones."""
        return FieldMapping.from_dict(self.model_dump(exclude=set(_RecordPlacement.model_fields)))

    @model_validator(mode="after")
    def _valid_mapping(self) -> _RecordPlacement:
        self.field_mapping()  # the contract's own checks (time_unit_ns >= 1, ...)
        return self


def _field_mapping_keys() -> dict[str, Any]:
    """pydantic field definitions of FieldMapping's keys, with its types and defaults."""
    hints = get_type_hints(FieldMapping)
    return {
        name: (hints[name], Field(default_factory=partial(copy.copy, value)))
        for name, value in REFERENCE_CORE.to_dict().items()
    }


if TYPE_CHECKING:
    RecordMapping = _RecordPlacement
else:
    RecordMapping = create_model(
        "RecordMapping",
        __base__=_RecordPlacement,
        __doc__=_RecordPlacement.__doc__,
        __module__=__name__,
        **_field_mapping_keys(),
    )


class ReloadConfig(_Strict):
    """How a SUT learns the next stage's symbol set.

    restart: stop and start the command with the new {symbols_file};
    http: POST `url` with the JSON body {"symbols": [...]};
    signal: rewrite {symbols_file}, then send `signal` to the process;
    none: the SUT subscribes to the whole universe; only feed_sim's active symbols change.
    """

    method: Literal["restart", "http", "signal", "none"] = "restart"
    url: str | None = None
    signal: str = "SIGHUP"
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        import signal as signals

        if not isinstance(getattr(signals, value, None), signals.Signals):
            raise ValueError(f"unknown signal {value!r} (e.g. SIGHUP, SIGUSR1)")
        return value


def _check_template(template: str, known: frozenset[str]) -> str:
    """The template unchanged if every {placeholder} is known; ValueError otherwise."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed template ({exc}); write literal braces as {{{{ }}}}") from exc
    unknown = sorted({name for _, name, _, _ in parsed if name is not None and name not in known})
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"known: {', '.join('{' + n + '}' for n in sorted(known))}"
        )
    return template


class ReferenceSut(_Strict):
    """Our ingestion core (`ingest`), started by the harness."""

    kind: Literal["reference"] = "reference"
    connections: int = Field(default=5, ge=1, le=64)
    level2: bool = True
    kafka_producers: int | None = Field(default=None, ge=1, le=64)
    """The core's idempotent Kafka producers (ingest's `kafka.producers`; None: its default)."""
    kafka_linger_ms: int | Literal["auto"] | None = Field(default=None)
    """The core's librdkafka linger.ms (ingest's `kafka.linger_ms`; None: its default, "auto")."""
    kafka_producer: dict[str, Any] = Field(default_factory=dict)
    """Any other librdkafka settings of the core's producer (ingest's `kafka.producer`), e.g.
    to test the settings your production core uses; acks=all and idempotence stay."""
    redis_interval_s: float = Field(default=5.0, gt=0)
    """With `infra.redis`: how often the core writes every book to Redis (ingest's
    `redis.interval_s`)."""
    record_mapping: RecordMapping = RecordMapping()


class CommandSut(_Strict):
    """A user's core started from a command template (placeholders: COMMAND_PLACEHOLDERS)."""

    kind: Literal["command"] = "command"
    command: str = Field(min_length=1)
    cwd: Path | None = None
    env: dict[str, str] = Field(default_factory=dict)
    admin_url: str | None = None
    metrics_url: str | None = None
    """The core's Prometheus text endpoint, scraped once a second (see scenarios/README.md)."""
    reload: ReloadConfig = ReloadConfig()
    record_mapping: RecordMapping = RecordMapping()
    startup_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("command")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return _check_template(value, COMMAND_PLACEHOLDERS)


class ContainerSut(_Strict):
    """A user's core in a container, run with the docker SDK."""

    kind: Literal["container"] = "container"
    image: str = Field(min_length=1)
    command: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    network_mode: str = "host"
    admin_url: str | None = None
    metrics_url: str | None = None
    reload: ReloadConfig = ReloadConfig()
    record_mapping: RecordMapping = RecordMapping()
    startup_timeout_s: float = Field(default=120.0, gt=0)

    @field_validator("command")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        return None if value is None else _check_template(value, COMMAND_PLACEHOLDERS)


class ExternalSut(_Strict):
    """A core that is already running; the harness only feeds and observes it."""

    kind: Literal["external"] = "external"
    admin_url: str | None = None
    metrics_url: str | None = None
    pid: int | None = Field(default=None, ge=1)  # for RSS/CPU sampling when it runs on this host
    reload: ReloadConfig = ReloadConfig(method="none")
    record_mapping: RecordMapping = RecordMapping()


def _sut_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, Mapping) else getattr(value, "kind", None)
    return None if kind is None else str(kind)


SutConfig = Annotated[
    Annotated[ReferenceSut, Tag("reference")]
    | Annotated[CommandSut, Tag("command")]
    | Annotated[ContainerSut, Tag("container")]
    | Annotated[ExternalSut, Tag("external")],
    Discriminator(
        _sut_tag,
        custom_error_type="sut_kind",
        custom_error_message="kind must be one of reference, command, container, external",
    ),
]


# --- infrastructure, stages, thresholds, rollback, outputs ---------------------------------


class InfraConfig(_Strict):
    """Where Kafka comes from: started locally, given (external) or the compose stack."""

    mode: Literal["local", "external", "compose"] = "local"
    brokers: Literal[1, 3] = 1
    bootstrap: str | None = None
    create_topics: bool = True
    broker_profile: str | None = None
    """Local mode: the brokers' tuning (harness.infra.broker_profiles; None: its default)."""
    redis: bool = False
    """Start a redis-server for the run (loopback, AOF with fsync every second, as the review
    sizes it): the reference core writes its books there (a command core gets {redis_url}),
    and every hold reports Redis's memory and the snapshot write lag."""

    @field_validator("broker_profile")
    @classmethod
    def _known_profile(cls, value: str | None) -> str | None:
        from harness.infra.broker_profiles import broker_profile

        return None if value is None else broker_profile(value).name


STORAGE_URL_SCHEMES = ("http://", "https://", "clickhouse://")


class StorageConfig(_Strict):
    """The ClickHouse sink as a measured hop: `ingest clickhouse-writer` runs beside the SUT
    on its topics, each hold records the `storage` hop (Kafka append -> row visible) and
    reconciles the tables' rows after FINAL with the records Kafka holds."""

    clickhouse: str | None = None
    """None: no storage hop. "embedded": the chdb engine, data in `<run>/clickhouse`. An
    http(s):// or clickhouse:// URL: that ClickHouse server."""
    database: str = Field(default="market", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    batch_size: int = Field(default=5000, gt=0)
    """Rows per insert at most (the writer's --batch-size)."""
    batch_ms: int = Field(default=200, gt=0)
    """A batch is written at the latest this long after its first record (--batch-ms)."""
    reconcile_timeout_s: float = Field(default=60.0, gt=0)
    """At a hold's end: how long the writer may take to reach Kafka's end offsets."""

    @field_validator("clickhouse")
    @classmethod
    def _target(cls, value: str | None) -> str | None:
        if value is None or value == "embedded" or value.startswith(STORAGE_URL_SCHEMES):
            return value
        raise ValueError(
            f"{value!r} is neither 'embedded' nor a ClickHouse URL "
            f"({', '.join(STORAGE_URL_SCHEMES)})"
        )

    @property
    def enabled(self) -> bool:
        return self.clickhouse is not None


class Stage(_Strict):
    """One ramp stage: how many symbols, warm-up (not measured) and hold (measured)."""

    symbols: int = Field(gt=0)
    warmup_s: float = Field(default=DEFAULT_WARMUP_S, ge=0)
    hold_s: float = Field(default=DEFAULT_HOLD_S, gt=0)
    rate_per_symbol_hz: float | None = Field(default=None, gt=0)


def _default_stages() -> list[Stage]:
    return [Stage(symbols=n) for n in STAGES]


GENERATOR_LATENESS_P99_MS = 10.0
"""Generator guard default: a tenth of the default total-lag P99 budget. The generator's own
lateness is inside the CO-corrected total lag, so beyond this the generator rather than the
SUT could decide a verdict near the limit. (feed_sim's benchmark target, 1 ms at 50k msg/s on
an idle machine, is a separate budget: bench/bench_feed_sim.py.)"""


class Thresholds(_Strict):
    """Pass/fail limits of a stage (harness.thresholds evaluates them). None = not checked.

    Lag limits are on the CO-corrected total lag (from the intended send time) and pass when
    the measured percentile is strictly below the limit (the review's "< 50 ms"); the other
    maxima pass when measured <= limit. `network_mbps_max` is off by default: the review's
    ~50 Mbps is the load the pipeline must carry, not a ceiling (see scenarios/README.md).
    """

    total_lag_p95_ms: float | None = Field(default=TARGET_P95_MS, gt=0)
    total_lag_p99_ms: float | None = Field(default=TARGET_P99_MS, gt=0)
    network_lag_p99_ms: float | None = Field(default=None, gt=0)
    processing_lag_p99_ms: float | None = Field(default=None, gt=0)
    kafka_lag_p99_ms: float | None = Field(default=None, gt=0)
    storage_lag_p95_ms: float | None = Field(default=None, gt=0)
    storage_lag_p99_ms: float | None = Field(default=None, gt=0)
    """With `storage`: the storage hop (Kafka append -> row visible in ClickHouse)."""
    storage_rows_mismatch_max: int = Field(default=0, ge=0)
    """With `storage`: at a hold's end the rows after FINAL may differ from the records Kafka
    holds (less malformed ones) by at most this many."""
    sut_rss_gb: float | None = Field(default=TARGET_MEMORY_GB, gt=0)
    network_mbps_max: float | None = Field(default=None, gt=0)
    loss_ratio_max: float = Field(default=0.0, ge=0, le=1)
    duplicates_max: int = Field(default=0, ge=0)
    achieved_rate_ratio_min: float = Field(default=0.99, gt=0, le=1)
    generator_lateness_p99_ms_max: float = Field(default=GENERATOR_LATENESS_P99_MS, gt=0)
    min_samples: int = Field(default=100, ge=1)


class RollbackConfig(_Strict):
    """What happens when a stage fails (see harness.plan)."""

    policy: Literal["step_back", "abort", "continue"] = "step_back"
    settle_s: float = Field(default=10.0, ge=0)
    verify_s: float = Field(default=60.0, gt=0)
    hook: str | None = None
    hook_at: Literal["rollback_started", "verify_done"] = "rollback_started"
    hook_timeout_s: float = Field(default=120.0, gt=0)

    @field_validator("hook")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        return None if value is None else _check_template(value, HOOK_PLACEHOLDERS)


class TestBedPart(_Strict):
    """A process of the test bed the harness did not start, e.g. a Kafka broker of your own on
    this host (external mode), so its CPU is accounted for and judged as the test bed's."""

    __test__: ClassVar[bool] = False  # not a pytest class, whatever its name

    pids: list[int] = Field(default_factory=list)
    match: str | None = Field(default=None, min_length=1)
    """A text in the command line of the part's processes (looked up every 10 s)."""
    sut: bool = False
    """True: this process is part of the system under test, not of the test bed."""


class TestBedConfig(_Strict):
    """When a failing stage is the test bed's fault, not the SUT's (harness.testbed)."""

    __test__: ClassVar[bool] = False  # not a pytest class, whatever its name

    enabled: bool = True
    busy_ratio: float = Field(default=0.9, gt=0, le=1)
    """The host counts as saturated at this mean share of its cores busy over the hold..."""
    steal_ratio: float = Field(default=0.05, gt=0, le=1)
    """...or at this mean share of CPU time stolen by the hypervisor."""
    harness_share: float = Field(default=0.5, gt=0, le=1)
    """A FAIL on a saturated host is INCONCLUSIVE when the harness's own parts (feed_sim,
    collector, local brokers, Locust, the runner, and `parts`) took at least this share of the
    busy CPU."""
    parts: dict[str, TestBedPart] = Field(default_factory=dict)
    """More parts of the test bed, by PID or command line (their names are shown as given)."""


class EarlyAbortConfig(_Strict):
    """The "lost beyond doubt" rule of harness.thresholds.beyond_doubt()."""

    enabled: bool = True
    slack: float = Field(default=0.05, ge=0, le=1)
    check_every_s: float = Field(default=1.0, gt=0)


class CollectorConfig(_Strict):
    """How the collector is deployed: one process, or shards on Locust workers."""

    workers: int = Field(default=0, ge=0, le=64)
    """0: one collector process beside the runner. N >= 1: the distributed collector, a Locust
    master (harness.distributed_collector.master) merging N collector shards, each on a Locust
    worker."""
    local_workers: bool = True
    """Start the N workers on this machine; false: wait for `harness worker --master
    HOST:PORT` processes started elsewhere."""
    master_host: str = "127.0.0.1"
    """The address the master binds and workers connect to (loopback unless workers run on
    other machines)."""
    master_port: int = Field(default=0, ge=0, le=65535, validate_default=True)
    """0: a free port (only with local workers, which are told it)."""
    worker_timeout_s: float = Field(default=120.0, gt=0)
    """How long the master waits for its workers and their shards to be ready."""

    @field_validator("master_port")
    @classmethod
    def _port_known_to_remote_workers(cls, port: int, info: ValidationInfo) -> int:
        if info.data.get("workers") and info.data.get("local_workers") is False and port == 0:
            raise ValueError("must be set when the workers are not local (they connect to it)")
        return port


class OutputsConfig(_Strict):
    """Where and what a run writes."""

    dir: Path = Path("results")
    plots: bool = True
    junit: bool = True
    hlog: bool = True
    locust: bool = True
    """Run Locust headless beside the runner (its shape follows the stage plan) and keep its
    CSV stats in locust/; `harness run --ui` serves its web UI whatever this says."""


class Scenario(_Strict):
    """A whole scenario file."""

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    symbols_file: Path = DEFAULT_SYMBOLS_FILE
    feed: FeedConfig = FeedConfig()
    sut: SutConfig = ReferenceSut()
    infra: InfraConfig = InfraConfig()
    storage: StorageConfig = StorageConfig()
    stages: list[Stage] = Field(default_factory=_default_stages, min_length=1)
    thresholds: Thresholds = Thresholds()
    rollback: RollbackConfig = RollbackConfig()
    early_abort: EarlyAbortConfig = EarlyAbortConfig()
    test_bed: TestBedConfig = TestBedConfig()
    collector: CollectorConfig = CollectorConfig()
    outputs: OutputsConfig = OutputsConfig()

    def resolve(self, path: Path) -> Path:
        """`path` made absolute against the project checkout."""
        return path if path.is_absolute() else repo_root() / path

    def stage_rate_hz(self, index: int) -> float | None:
        """Level 1 msg/s per symbol (mean) of stage `index`; None under tape timing."""
        override = self.stages[index].rate_per_symbol_hz
        if override is not None:
            return override
        rate = self.feed.rate
        return None if isinstance(rate, TapeTimingRate) else rate.rate_per_symbol_hz

    def scenario_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of the scenario, defaults included."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def scenario_hash(scenario: Scenario) -> str:
    """sha256 (hex) of the scenario's canonical JSON (see Scenario.scenario_hash)."""
    return scenario.scenario_hash()
