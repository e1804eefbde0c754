"""The contracts feed_sim, ingest and harness share (ARCHITECTURE.md), at the bottom of the
import graph: they depend on numpy, hdrh and msgspec only, never on the three packages.

- `hdr`: the histogram layout and its vectorised recording and encoding (contract 6);
- `sent`: what feed_sim sent per stage and symbol, mergeable (contract 5);
- `records`: where a core's record values hold symbol, seq, times and type (contract 4);
- `topics`: the reference core's topic per record type (contract 4);
- `endpoints`: the IQFeed ports and feed_sim's control port.
"""
