"""Types of the C extension ingest/feed/_fastparse.c (the Level 1 `Q` hot path)."""

from collections.abc import Callable, Sequence
from typing import Any

class Level1Parser:
    def __init__(
        self,
        positions: Sequence[int],
        width: int,
        near_second: dict[str, int],
        near_ns: Callable[[str, int], int | None],
        dated_second: dict[str, int],
        dated_resolve: Callable[[str, str, int | None], int | None],
        new_float: Callable[[str], float],
        new_int: Callable[[str], int],
        update_type: type[tuple[Any, ...]],
        max_line_chars: int,
    ) -> None: ...
    def parse(self, line: str, hint_ns: int) -> Any:
        """A Level1Update, a (reason, detail) tuple, or NotImplemented."""
