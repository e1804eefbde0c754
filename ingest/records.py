"""The Kafka record of the reference core (ARCHITECTURE.md contract 4) and its lag fields.

One record per event, key = symbol, partition = the symbol's partition from
config/production_symbols.json, value = JSON (msgspec) of `FeedRecord.to_value()`:

    {"symbol": "AAPL", "type": "trade" | "quote" | "depth", "seq": 1234,
     "exchange_ns": ..., "recv_ns": ..., "produced_ns": ...,
     "payload": {...}}

- `seq` is the feed sequence: the IQFeed TickID for Level 1; for Level 2 (which carries no
  sequence on the wire) a per-symbol counter the core assigns in arrival order.
- `exchange_ns` is the event time parsed from the message (Most Recent Trade Time for trades,
  the later of Bid/Ask Time for quotes, the row time for depth), US/Eastern -> UTC ns. With
  feed_sim it is the message's intended send time (contract 2). 0 when the message has none
  (e.g. a Nasdaq Level 2 delete, whose time field is empty).
- `recv_ns` is stamped at the socket read, before parsing (one stamp per read chunk).
- `produced_ns` is stamped just before the record is handed to the Kafka producer.

Lag (contract 3): network = recv - exchange; processing = produced - recv; kafka = observed
by the collector - produced; total = observed - exchange.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson


class FeedRecord(msgspec.Struct, gc=False):
    """One event on its way to Kafka.

    A msgspec Struct: made once per event on the hot path (its C constructor is several
    times cheaper than a dataclass's), mutable (the producer stamps `produced_ns`), and
    encoded straight to the value's JSON, its fields in this order. Not tracked by the cyclic
    GC (`gc=False`): a record never refers back to itself."""

    symbol: str
    type: str
    seq: int
    exchange_ns: int
    recv_ns: int
    produced_ns: int = 0
    payload: dict[str, Any] = msgspec.field(default_factory=dict)

    def to_value(self) -> bytes:
        return _ENCODER.encode(self)

    @classmethod
    def from_value(cls, value: bytes) -> FeedRecord:
        data = orjson.loads(value)
        return cls(
            data["symbol"],
            data["type"],
            int(data["seq"]),
            int(data["exchange_ns"]),
            int(data["recv_ns"]),
            int(data["produced_ns"]),
            dict(data["payload"]),
        )


_ENCODER = msgspec.json.Encoder()
