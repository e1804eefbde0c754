"""The collector's measurement core (no Kafka I/O): decode SUT records, record lag, track sequences.

- `mapping`: field mapping of the SUT's record values and the batch decoder;
- `measure`: per-stage HDR lag histograms (CO-corrected and uncorrected, per hop) and the
  vectorised batch recorder with 1 s interval histograms;
- `completeness`: per-key sequence tracking (gaps, duplicates, reordering) and loss against
  feed_sim's sent counters;
- `batching`: the buffer that batches decoded columns before numpy work.

Around it: `process` (the collector as its own process, consuming Kafka), `client` (drives
that process), `shards` (partition shards and merging their replies, for the distributed
collector of harness.distributed_collector) and `launch` (starts one collector or the
distributed one, as the scenario says).
"""

from contracts.records import REFERENCE_CORE, FieldMapping
from harness.collector.completeness import Completeness, SequenceTracker
from harness.collector.loss import LossReport, compare
from harness.collector.mapping import BatchDecoder, DecodedBatch
from harness.collector.measure import MEASURES, Recorder, StageMeasure

__all__ = [
    "MEASURES",
    "REFERENCE_CORE",
    "BatchDecoder",
    "Completeness",
    "DecodedBatch",
    "FieldMapping",
    "LossReport",
    "Recorder",
    "SequenceTracker",
    "StageMeasure",
    "compare",
]
