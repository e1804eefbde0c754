"""Staged load and latency harness for an IQFeed ingestion pipeline."""

__version__ = "0.1.0"
