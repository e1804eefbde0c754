"""Local infrastructure the harness starts and stops: Kafka (KRaft), ClickHouse tables, topics."""
