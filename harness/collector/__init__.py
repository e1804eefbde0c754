"""The collector's measurement core (no Kafka I/O): decode SUT records, record lag, track sequences.

- `mapping`: field mapping of the SUT's record values and the batch decoder;
- `measure`: per-stage HDR lag histograms (CO-corrected and uncorrected, per hop) and the
  vectorised batch recorder with 1 s interval histograms;
- `completeness`: per-key sequence tracking (gaps, duplicates, reordering) and loss against
  feed_sim's sent counters.
"""

from harness.collector.completeness import Completeness, LossReport, SequenceTracker, compare
from harness.collector.mapping import REFERENCE_CORE, BatchDecoder, DecodedBatch, FieldMapping
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
