"""Types of the C extension harness/collector/_fastdecode.c and _kafkaread.c (the collector's
record decoder and Kafka reader)."""

def extract(
    values: list[bytes],
    keys: tuple[bytes | None, bytes | None, bytes | None, bytes | None, bytes | None, bytes | None],
    strings: dict[str, str],
) -> tuple[list[str], list[str], bytearray] | None: ...

class KafkaReaderError(RuntimeError): ...

class KafkaReader:
    def __init__(self, settings: dict[str, str]) -> None: ...
    def assign(self, partitions: list[tuple[str, int, int]]) -> None: ...
    def read(
        self,
        mode: int,
        max_messages: int,
        timeout_s: float,
        keys: tuple[bytes | None, ...] | None = None,
        strings: dict[str, str] | None = None,
    ) -> tuple[
        int,
        int,
        int,
        str | None,
        bytearray,
        tuple[list[str], list[str], bytearray] | list[bytes] | None,
    ]: ...
    def positions(self) -> list[tuple[str, int, int]]: ...
    def close(self) -> None: ...
