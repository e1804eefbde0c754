"""Command line of feed_sim (its subcommands arrive with its issue; only --version exists today)."""

from __future__ import annotations

import click

from feed_sim import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="feed-sim")
def main() -> None:
    """feed-sim: replay-based IQFeed protocol simulator.

    Serves the IQFeed ports (Level 1 5009, Level 2 9200, admin 9300, lookup 9100) from tapes.
    No subcommands exist yet: the simulator is built under its own issue.
    """


if __name__ == "__main__":
    main()
