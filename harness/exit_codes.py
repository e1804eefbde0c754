"""Exit codes of `harness run` (ARCHITECTURE.md contract 7); other commands reuse 0, 3 and 4."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    PASSED = 0  # all stages passed
    ROLLED_BACK = 1  # a threshold broke and the rollback held
    ROLLBACK_FAILED = 2  # the rollback did not restore health
    INVALID_INPUT = 3  # invalid scenario or arguments
    INFRA_UNAVAILABLE = 4  # infrastructure unavailable
    INCONCLUSIVE = 5  # load generator or test bed saturated: no verdict


EXIT_CODES_HELP = """\b
Exit codes:
  0  all stages passed
  1  a threshold broke and the rollback held
  2  the rollback did not restore health
  3  invalid scenario or arguments
  4  infrastructure unavailable
  5  inconclusive (the load generator, or a test bed saturated mostly by the harness's
     own parts, not the system under test, fell short)"""
