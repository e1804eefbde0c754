"""Types of the C extension harness/collector/_fastdecode.c (the collector's record decoder)."""

from typing import Any

def extract(
    values: list[bytes],
    keys: tuple[bytes | None, bytes | None, bytes | None, bytes | None, bytes | None, bytes | None],
    strings: dict[str, str],
) -> tuple[list[str], list[str], bytearray] | None: ...
def byte_count(items: list[bytes | None]) -> int: ...
def append_times(messages: list[Any]) -> bytearray: ...
