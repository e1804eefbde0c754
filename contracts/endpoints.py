"""Where feed_sim listens by default: the IQFeed (IQConnect) ports and its control port."""

from __future__ import annotations

from typing import Final

FEED_PORTS: Final[dict[str, int]] = {
    "level1": 5009,
    "level2": 9200,
    "admin": 9300,
    "lookup": 9100,
}
"""IQConnect's ports, served by feed_sim and read by the ingestion core."""
DEFAULT_CONTROL_PORT: Final = 8765
"""feed_sim's HTTP control API (the harness drives stages through it)."""
