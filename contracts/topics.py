"""The reference core's Kafka topic per record type (contract 4)."""

from __future__ import annotations

from typing import Final

TOPIC_BY_TYPE: Final[dict[str, str]] = {
    "trade": "iqfeed.trades",
    "quote": "iqfeed.quotes",
    "depth": "iqfeed.depth",
}
FEED_TOPICS: Final[tuple[str, ...]] = tuple(TOPIC_BY_TYPE.values())
"""The three topics, in record-type order (trades, quotes, depth)."""
