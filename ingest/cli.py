"""Command line of ingest (its subcommands arrive with its issue; only --version exists today)."""

from __future__ import annotations

import click

from ingest import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ingest")
def main() -> None:
    """ingest: reference IQFeed ingestion core (IQFeed -> parse -> process -> Kafka).

    No subcommands exist yet: the core is built under its own issue.
    """


if __name__ == "__main__":
    main()
