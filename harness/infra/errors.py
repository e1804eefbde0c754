"""The error type of infrastructure problems (exit code 4 of the CLI)."""

from __future__ import annotations


class InfraError(RuntimeError):
    """Infrastructure is missing or did not come up; the message says how to fix it."""
