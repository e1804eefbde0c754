"""The ClickHouse writer's HTTP face: its /metrics and the harness's control routes.

`WriterMetrics` renders the writer's counters and storage-hop quantiles (Prometheus text);
`control_routes` are the POST routes a load test drives: /admin/window (open / close a window
of records by append time) and /admin/reconcile (the cut: `ClickHouseWriter.reconcile`).
Served by `ingest.metrics.MetricsServer` from `ingest.clickhouse_writer.main`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ingest.metrics import MetricFamily, render_prometheus
from ingest.storage_lag import StorageLag


class ControlledWriter(Protocol):
    """What the routes need of the writer (`ingest.clickhouse_writer.ClickHouseWriter`)."""

    stats: Any
    """`WriterStats`: consumed, batches, malformed, ... rows written per table."""
    lag: StorageLag

    def reconcile(
        self, targets: Mapping[tuple[str, int], int], timeout_s: float, label: str | None = None
    ) -> dict[str, Any]: ...


class WriterMetrics:
    """The writer's /metrics: its counters and the storage hop since start."""

    def __init__(self, writer: ControlledWriter) -> None:
        self.writer = writer

    def render(self, extra: Iterable[MetricFamily] = ()) -> str:
        stats, prefix = self.writer.stats, "clickhouse_writer"
        counters = {
            "consumed": stats.consumed,
            "batches": stats.batches,
            "malformed": stats.malformed,
            "insert_failures": stats.insert_failures,
            "commit_failures": stats.commit_failures,
        }
        families = [
            MetricFamily(
                f"{prefix}_{name}_total", "counter", f"Records/batches: {name}.", [({}, v)]
            )
            for name, v in counters.items()
        ]
        families.append(
            MetricFamily(
                f"{prefix}_rows_written_total",
                "counter",
                "Rows inserted per table.",
                [
                    ({"table": "ticks"}, stats.ticks_written),
                    ({"table": "depth"}, stats.depth_written),
                ],
            )
        )
        for name, quantiles in self.writer.lag.quantiles_us().items():
            families.append(
                MetricFamily(
                    f"{prefix}_{name}_seconds",
                    "summary",
                    {
                        "storage": "Kafka append -> row visible in ClickHouse.",
                        "wait": "Kafka append -> its batch's insert started.",
                        "insert": "Duration of one batch insert.",
                    }[name],
                    [({"quantile": str(q)}, us / 1e6) for q, us in quantiles.items()],
                )
            )
        return render_prometheus([*families, *extra])


def parse_targets(payload: Any) -> dict[tuple[str, int], int]:
    """`{"topic": {"0": 120, ...}, ...}` -> {(topic, partition): end offset}; ValueError."""
    if not isinstance(payload, Mapping):
        raise ValueError('offsets must be {"topic": {"partition": end_offset}}')
    targets: dict[tuple[str, int], int] = {}
    for topic, partitions in payload.items():
        if not isinstance(partitions, Mapping):
            raise ValueError(f"offsets of {topic!r} must map partitions to end offsets")
        for partition, end in partitions.items():
            if not isinstance(end, int) or end < 0:
                raise ValueError(f"end offset of {topic}[{partition}] must be an integer >= 0")
            targets[(str(topic), int(partition))] = end
    return targets


def control_routes(writer: ControlledWriter) -> dict[str, Callable[[Any], Mapping[str, Any]]]:
    """POST /admin/window ({label, start_ns} opens, {label, end_ns} closes) and
    POST /admin/reconcile ({offsets, timeout_s, label})."""

    def window(body: Any) -> Mapping[str, Any]:
        if not isinstance(body, Mapping) or not isinstance(body.get("label"), str):
            raise ValueError('expected {"label": "...", "start_ns": N} or {..., "end_ns": N}')
        label = body["label"]
        if isinstance(body.get("start_ns"), int):
            writer.lag.open(label, body["start_ns"])
        elif isinstance(body.get("end_ns"), int):
            try:
                writer.lag.close(label, body["end_ns"])
            except KeyError:
                raise ValueError(f"no open window {label!r}") from None
        else:
            raise ValueError("a window needs start_ns (open) or end_ns (close)")
        return {"label": label, "ok": True}

    def reconcile(body: Any) -> Mapping[str, Any]:
        if not isinstance(body, Mapping):
            raise ValueError('expected {"offsets": {...}, "timeout_s": N, "label": "..."}')
        timeout_s = float(body.get("timeout_s", 60.0))
        label = body.get("label")
        return writer.reconcile(
            parse_targets(body.get("offsets", {})),
            timeout_s,
            label if isinstance(label, str) else None,
        )

    return {"/admin/window": window, "/admin/reconcile": reconcile}
