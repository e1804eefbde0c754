"""IQFeed wire handling of the reference core: fieldset, time parsing, line parser, state.

Pure code, no sockets (the pool lives in `connection`): `fieldset` (the SELECT UPDATE FIELDS
list), `timeparse` (US/Eastern wire times -> UTC ns), `parse` (one line -> typed message) and
`state` (per-symbol Level 1 state and Level 2 books).
"""
