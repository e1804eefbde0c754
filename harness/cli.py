"""The `harness` command line: local infrastructure, topic provisioning, symbol checks.

Composition root of the CLI: each command builds the objects it needs (LocalKafka, stores)
from its options and maps failures to the exit codes of contract 7.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

from harness import __version__, paths
from harness.exit_codes import EXIT_CODES_HELP, ExitCode
from harness.infra.broker_profiles import DEFAULT_PROFILE, PROFILES
from harness.infra.errors import InfraError
from harness.infra.kafka_local import LocalKafka, fetch_kafka_jars
from harness.infra.topics import ensure_topics, feed_topic_specs

console = Console(stderr=True, highlight=False)
STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where run state (PIDs, ports, bootstrap) is kept. Default: $HARNESS_STATE_DIR or "
    "<repo>/.harness.",
)


def fail(message: str, code: ExitCode) -> NoReturn:
    """Print `message` as an error and exit with `code`."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # one line, even in a pipe
    sys.exit(int(code))


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Staged load and latency harness for an IQFeed ingestion pipeline.

    Drives a replay-based IQFeed simulator (feed_sim) against an ingestion core (ingest, or
    your own) through 50 -> 100 -> 200 -> 495-symbol stages, measuring lag in HDR histograms
    against the production targets (P95 < 50 ms, P99 < 100 ms at ~50k msg/s).

    Start with `harness infra up`, then `harness infra topics`; stop with `harness infra down`.
    """


# -- infra ------------------------------------------------------------------------------------


@cli.group()
def infra() -> None:
    """Local infrastructure: a real Apache Kafka (KRaft) on loopback, topics, ClickHouse tables.

    The broker runs from the Apache Kafka jars that Maven fetches from Maven Central
    (`harness infra fetch`), so no Docker engine is needed.
    """


@infra.command()
def fetch() -> None:
    """Download the Kafka broker jars with Maven (compose/kafka/pom.xml) into .cache/."""
    try:
        with console.status("fetching the Apache Kafka broker with Maven..."):
            folder = fetch_kafka_jars()
    except InfraError as exc:
        fail(str(exc), ExitCode.INFRA_UNAVAILABLE)
    jars = len(list(folder.glob("*.jar")))
    console.print(f"Kafka broker jars ready: {folder} ({jars} jars)")


@infra.command()
@click.option(
    "--brokers",
    type=click.Choice(["1", "3"]),
    default="1",
    show_default=True,
    help="Number of brokers; 3 gives replication factor 3 and min.insync.replicas 2.",
)
@click.option(
    "--heap-mb",
    type=click.IntRange(128, 8192),
    default=512,
    show_default=True,
    help="JVM heap of each broker.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(5, 900),
    default=120,
    show_default=True,
    help="Seconds to wait until every broker answers metadata.",
)
@click.option(
    "--broker-profile",
    type=click.Choice(sorted(PROFILES)),
    default=DEFAULT_PROFILE,
    show_default=True,
    help="Broker tuning (network/I-O threads, JVM options); see README, Kafka settings.",
)
@click.option(
    "--redis",
    "with_redis",
    is_flag=True,
    help="Also start Debian's redis-server on loopback with appendonly yes and appendfsync "
    "everysec (state in <state-dir>/redis.json; `infra down` stops it).",
)
@STATE_DIR_OPTION
def up(
    brokers: str,
    heap_mb: int,
    timeout_s: float,
    broker_profile: str,
    with_redis: bool,
    state_dir: Path | None,
) -> None:
    """Start a local KRaft Kafka cluster on loopback and wait until it serves metadata.

    Formats storage, starts the broker(s) on free 127.0.0.1 ports and writes the bootstrap
    address to <state-dir>/kafka.json, where `harness infra topics` and `harness run` find it.
    Prints the bootstrap address on stdout (and, with --redis, the Redis URL after it).
    """
    from harness.infra.redis_local import LocalRedis

    kafka = LocalKafka(state_dir=state_dir, heap_mb=heap_mb, profile=broker_profile)
    try:
        with console.status(f"starting {brokers} Kafka broker(s)..."):
            state = kafka.up(brokers=int(brokers), timeout_s=timeout_s)
        if with_redis:
            with console.status("starting redis-server..."):
                redis_state = LocalRedis(state_dir=state_dir).up()
            console.print(f"redis-server up: pid {redis_state.pid}, AOF everysec")
    except InfraError as exc:
        fail(str(exc), ExitCode.INFRA_UNAVAILABLE)
    pids = ", ".join(str(n.pid) for n in state.nodes)
    console.print(
        f"Kafka {state.version} up: {state.broker_count} broker(s), pids {pids}, "
        f"profile {broker_profile}"
    )
    click.echo(state.bootstrap)
    if with_redis:
        click.echo(redis_state.url)


@infra.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@STATE_DIR_OPTION
def status(as_json: bool, state_dir: Path | None) -> None:
    """Show whether the local Kafka is running (exit 4 when it is not)."""
    report = LocalKafka(state_dir=state_dir).status()
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
    else:
        for node in report.nodes:
            state = "alive" if node.alive else "stopped"
            click.echo(f"node {node.node_id}: pid {node.pid} {state} at {node.address}")
        if report.running:
            click.echo(
                f"running: {report.brokers_in_metadata} broker(s) in metadata at {report.bootstrap}"
            )
        else:
            click.echo(f"not running: {report.error}")
    if not report.running:
        sys.exit(int(ExitCode.INFRA_UNAVAILABLE))


@infra.command()
@click.option("--keep-data", is_flag=True, help="Keep the brokers' data folders.")
@STATE_DIR_OPTION
def down(keep_data: bool, state_dir: Path | None) -> None:
    """Stop exactly the processes `up` started (brokers, redis-server; by PID). Safe to run
    twice."""
    from harness.infra.redis_local import LocalRedis

    stopped = LocalKafka(state_dir=state_dir).down(keep_data=keep_data)
    if stopped:
        console.print(f"stopped Kafka broker pid(s) {', '.join(map(str, stopped))}")
    else:
        console.print("no local Kafka was running")
    redis_pid = LocalRedis(state_dir=state_dir).down()
    if redis_pid:
        console.print(f"stopped redis-server pid {redis_pid}")


@infra.command()
@click.option(
    "--bootstrap",
    default=None,
    help="Bootstrap servers of an external cluster. Default: the local cluster of "
    "`harness infra up`.",
)
@click.option(
    "--partitions",
    type=click.IntRange(1, 10_000),
    default=495,
    show_default=True,
    help="Partitions per topic (the layout): one per symbol is the readiness review's; fewer "
    "fold the symbols (partition % N; give the core the same `kafka.partitions`).",
)
@STATE_DIR_OPTION
def topics(bootstrap: str | None, partitions: int, state_dir: Path | None) -> None:
    """Create the feed topics: --partitions each (default one per symbol), 7 days retention,
    RF min(3, brokers), LogAppendTime.

    Existing topics are verified; a partition-count mismatch is an error (exit 4).
    """
    from harness.infra.kafka_local import metadata_broker_count

    if bootstrap is None:
        state = LocalKafka(state_dir=state_dir).load_state()
        if state is None:
            fail(
                "no local Kafka is running; start one with `harness infra up` or pass --bootstrap",
                ExitCode.INFRA_UNAVAILABLE,
            )
        bootstrap = state.bootstrap
    brokers, error = metadata_broker_count(bootstrap, timeout_s=10.0)
    if brokers == 0:
        fail(f"cannot reach Kafka at {bootstrap}: {error}", ExitCode.INFRA_UNAVAILABLE)
    specs = feed_topic_specs(brokers, partitions)
    try:
        with console.status(f"creating {len(specs)} topics x {partitions} partitions..."):
            results = ensure_topics(bootstrap, specs)
    except InfraError as exc:
        fail(str(exc), ExitCode.INFRA_UNAVAILABLE)
    for result in results:
        verb = "created" if result.created else "exists "
        click.echo(
            f"{verb} {result.name}: {result.partitions} partitions, "
            f"replication {result.replication}"
        )


@infra.command()
@click.option(
    "--path",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the embedded chdb engine. Default: <repo>/.cache/clickhouse.",
)
@click.option(
    "--url",
    default=None,
    help="A ClickHouse server URL instead of the embedded engine, e.g. http://localhost:8123.",
)
def clickhouse(folder: Path | None, url: str | None) -> None:
    """Create the tick and depth tables (ZSTD, PARTITION BY day, TTL 90 days)."""
    from ingest.storage import open_store

    target: str | Path = url or folder or paths.repo_root() / ".cache" / "clickhouse"
    try:
        store = open_store(target)
    except Exception as exc:  # connection failures of either backend
        fail(f"cannot open ClickHouse at {target}: {exc}", ExitCode.INFRA_UNAVAILABLE)
    try:
        store.create_schema()
        for table in ("ticks", "depth"):
            info = store.table_info(table)
            click.echo(
                f"{table}: {info.get('engine')} ORDER BY ({info.get('sorting_key')}) "
                f"PARTITION BY {info.get('partition_key')}"
            )
    finally:
        store.close()


# -- run --------------------------------------------------------------------------------------


@cli.command("run", epilog=EXIT_CODES_HELP)
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--results",
    "results_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for run outputs. Default: the scenario's outputs.dir (results/).",
)
@click.option(
    "--ui",
    is_flag=True,
    help="Also serve Locust's web UI (the run's Locust process) with the live stage, symbols "
    "(as users), achieved rate and per-second lag P99 (from the harness's own histograms; "
    "Locust never decides).",
)
@click.option("--ui-port", type=click.IntRange(1, 65535), default=8089, show_default=True)
@click.option(
    "--require-real-data",
    is_flag=True,
    help="Refuse to run (exit 3) unless the feed is real market data: a tape that `harness "
    "validate-data` finds plausible, not a generated session. Without it a finding above "
    "info is a warning; either way the check's result is in summary.json and the report.",
)
def run_command(
    scenario: Path, results_root: Path | None, ui: bool, ui_port: int, require_real_data: bool
) -> None:
    """Run a staged ramp: feed_sim -> SUT -> Kafka, measured per stage, with rollback.

    Writes results/<UTC time>-<scenario>/: summary.json (updated after every stage),
    lag.hlog (1 s interval histograms tagged stage-N and stage-N-uncorrected), histograms/
    (each hold's histograms, encoded and as .hgrm text), junit.xml, plots/, report.html and
    report.md (`harness report`), live.json (the live status, about once a second) and
    locust/ (Locust, run headless beside the runner with the stage plan as its load shape,
    keeps its CSV stats there; outputs.locust). Ctrl-C stops everything the run started and
    keeps what was measured.
    """
    from harness.run import HarnessRun
    from harness.scenario_loading import ScenarioError, load_scenario

    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        fail(str(exc), ExitCode.INVALID_INPUT)
    code = HarnessRun(
        loaded,
        scenario,
        console,
        results_root,
        ui_port=ui_port if ui else None,
        require_real_data=require_real_data,
    ).execute()
    sys.exit(int(code))


@cli.command("validate-data")
@click.argument("source")
@click.option(
    "--kind",
    type=click.Choice(["tape", "history", "clickhouse"]),
    default=None,
    help="What SOURCE is. Default: chdb:PATH or http(s)://host:8123[/db] is ClickHouse, a "
    "zstd file a feed_sim tape, anything else an IQFeed tick-history reply (csv or zip).",
)
@click.option("--symbol", default=None, help="The symbol of a tick-history reply (its rows name "
              "none). Default: the file name up to its first dot.")  # fmt: skip
@click.option(
    "--universe",
    "universe_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Flag symbols outside this universe file (e.g. config/production_symbols.json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def validate_data_command(
    source: str, kind: str | None, symbol: str | None, universe_file: Path | None, as_json: bool
) -> None:
    """Is SOURCE real market data? Checks it against the facts of real US equities feeds.

    SOURCE is a feed_sim tape, an IQFeed tick-history reply (HTX/HTD/HTT rows, csv or zip)
    or the ClickHouse writer's tables (chdb:PATH for the embedded engine, or a server URL).
    Each check prints its finding, a severity (info, suspicious, synthetic), its evidence
    (--json) and where its threshold comes from (../shared/market-facts.md): market-maker ids
    against the Nasdaq participant directory, trades outside the sessions (ET, DST-aware) or
    on weekends and NYSE holidays, daily moves, venue concentration, identical or constant
    spreads, quotes off the $0.01 grid, lot sizes, burstiness, the intraday U-shape, trade-sign
    autocorrelation and (--universe) symbols outside the universe.

    Exit codes: 0 plausible, 1 synthetic or suspicious, 3 bad arguments or unreadable source.
    """
    from harness.datacheck.dataset import DataSourceError
    from harness.datacheck.sources import load_source
    from harness.datacheck.validate import default_context, table, universe_tickers, validate
    from harness.symbols import SymbolFileError

    try:
        tickers = universe_tickers(universe_file) if universe_file else None
        data = load_source(source, kind=kind, symbol=symbol)
    except (DataSourceError, SymbolFileError) as exc:
        fail(str(exc), ExitCode.INVALID_INPUT)
    result = validate(data, default_context(tickers))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        out = Console(highlight=False)
        out.width = max(out.width, 140)
        out.print(table(result))
        for note in result.notes:
            console.print(f"note: {note}")
    sys.exit(0 if result.plausible else 1)


@cli.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def report_command(run_dir: Path) -> None:
    """Write the sign-off report of a run: RUN_DIR/report.html (self-contained, plots
    embedded, opens offline) and RUN_DIR/report.md (for pull requests).

    Verdict first (overall and per hold, with each hold's diagnosis), the rollback story, every
    threshold with its measured value, limit and margin, completeness per hold, the plots, and
    the sign-off block (scenario hash, git SHA, versions, host, command line). `harness run`
    writes it at the end of every run; run this again after changing a run's files, or on an
    interrupted run. Exit 3 when RUN_DIR holds no readable summary.json.
    """
    from harness.results.report import ReportError, write_report

    try:
        markdown, html = write_report(run_dir)
    except ReportError as exc:
        fail(str(exc), ExitCode.INVALID_INPUT)
    console.print(f"report: {html} ({markdown.name} beside it)")


@cli.command("compare")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("baseline_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 10),
    default=0.10,
    show_default=True,
    help="A P99 (or RSS, or achieved rate) worse by more than this share is a regression.",
)
@click.option(
    "--floor-ms",
    type=click.FloatRange(0),
    default=2.0,
    show_default=True,
    help="...and a P99 must also be worse by more than this many ms (noise never fails).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.01,
    show_default=True,
    help="...and the run's per-second P99s must be higher than the baseline's by a one-sided "
    "Mann-Whitney U test at this level (when both runs wrote lag.hlog).",
)
@click.option("--no-plots", is_flag=True, help="Skip the overlay plots in compare.html.")
def compare_command(
    run_dir: Path,
    baseline_dir: Path,
    tolerance: float,
    floor_ms: float,
    alpha: float,
    no_plots: bool,
) -> None:
    """Compare RUN_DIR with BASELINE_DIR, stage by stage: did the pipeline get slower?

    Per stage both ran and per SUT lag measure: P50..P99.9 and max, RSS, achieved rate, loss.
    A regression: a P99 worse by more than --tolerance and --floor-ms and consistently over
    the hold (its per-second P99s higher, --alpha; a move made of a few bad seconds is
    printed as noise), RSS up by more than
    --tolerance and 50 MB, the achieved rate down by more than --tolerance, more loss or
    duplicates, a stage the baseline passed and the run did not, or one it never reached.
    Writes RUN_DIR/compare.md and RUN_DIR/compare.html (the percentile curves overlaid).

    Exit codes: 0 no regression, 1 regression, 3 bad arguments (a folder without a readable
    summary.json), 5 not comparable (a different scenario SHA-256 or stage plan; said so).
    """
    from harness.results.compare import NotComparable, compare_runs, write_comparison
    from harness.results.report import ReportError

    try:
        result = compare_runs(run_dir, baseline_dir, tolerance, floor_ms, alpha)
    except ReportError as exc:
        fail(str(exc), ExitCode.INVALID_INPUT)
    except NotComparable as exc:
        fail(f"the runs are not comparable: {exc}", ExitCode.INCONCLUSIVE)
    markdown, html = write_comparison(result, plots=not no_plots)
    for line in result.regressions:
        console.print(f"[red]regression:[/] {line}")
    for line in result.noise:
        console.print(f"[yellow]noise, not a regression:[/] {line}")
    verdict = "REGRESSION" if result.regressed else "no regression"
    console.print(
        f"{verdict}: {run_dir.name} vs {baseline_dir.name}, stages {', '.join(result.stages)}"
        f" ({html}, {markdown.name} beside it)"
    )
    sys.exit(1 if result.regressed else 0)


@cli.group()
def baseline() -> None:
    """The stored baselines `harness compare` and `make nightly` judge against."""


@baseline.command("accept")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--into",
    "baselines_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("baselines"),
    show_default=True,
    help="Folder of baselines; the run goes to <folder>/<scenario name>/.",
)
def baseline_accept(run_dir: Path, baselines_root: Path) -> None:
    """Make a finished run the baseline of its scenario (replacing the previous one).

    Copies summary.json, the encoded histograms, report.md and junit.xml (a few hundred KB);
    commit the folder so the nightly job compares against it. Exit 3 for a folder without a
    finished run's summary.json.
    """
    from harness.results.compare import accept_baseline
    from harness.results.report import ReportError

    try:
        target = accept_baseline(run_dir, baselines_root)
    except ReportError as exc:
        fail(str(exc), ExitCode.INVALID_INPUT)
    console.print(f"baseline: {target} (from {run_dir})")


@cli.command("worker")
@click.option(
    "--master",
    default="127.0.0.1:5557",
    show_default=True,
    help="HOST:PORT of the run's Locust master (the scenario's collector.master_host/_port).",
)
def worker_command(master: str) -> None:
    """Host a collector shard for a distributed run (a Locust worker).

    Start one per machine (or per core) before or while `harness run` waits for its workers:
    the scenario says `collector: {workers: N, local_workers: false, master_port: P}`. The
    master gives this worker shard i of N (partitions p with p mod N == i); its collector
    process reads them from Kafka and its encoded HDR histograms are merged on the master. The
    worker exits when the run ends (the master says quit), when the master is gone, or on
    Ctrl-C.
    """
    host, _, port = master.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"--master: expected HOST:PORT, got {master!r}", ExitCode.INVALID_INPUT)
    from harness.collector.launch import worker_command as argv_of_worker

    argv = argv_of_worker(host, int(port))
    os.execv(argv[0], argv)  # locust monkey-patches with gevent: a fresh interpreter


# -- symbols ----------------------------------------------------------------------------------


@cli.group()
def symbols() -> None:
    """The production symbol universe (config/production_symbols.json)."""


@symbols.command("check")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Symbol file to check. Default: config/production_symbols.json.",
)
def symbols_check(file: Path | None) -> None:
    """Validate the universe offline: well-formed unique tickers, partitions 0..N-1, tiers."""
    from harness.symbols import SymbolFileError, load_universe, validate_universe

    try:
        universe = load_universe(file)
    except SymbolFileError as exc:
        fail(str(exc), ExitCode.INVALID_INPUT)
    problems = validate_universe(universe)
    for problem in problems:
        console.print(f"[red]-[/] {problem}")
    if problems:
        fail(
            f"{len(problems)} problem(s) in {file or paths.symbols_file()}", ExitCode.INVALID_INPUT
        )
    counts = ", ".join(f"tier {tier}: {n}" for tier, n in sorted(universe.tier_counts().items()))
    click.echo(f"{len(universe.symbols)} symbols OK ({counts})")


def main() -> None:
    """Console-script entry: click usage errors exit 3 (invalid arguments), not click's 2."""
    try:
        result = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        sys.exit(130)
    except click.UsageError as exc:
        exc.show()
        sys.exit(int(ExitCode.INVALID_INPUT))
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.INVALID_INPUT))
    if isinstance(result, int):
        sys.exit(result)


if __name__ == "__main__":
    main()
