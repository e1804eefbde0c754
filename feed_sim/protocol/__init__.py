"""The IQFeed (IQConnect) wire protocol as pure functions and small state classes, no sockets.

Modules: `timefmt` (Eastern wall-clock texts), `fields` (Level 1 field catalogues, fieldsets),
`level1` (per-symbol state and Q/P/F/R/C/N lines), `level2` (depth lines and book), `lookup`
(history/table requests and rows), `system` (S/T lines, protocol versions), `commands` (client
line splitting and parsing), `codes` (listed markets, trade conditions, MPIDs).
See /work/shared/iqfeed-protocol.md for the reference these follow.
"""
