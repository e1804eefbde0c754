"""ingest: the reference IQFeed ingestion core (IQFeed -> parse -> process -> Kafka)."""

__version__ = "0.1.0"
