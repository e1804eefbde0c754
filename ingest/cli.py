"""The `ingest` command line: run the reference core, run the ClickHouse writer."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import click

from ingest import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ingest")
def main() -> None:
    """ingest: the reference IQFeed ingestion core (IQFeed -> parse -> process -> Kafka).

    Connects a pool of IQFeed connections (Level 1 and Level 2), stamps every read at the
    socket before parsing, keeps per-symbol Level 1 state and Level 2 books, and produces one
    Kafka record per event (key = symbol, partition = the symbol's partition). Lag histograms
    and counters are on /metrics (Prometheus text format).
    """


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML/JSON config (see ingest/config.py).",
)
@click.option("--feed-host", default=None, help="IQFeed (IQConnect / feed_sim) host.")
@click.option("--level1-port", type=int, default=None)
@click.option("--level2-port", type=int, default=None)
@click.option("--connections", type=int, default=None, help="Connections per port (5).")
@click.option("--no-level2", is_flag=True, help="Level 1 only.")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers.")
@click.option(
    "--symbols-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="production_symbols.json (symbols and partitions).",
)
@click.option("--symbol", "symbols", multiple=True, help="Ingest only these symbols.")
@click.option("--metrics-port", type=int, default=None, help="/metrics and admin port (9108).")
@click.option("--metrics-host", default=None, help="Interface of /metrics (127.0.0.1).")
@click.option("--batch-size", type=int, default=None, help="Symbols per subscription batch.")
@click.option("--batch-pause", type=float, default=None, help="Seconds between batches.")
@click.option(
    "--clickhouse-url",
    default=None,
    help="Also start the ClickHouse writer (its own process and consumer group).",
)
@click.option("--redis-url", default=None, help="Enable Redis book snapshots to this URL.")
@click.option("-v", "--verbose", count=True)
def run(
    config_path: Path | None,
    feed_host: str | None,
    level1_port: int | None,
    level2_port: int | None,
    connections: int | None,
    no_level2: bool,
    bootstrap: str | None,
    symbols_file: Path | None,
    symbols: tuple[str, ...],
    metrics_port: int | None,
    metrics_host: str | None,
    batch_size: int | None,
    batch_pause: float | None,
    clickhouse_url: str | None,
    redis_url: str | None,
    verbose: int,
) -> None:
    """Run the core until SIGTERM/SIGINT (graceful drain: nothing in flight is lost).

    SIGHUP reloads the symbol set; POST /admin/symbols with a JSON list sets it live.
    Exit 0 after a clean drain, 1 if records were left undelivered, 3 on a bad config.
    """
    from ingest.app import IngestApp, run_forever
    from ingest.config import ConfigError, load_config

    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    overrides = {
        "feed.host": feed_host,
        "feed.level1_port": level1_port,
        "feed.level2_port": level2_port,
        "feed.connections": connections,
        "feed.level2": False if no_level2 else None,
        "kafka.bootstrap": bootstrap,
        "symbols_file": str(symbols_file) if symbols_file else None,
        "symbols": [s.upper() for s in symbols] or None,
        "metrics.port": metrics_port,
        "metrics.host": metrics_host,
        "feed.batch_size": batch_size,
        "feed.batch_pause_s": batch_pause,
        "redis.enabled": True if redis_url else None,
        "redis.url": redis_url,
    }
    try:
        config = load_config(config_path, overrides)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    writer: subprocess.Popen[bytes] | None = None
    if clickhouse_url:
        writer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ingest.cli",
                "clickhouse-writer",
                "--bootstrap",
                config.kafka.bootstrap,
                "--clickhouse",
                clickhouse_url,
            ]
        )
    try:
        code = run_forever(IngestApp(config))
    finally:
        if writer is not None:
            writer.terminate()
            writer.wait(timeout=60)
    sys.exit(code)


@main.command("clickhouse-writer")
@click.option("--bootstrap", required=True, help="Kafka bootstrap servers.")
@click.option(
    "--clickhouse",
    default=None,
    help="chdb folder or server URL (http://host:8123). Default: .cache/clickhouse.",
)
@click.option("--group", "group_id", default="ingest-clickhouse-writer", show_default=True)
@click.option("--topic-prefix", default="iqfeed", show_default=True)
@click.option("--database", default="market", show_default=True)
@click.option("--batch-size", default=5000, show_default=True, type=int)
@click.option("--batch-ms", default=200, show_default=True, type=int)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="A topic to consume (repeatable); replaces the three --topic-prefix topics.",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve /metrics (storage hop, counters) and the harness's control routes "
    "(/admin/window, /admin/reconcile) here; 0 = any free port. Default: off.",
)
@click.option("-v", "--verbose", count=True)
def clickhouse_writer(
    bootstrap: str,
    clickhouse: str | None,
    group_id: str,
    topic_prefix: str,
    database: str,
    batch_size: int,
    batch_ms: int,
    topics: tuple[str, ...],
    metrics_host: str,
    metrics_port: int | None,
    verbose: int,
) -> None:
    """Consume the feed topics into the ClickHouse tick and depth tables (at-least-once,
    duplicates collapse by (symbol, time, sequence)).

    Each batch's storage hop (Kafka append -> rows visible) is measured; see --metrics-port.
    """
    from ingest.clickhouse_writer import main as writer_main

    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    sys.exit(
        writer_main(
            bootstrap,
            clickhouse,
            group_id=group_id,
            topic_prefix=topic_prefix,
            database=database,
            batch_size=batch_size,
            batch_ms=batch_ms,
            topics=topics,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
        )
    )


if __name__ == "__main__":
    main()
